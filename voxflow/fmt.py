"""The canonical ``.flow`` formatter: ``format_source(text) -> text``.

It re-lays the tokens of a file and never changes one: 4-space indentation per block level,
one space around binary operators, ``=`` and ``->``, after ``,`` and ``:`` (not a slice's
``name[1:3]``), none inside brackets
or before ``(`` of a call; comments kept verbatim (a full-line comment takes the indentation of
the code after it, an inline comment gets two spaces before ``#``); at most one blank line in a
row, one blank line before a top-level block that follows an indented one, none at the start or
end; lines continued inside brackets or with ``\\`` are indented one level deeper. The result is
idempotent, and the file compiles to the same IR (the tests check both).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from voxflow.errors import VoxflowSyntaxError
from voxflow.source import Source
from voxflow.syntax.parser import parse_module

__all__ = ["FormatResult", "format_file_text", "format_source", "unified_diff"]

INDENT = "    "
_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\f]+)
  | (?P<cont>\\[ \t\f]*\r?\n)
  | (?P<nl>\r?\n)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>\d+(?:\.\d+)?(?:ms|s|m|h)?(?![A-Za-z0-9_]))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>->|==|!=|<=|>=|[-+*/%<>=:,.()\[\]{}])
  | (?P<other>.)
    """,
    re.VERBOSE,
)
_REGEX = re.compile(r"/(?:[^/\\\n]|\\.)+/i?")
_KEYWORDS = frozenset(
    "and or not in if elif else match case default return returns set goto anytime on "
    "state scope subflow flow include var meta call http tool action as key".split()
)
_PAREN_KEYWORDS = frozenset("and or not in if elif case match return returns".split())
_BINARY = frozenset({"->", "==", "!=", "<=", ">=", "<", ">", "=", "+", "-", "*", "/", "%"})
_OPEN = frozenset("([{")
_CLOSE = frozenset(")]}")


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


@dataclass
class _Line:
    """A logical line: its physical pieces (split at continuations), original indent width."""

    indent: int
    pieces: list[list[_Tok]]
    comment: str | None = None  # trailing comment
    blank: bool = False
    only_comment: bool = False


def _lex(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    line: list[_Tok] = []  # the significant tokens of the logical line so far
    depth = 0
    while pos < len(text):
        if text[pos] == "/" and depth == 0 and _regex_allowed(line):
            m = _REGEX.match(text, pos)
            if m:
                tok = _Tok("regex", m.group())
                toks.append(tok)
                line.append(tok)
                pos = m.end()
                continue
        m = _TOKEN.match(text, pos)
        assert m is not None  # 'other' matches any character
        kind = m.lastgroup or "other"
        tok = _Tok(kind, m.group())
        toks.append(tok)
        if kind == "op" and tok.text in _OPEN:
            depth += 1
        elif kind == "op" and tok.text in _CLOSE:
            depth = max(0, depth - 1)
        if kind == "nl" and depth == 0:
            line = []
        elif kind not in ("ws", "cont", "comment", "nl"):
            line.append(tok)
        pos = m.end()
    return toks


def _regex_allowed(line: list[_Tok]) -> bool:
    """A regex is only a pattern (grammar: ``choice``, ``anytime``): first on its line, after
    ``anytime`` opening the line, or after a ``,`` (a '/' there cannot be a division)."""
    if not line:
        return True
    prev = line[-1]
    if prev.kind == "op":
        return prev.text == ","
    return len(line) == 1 and prev.text == "anytime"


def _split_lines(toks: list[_Tok]) -> list[_Line]:
    lines: list[_Line] = []
    i = 0
    n = len(toks)
    while i < n:
        indent = 0
        if toks[i].kind == "ws":
            indent = len(toks[i].text.expandtabs(8))
            i += 1
        pieces: list[list[_Tok]] = [[]]
        comment = None
        depth = 0
        while i < n:
            t = toks[i]
            i += 1
            if t.kind == "nl":
                if depth > 0:
                    pieces.append([])
                    continue
                break
            if t.kind == "cont":  # keep the backslash: the next piece goes on a new line
                pieces[-1].append(_Tok("cont", "\\"))
                pieces.append([])
                continue
            if t.kind == "ws":
                continue
            if t.kind == "comment":
                if depth > 0:  # a comment inside brackets stays on its physical line
                    pieces[-1].append(_Tok("comment", t.text.rstrip()))
                else:
                    comment = t.text.rstrip()
                continue
            if t.kind == "op" and t.text in _OPEN:
                depth += 1
            elif t.kind == "op" and t.text in _CLOSE:
                depth = max(0, depth - 1)
            pieces[-1].append(t)
        pieces = [p for p in pieces if p] or [[]]
        code = any(pieces[0]) or len(pieces) > 1
        lines.append(
            _Line(
                indent,
                pieces,
                comment,
                blank=not code and comment is None,
                only_comment=not code and comment is not None,
            )
        )
    return lines


def _space_between(a: _Tok, b: _Tok, prev: _Tok | None) -> bool:
    """Whether a space goes between tokens ``a`` and ``b`` (``prev`` is before ``a``)."""
    if b.kind == "comment" or a.kind == "comment":
        return True
    if a.kind == "op" and a.text in _OPEN:
        return False
    if b.kind == "op" and (b.text in _CLOSE or b.text in (",", ":")):
        return False
    if (a.kind == "op" and a.text == ".") or (b.kind == "op" and b.text == "."):
        return False
    if b.kind == "op" and b.text in ("(", "["):
        if a.kind == "name" and a.text not in _PAREN_KEYWORDS:
            return False
        if a.kind in ("string",) or (a.kind == "op" and a.text in _CLOSE):
            return b.text == "("  # "x"[0] and f(x)[0]: no space before an index
        return True
    if a.kind == "op" and a.text == "-" and _unary(prev):
        return False
    return True


def _unary(prev: _Tok | None) -> bool:
    """A '-' is unary after nothing, an operator (not a closing bracket) or a keyword."""
    if prev is None:
        return True
    if prev.kind == "op":
        return prev.text not in _CLOSE
    return prev.kind == "name" and prev.text in _KEYWORDS


def _render_piece(toks: list[_Tok]) -> str:
    out: list[str] = []
    prev: _Tok | None = None
    opened: list[str] = []  # the brackets open here: a ':' right inside '[' is a slice's
    for i, t in enumerate(toks):
        a = toks[i - 1] if i > 0 else None
        in_slice = a is not None and a.text == ":" and opened[-1:] == ["["]
        if a is not None and not in_slice and _space_between(a, t, prev):
            out.append(" ")
        out.append(t.text)
        if t.kind == "op" and t.text in _OPEN:
            opened.append(t.text)
        elif t.kind == "op" and t.text in _CLOSE and opened:
            opened.pop()
        if i > 0:
            prev = toks[i - 1]
    return "".join(out)


def format_source(text: str) -> str:
    """Format flow source text (which must parse; see :func:`format_file_text`)."""
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    lines = _split_lines(_lex(text))
    # indentation levels from the code lines' original widths (like Python's tokenizer)
    levels: list[int | None] = []
    stack = [0]
    for ln in lines:
        if ln.blank or ln.only_comment:
            levels.append(None)
            continue
        while ln.indent < stack[-1]:
            stack.pop()
        if ln.indent > stack[-1]:
            stack.append(ln.indent)
        levels.append(len(stack) - 1)
    # comments take the level of the next code line
    nxt = 0
    for i in range(len(lines) - 1, -1, -1):
        if levels[i] is None:
            if lines[i].only_comment:
                levels[i] = nxt
        else:
            nxt = levels[i] or 0
    out: list[str] = []
    prev_level = 0
    pending_blank = False
    for ln, level in zip(lines, levels, strict=True):
        if ln.blank:
            pending_blank = bool(out)
            continue
        lvl = level or 0
        if out and lvl == 0 and prev_level > 0:
            pending_blank = True
        if out and out[-1].endswith(":") and not out[-1].lstrip().startswith("#"):
            pending_blank = False  # no blank line right after a block opener
        if pending_blank:
            out.append("")
        pending_blank = False
        pad = INDENT * lvl
        if ln.only_comment:
            out.append(pad + (ln.comment or ""))
            prev_level = lvl  # the comment goes with the code after it: no blank line inside
            continue
        for k, piece in enumerate(ln.pieces):
            body = _render_piece(piece)
            extra = INDENT if k > 0 and not (piece and piece[0].text in _CLOSE) else ""
            out.append(pad + extra + body)
        if ln.comment is not None:
            out[-1] += "  " + ln.comment
        if not ln.only_comment:
            prev_level = lvl
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out) + "\n" if out else ""


@dataclass(frozen=True)
class FormatResult:
    """The formatted text of one file and whether it differs from the input."""

    path: str
    original: str
    formatted: str

    @property
    def changed(self) -> bool:
        return self.original != self.formatted


def format_file_text(text: str, path: str = "<flow>") -> FormatResult:
    """Format one file's text; raises VoxflowSyntaxError when it does not parse (nothing is
    formatted then) or, defensively, when the result would not parse."""
    first = text.removeprefix("\ufeff")  # a byte-order mark, as the compiler reads it
    for label, candidate in (("", first), (" after formatting (a voxflow bug)", None)):
        if candidate is None:
            candidate = format_source(text)
        module, diags = parse_module(Source(path, candidate))
        if module is None:
            d = diags[0]
            raise VoxflowSyntaxError(
                f"{path}:{d.span.line}:{d.span.col}: {d.message}{label}",
                line=d.span.line,
                column=d.span.col,
            )
        if label:
            return FormatResult(path, text, candidate)
    raise AssertionError("unreachable")  # pragma: no cover


def unified_diff(result: FormatResult) -> str:
    """A unified diff from the file to its formatted form."""
    return "".join(
        difflib.unified_diff(
            result.original.splitlines(keepends=True),
            result.formatted.splitlines(keepends=True),
            fromfile=result.path,
            tofile=result.path + " (formatted)",
        )
    )
