"""Parse ``.flow`` source into the AST, never raising for bad input.

:func:`parse_module` parses one file; :func:`load_program` also follows ``include`` lines
(relative to the including file, inside the project: :mod:`voxflow.syntax.includes`), detecting
missing or refused files (VF002) and include cycles (VF003).
Every syntax error becomes a ``VF001`` diagnostic with the position in the file it was written
in; common mistakes are named in words ("missing ':' after the state name").

The grammar is ``voxflow/grammar/voxflow.lark`` inside the installed package, or the repository's
``grammar/voxflow.lark`` in a source checkout. The LALR parser is built once per process, and
its tables are kept in this user's cache directory for the next run
(:mod:`voxflow.syntax.parser_cache`).
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lark import Lark, Token, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput
from lark.exceptions import LarkError, UnexpectedToken, VisitError
from lark.indenter import DedentError, Indenter
from lark.lexer import PatternStr

from voxflow.diagnostics import Diagnostic, Severity
from voxflow.errors import VoxflowSyntaxError
from voxflow.source import Source, Span
from voxflow.sourcefile import read_source
from voxflow.syntax import ast
from voxflow.syntax.includes import project_root, resolve_include
from voxflow.syntax.parser_cache import cached_lark
from voxflow.syntax.recover import parse_collecting
from voxflow.syntax.transformer import AstBuilder, TransformError, install_spans

__all__ = [
    "bare_parser",
    "grammar_text",
    "load_program",
    "parse_module",
    "parse_or_raise",
    "stdlib_dir",
]

MAX_INCLUDE_DEPTH = 32


class FlowIndenter(Indenter):
    """Python-style INDENT/DEDENT; newlines inside (), [] and {} are ignored."""

    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB", "LBRACE"]  # noqa: RUF012  (Lark's API: class attributes)
    CLOSE_PAREN_types = ["RPAR", "RSQB", "RBRACE"]  # noqa: RUF012  (as above)
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8


def grammar_text() -> str:
    """The grammar source: from the installed package, else from the repository checkout."""
    packaged = importlib.resources.files("voxflow").joinpath("grammar/voxflow.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    repo = Path(__file__).resolve().parents[2] / "grammar" / "voxflow.lark"
    return repo.read_text(encoding="utf-8")


_OPTIONS: dict[str, Any] = {
    "parser": "lalr",
    "lexer": "contextual",
    "maybe_placeholders": True,
}


def _options_key(**more: Any) -> str:
    """What the saved tables depend on besides the grammar: the options and the indenter."""
    ind = FlowIndenter
    shape = (ind.NL_type, ind.OPEN_PAREN_types, ind.CLOSE_PAREN_types, ind.INDENT_type)
    return repr((sorted({**_OPTIONS, **more}.items()), shape, ind.DEDENT_type, ind.tab_len))


@functools.cache
def _parser() -> Lark:
    builder = AstBuilder()
    postlex = FlowIndenter()

    def build() -> Lark:
        return Lark(grammar_text(), postlex=postlex, transformer=builder, **_OPTIONS)

    def load(f: Any) -> Lark:
        return Lark.__new__(Lark)._load(f, transformer=builder, postlex=postlex)

    lark = cached_lark(grammar_text(), _options_key(), build, load)
    # Lark does not pass positions to inline transformers; wrap its reduce callbacks (the
    # same dict the LALR parser uses) so each builder method knows the span of its rule.
    install_spans(lark._callbacks, builder)
    return lark


@functools.cache
def step_keywords() -> tuple[str, ...]:
    """The keywords a step can start with, read from the grammar: the first keyword of every
    rule ``stmt`` expands to (through ``simple_step``'s ``step_kw``), in grammar order."""
    lark = _parser()
    expansions: dict[str, list[list[Any]]] = {}
    for rule in lark.rules:
        expansions.setdefault(rule.origin.name, []).append(list(rule.expansion))
    words: list[str] = []

    def first_keywords(name: str, seen: set[str]) -> None:
        for expansion in expansions.get(name, []):
            if not expansion:
                continue
            symbol = expansion[0]
            if symbol.is_term:
                pattern = lark.get_terminal(symbol.name).pattern
                if isinstance(pattern, PatternStr) and pattern.value not in words:
                    words.append(pattern.value)
            elif symbol.name not in seen:
                seen.add(symbol.name)
                first_keywords(symbol.name, seen)

    first_keywords("stmt", {"stmt"})
    return tuple(words)


@functools.cache
def bare_parser() -> Lark:
    """The same grammar without the AST builder (a plain parse tree; used by benchmarks)."""
    postlex = FlowIndenter()

    def build() -> Lark:
        return Lark(grammar_text(), postlex=postlex, propagate_positions=True, **_OPTIONS)

    def load(f: Any) -> Lark:
        return Lark.__new__(Lark)._load(f, postlex=postlex)

    return cached_lark(grammar_text(), _options_key(propagate_positions=True), build, load)


# Examples of common mistakes, matched against the parser state at the error.
_EXAMPLES: dict[str, list[str]] = {
    "missing ':' after the state name": ["state main\n    answer\n", "state a b:\n    answer\n"],
    "missing ':' after the scope name": ["scope hours\n    state a:\n        answer\n"],
    "missing ':' after the flow name": ['flow main\n    language "en"\n'],
    "missing ':' or a new line after the handler (write 'on noinput -> state' or "
    "'on noinput:' and a block)": ["state a:\n    menu:\n        on noinput retry\n"],
    "missing '->' before the target (write '1, \"sales\" -> sales')": [
        'state a:\n    menu:\n        1, "sales" sales\n',
        "state a:\n    menu:\n        1 sales\n",
    ],
    "expected a state name after 'goto'": ["state a:\n    goto\n", 'state a:\n    goto "b"\n'],
    "a block must be indented under the line that ends with ':'": [
        "state a:\nanswer\n",
        "state a:\n    if x:\n    goto b\n",
    ],
    "missing '=' in 'set' (write 'set name = value')": ["state a:\n    set x 1\n"],
    "unexpected indentation": ["state a:\n    answer\n        hangup\n"],
    "missing ':' at the end of the previous line (an indented block follows it)": [
        'state a:\n    menu "x"\n        1 -> b\n',
        'state a:\n    dial "x"\n        on busy -> b\n',
    ],
    "missing ':' after the condition": [
        "state a:\n    if x > 1\n        goto b\n",
        "state a:\n    if x:\n        goto b\n    elif y\n        goto c\n",
    ],
    "'else' or 'elif' without a matching 'if' just above": [
        'state a:\n    say "hi"\n    else:\n        goto b\n',
        'state a:\n    say "hi"\n    elif x:\n        goto b\n',
    ],
    "an option needs a value after its name (and text must be quoted)": [
        'state a:\n    say "x" voice\n',
        "state a:\n    say hello\n",
    ],
    "the include path must be a quoted string": ["include foo.flow\n", "include foo\n"],
    "missing state name after 'state'": ["state:\n    answer\n"],
    "missing target after '->' (a state name, or retry/continue/hangup/return)": [
        'state a:\n    menu "x":\n        1 ->\n',
        "state a:\n    menu:\n        on noinput ->\n",
        'state a:\n    menu "x":\n        on noinput ->\n',
        "on error ->\n",
    ],
    "a step must be inside a state": ["answer\n", 'say "hello"\n'],
    "an expression is incomplete": [
        "state a:\n    set x = 1 +\n",
        "state a:\n    if x ==:\n        answer\n",
    ],
}

_NICE = {
    "_NL": "end of line",
    "_INDENT": "an indented block",
    "_DEDENT": "end of the block",
    "NAME": "a name",
    "STRING": "a string",
    "NUMBER": "a number",
    "INT": "a whole number",
    "DURATION": "a duration",
    "REGEX": "a /regex/",
    "$END": "end of file",
}


def _describe(tok_type: str, value: str | None = None) -> str:
    if tok_type in _NICE:
        return _NICE[tok_type]
    if value:
        return f"'{value}'"
    try:
        pattern = _parser().get_terminal(tok_type).pattern
    except KeyError:  # pragma: no cover - every expected terminal exists
        return tok_type.lower()
    if pattern.type == "str":
        return f"'{pattern.value}'"
    return tok_type.lower()


def _expected(expected: set[str]) -> str:
    names = sorted({_describe(t) for t in expected if not t.startswith("__")})
    if len(names) > 8:
        names = [*names[:8], "..."]
    return ", ".join(names)


def _match_example(err: UnexpectedInput) -> str | None:
    try:
        label = err.match_examples(_parser().parse, _EXAMPLES, use_accepts=True)
    except (LarkError, TransformError, RecursionError, ValueError):  # pragma: no cover
        return None
    if isinstance(label, str):
        return label
    # Lark compares the whole stack depth, which grows with the items above the error; the
    # parser state and the token are enough to name the mistake
    state = getattr(err, "state", None)
    tok = getattr(err, "token", None)
    if state is None or tok is None:
        return None
    return _example_states().get((state.position, tok.type))


@functools.cache
def _example_states() -> dict[tuple[Any, str], str]:
    out: dict[tuple[Any, str], str] = {}
    for label, examples in _EXAMPLES.items():
        for text in examples:
            try:
                _parser().parse(text)
            except UnexpectedToken as ut:
                out.setdefault((ut.state.position, ut.token.type), label)
            except (LarkError, TransformError):  # pragma: no cover - examples fail as tokens
                continue
    return out


_BLOCK_WORDS = frozenset(
    "menu gather record dial bridge queue agent http call if elif else state scope subflow flow "
    "on anytime match case default action tool".split()
)


def _line_problem(source: Source, tok: Token, line: int) -> str | None:
    """Mistakes named from the line's text: 'else if', a line indented under one that opens
    no block."""
    text = source.line_text(line)
    if re.match(r"\s*else\s+if\b", text):
        return "write 'elif' instead of 'else if'"
    if tok.type != "_INDENT":
        return None
    prev = line - 1
    while prev > 0 and (
        not source.line_text(prev).strip() or source.line_text(prev).lstrip().startswith("#")
    ):
        prev -= 1
    if prev <= 0:
        return None
    words = source.line_text(prev).split()
    if words and words[0] in _BLOCK_WORDS:
        return None  # its ':' is missing (an example names that)
    if not source.line_text(prev).rstrip().endswith(":"):
        return (
            f"unexpected indentation: line {line} is indented more than line {prev}, which "
            f"does not open a block (indent it like line {prev}, or end line {prev} with ':')"
        )
    return None


def _vf001(source: Source, message: str, span: Span, hint: str | None = None) -> Diagnostic:
    """A syntax error (VF001) in ``source`` at ``span`` (clamped to the text)."""
    return Diagnostic(Severity.ERROR, "VF001", source.clamp(span), message, hint, source.name)


def _error_diagnostic(err: Exception, source: Source) -> Diagnostic:
    """The diagnostic for a parse error, naming the likely mistake where it can."""
    if isinstance(err, TransformError):
        return _vf001(source, err.message, err.span, err.hint)
    if isinstance(err, UnexpectedCharacters):
        return _unexpected_character(err, source)
    if isinstance(err, UnexpectedToken):
        return _unexpected_token(err, source)
    if isinstance(err, UnexpectedEOF):
        line = max(1, source.line_count)
        return _vf001(
            source,
            "unexpected end of file",
            Span(line, 1, line, 2),
            f"expected {_expected(set(err.expected))}",
        )
    if isinstance(err, DedentError):
        return _vf001(
            source,
            "indentation does not match any outer block",
            _dedent_span(source, str(err)),
            "indent with the same number of spaces as an enclosing line",
        )
    return _vf001(source, f"cannot parse: {err}", Span(1, 1, 1, 2))  # pragma: no cover


def _unexpected_character(err: UnexpectedCharacters, source: Source) -> Diagnostic:
    """A character the lexer cannot start a token with: an open string, a bad number..."""
    line, col = err.line, err.column
    pos = err.pos_in_stream if err.pos_in_stream is not None else -1
    ch = source.text[pos] if 0 <= pos < len(source.text) else ""
    span = Span(line, col, line, col + 1)
    if ch in "\"'":
        return _vf001(
            source,
            "unterminated string",
            Span(line, col, line, len(source.line_text(line)) + 1),
            f"close it with {ch} on the same line",
        )
    if ch == "/":
        return _vf001(source, "unterminated /regex/ or '/' where no division is possible", span)
    if ch.isdigit():
        return _vf001(
            source,
            "bad number or duration",
            span,
            "durations are a number and a unit: 500ms, 5s, 2m, 1h",
        )
    if ch == "\t":
        return _vf001(source, "a tab is not allowed here", span)
    shown = repr(ch) if ch and not ch.isprintable() else f"'{ch}'"
    return _vf001(source, f"unexpected character {shown}", span)


def _token_place(tok: Token, err: UnexpectedToken, source: Source) -> tuple[int, int, Span]:
    """(line, column, span) to show for an unexpected token (the end of the file for $END,
    the indented line for _INDENT)."""
    line = tok.line or err.line or 1
    col = tok.column or err.column or 1
    if tok.type == "$END":
        line = max(1, source.line_count)
        col = len(source.line_text(line)) + 1
    end_col = tok.end_column if tok.end_line == line and tok.end_column else col + 1
    span = Span(line, col, line, max(end_col, col + 1))
    if tok.type in ("_NL", "_DEDENT"):
        span = Span(line, col, line, col + 1)
    elif tok.type == "_INDENT" and tok.end_line:
        line = tok.end_line
        span = Span(line, 1, line, max(2, tok.end_column or 2))
    return line, col, span


def _unexpected_token(err: UnexpectedToken, source: Source) -> Diagnostic:
    """A token the grammar did not expect: a known mistake by example, a bad duration, an
    unknown step, or what was expected instead."""
    tok: Token = err.token
    label = _match_example(err)
    line, col, span = _token_place(tok, err, source)
    bad_unit = _BAD_DURATION.search(source.line_text(line))
    if bad_unit is not None and bad_unit.group(2) not in ("ms", "s", "m", "h"):
        label = f"bad duration '{bad_unit.group(0)}' (write 500ms, 5s, 2m or 1h)"
        span = Span(line, bad_unit.start() + 1, line, bad_unit.end() + 1)
    elif tok.type == "NUMBER" or (tok.type == "NAME" and _after_number(source, line, col)):
        label = label or "bad duration (write 500ms, 5s, 2m or 1h)"
    elif label is None and tok.type == "NAME" and "SAY" in err.expected:
        hint = _did_you_mean(str(tok), list(step_keywords()))
        return _vf001(
            source, f"unknown step '{tok}'", span, hint or "see docs/language.md for steps"
        )
    elif _line_problem(source, tok, line) is not None:
        label = _line_problem(source, tok, line)
    got = _describe(tok.type, str(tok) if tok.type not in _NICE else None)
    if tok.type in ("NAME", "NUMBER", "INT", "DURATION", "STRING"):
        got = f"{got[2:] if got.startswith('a ') else got} {str(tok)[:40]!r}"
    if label:
        return _vf001(source, label, span, f"found {got}")
    expected = _expected(set(err.expected))
    return _vf001(source, f"unexpected {got}", span, f"expected one of: {expected}")


_BAD_DURATION = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)([A-Za-z_]+)\b")


def _did_you_mean(word: str, candidates: list[str]) -> str | None:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def _after_number(source: Source, line: int, col: int) -> bool:
    text = source.line_text(line)
    return col >= 2 and text[col - 2 : col - 1].isdigit()


def _dedent_span(source: Source, message: str) -> Span:
    # Lark does not give a position for DedentError; point at the first badly dedented line.
    stack = [0]
    for i in range(1, source.line_count + 1):
        text = source.line_text(i)
        stripped = text.lstrip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        width = len(text.expandtabs(8)) - len(stripped.expandtabs(8))
        if width > stack[-1]:
            stack.append(width)
            continue
        while width < stack[-1]:
            stack.pop()
        if width != stack[-1]:
            return Span(i, 1, i, width + 1)
    return Span(1, 1, 1, 2)


def parse_module(source: Source) -> tuple[ast.Module | None, list[Diagnostic]]:
    """Parse one file. Returns the module, or None and a VF001 diagnostic per syntax error."""
    text = source.text
    if not text.endswith("\n"):
        text += "\n"
    try:
        items: list[Any] = _parser().parse(text)  # type: ignore[assignment]  # AstBuilder.start
    except VisitError as exc:  # pragma: no cover - inline transformers raise directly
        return None, [_error_diagnostic(exc.orig_exc, source)]
    except (UnexpectedInput, DedentError, TransformError) as exc:
        return None, _all_errors(exc, source, text)
    except RecursionError:
        return None, [
            Diagnostic(
                Severity.ERROR,
                "VF001",
                source.whole(),
                "the file nests too deeply to parse",
                None,
                source.name,
            )
        ]
    return _build_module(source.name, items), []


def _all_errors(first: Exception, source: Source, text: str) -> list[Diagnostic]:
    """Every syntax error of a file that failed to parse (at least ``first``), one per line."""
    try:
        found = parse_collecting(_parser(), text, FlowIndenter()).errors
    except (LarkError, RecursionError, AssertionError):  # recovery is best effort
        found = []
    diags = [_error_diagnostic(err, source) for err in found or [first]]
    seen: set[int] = set()
    out: list[Diagnostic] = []
    for d in diags:
        if d.span.line not in seen:
            seen.add(d.span.line)
            out.append(d)
    return out


def _build_module(path: str, items: list[Any]) -> ast.Module:
    module = ast.Module(path)
    for item in items:
        if isinstance(item, ast.FlowHeader):
            if module.header is None:
                module.header = item
            else:
                module.extra_headers.append(item)
        elif isinstance(item, ast.Include):
            module.includes.append(item)
        elif isinstance(item, ast.VarDecl):
            module.vars.append(item)
        elif isinstance(item, ast.Handler):
            module.handlers.append(item)
        elif isinstance(item, ast.Anytime):
            module.anytimes.append(item)
        elif isinstance(item, ast.State):
            module.states.append(item)
        elif isinstance(item, ast.Scope):
            module.scopes.append(item)
        elif isinstance(item, ast.Subflow):
            module.subflows.append(item)
    return module


def parse_or_raise(source: Source) -> ast.Module:
    """Parse one file or raise :class:`~voxflow.errors.VoxflowSyntaxError`."""
    module, diags = parse_module(source)
    if module is None:
        d = diags[0]
        raise VoxflowSyntaxError(
            f"{source.name}:{d.span.line}:{d.span.col}: {d.message}",
            line=d.span.line,
            column=d.span.col,
        )
    return module


Reader = Callable[[str], "Source | Diagnostic"]


def load_program(
    source: Source, *, read: Reader | None = None
) -> tuple[ast.Program | None, list[Diagnostic]]:
    """Parse ``source`` and every file it includes (depth-first, each file once).

    Returns None for the program only when the root file does not parse; problems in included
    files are reported and the rest of the program is still returned.
    """
    root, diags = parse_module(source)
    if root is None:
        return None, diags
    loader = _Includes(source.name, read or read_source, diags)
    loader.visit(root, [_key(source.name)], 0)
    return ast.Program(root, loader.modules), diags


class _Includes:
    """Loads the files a program includes, depth-first, each once; problems go to ``diags``."""

    def __init__(self, root: str, reader: Reader, diags: list[Diagnostic]) -> None:
        self.reader = reader
        self.diags = diags
        self.modules: list[ast.Module] = []
        self.seen = {_key(root)}
        self.project = project_root(root)

    def visit(self, module: ast.Module, stack: list[str], depth: int) -> None:
        """Add ``module`` and, in order, every file it includes that is not loaded yet."""
        self.modules.append(module)
        for inc in module.includes:
            target, refused = resolve_include(self.project, module.path, inc.path, stdlib_dir())
            if refused is not None:
                hint = "include a .flow file by its path relative to this file"
                self._error("VF002", inc, module, refused, hint)
                continue
            key = _key(target)
            if key in stack:
                chain = " -> ".join([*(os.path.basename(s) for s in stack), inc.path])
                self._error(
                    "VF003", inc, module, f"include cycle: {chain}", "remove one of the includes"
                )
                continue
            if key in self.seen:
                continue
            if depth >= MAX_INCLUDE_DEPTH:
                message = f"includes nest deeper than {MAX_INCLUDE_DEPTH} files"
                self._error("VF003", inc, module, message, None)
                continue
            self.seen.add(key)
            child = self._load(inc, module, target)
            if child is not None:
                self.visit(child, [*stack, key], depth + 1)

    def _load(self, inc: ast.Include, module: ast.Module, target: str) -> ast.Module | None:
        """Read and parse an included file (None, reported, when it cannot be)."""
        loaded = self.reader(target)
        if isinstance(loaded, Diagnostic):
            code = "VF002" if loaded.code == "VF002" else loaded.code
            message = f"included file not found: {inc.path}" if code == "VF002" else loaded.message
            self._error(code, inc, module, message, loaded.hint)
            return None
        child, child_diags = parse_module(loaded)
        self.diags.extend(child_diags)
        return child

    def _error(
        self, code: str, inc: ast.Include, module: ast.Module, message: str, hint: str | None
    ) -> None:
        """Report a problem with the include ``inc`` of ``module``."""
        self.diags.append(Diagnostic(Severity.ERROR, code, inc.span, message, hint, module.path))


def stdlib_dir() -> Path:
    """Where the shipped ``.flow`` files are (``voxflow/stdlib`` in the package)."""
    return Path(__file__).resolve().parents[1] / "stdlib"


def _key(path: str) -> str:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):  # pragma: no cover - defensive
        return os.path.normpath(path)
