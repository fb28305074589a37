"""Parse on after a syntax error, so one run reports every syntax error in a file.

Lark's own ``on_error`` resumption restarts the postlexer (the :class:`~lark.indenter.Indenter`
forgets its indentation stack), so this drives Lark's LALR
:class:`~lark.parsers.lalr_interactive_parser.InteractiveParser` with one token stream instead.
Recovery is line based: the parser state is saved at the start of every line; after an error
it goes back to the state saved at the start of the bad line, the rest of that line (and an
indented block under it) is skipped, and parsing goes on with the next line. A block left
empty by a skipped line is closed with a filler line (``answer``, an option name, ...), so no
second error is reported for it. At most one error is reported per line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedToken
from lark.indenter import DedentError, Indenter
from lark.parsers.lalr_interactive_parser import InteractiveParser

from voxflow.syntax.transformer import TransformError

__all__ = ["MAX_ERRORS", "ParseErrors", "parse_collecting"]

MAX_ERRORS = 50
"""Errors reported for one file at most (the rest are likely consequences)."""

_LINE_END = frozenset({"_NL", "_INDENT", "_DEDENT"})
# Lines that complete an empty block, tried in order: a step, an option line, a match case.
_FILLERS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("ANSWER", "answer"), ("_NL", "\n")),
    (("NAME", "x"), ("_NL", "\n")),
    (("DEFAULT", "default"), ("__ANON_0", "->"), ("NAME", "x"), ("_NL", "\n")),
    (("ON", "on"), ("NAME", "x"), ("__ANON_0", "->"), ("NAME", "x"), ("_NL", "\n")),
)


@dataclass
class ParseErrors:
    """The errors met, in file order, and the parse result when there were none."""

    errors: list[Exception] = field(default_factory=list)
    result: Any = None


def parse_collecting(parser: Lark, text: str, indenter: Indenter) -> ParseErrors:
    """Parse ``text``; every syntax error is collected (never raised). A character no token
    starts with (an unterminated string), a bad dedent or a builder error ends the parse: the
    token stream cannot go on after them. ``indenter`` is a fresh postlexer."""
    out = ParseErrors()
    ip = parser.parse_interactive(text)
    ps = ip.parser_state
    # Lark's PostLexConnector keeps the contextual lexer in an untyped attribute
    contextual = getattr(ip.lexer_thread.lexer, "lexer")  # noqa: B009  (mypy: untyped)
    raw = _raw_tokens(contextual, ip.lexer_thread.state, ps)
    stream: Iterator[Token] = indenter.process(raw)  # type: ignore[no-untyped-call]  # Lark
    run = _Run(ip)
    tok: Token | None = None
    try:
        for tok in stream:
            if not run.take(tok, out):
                return out
        end = Token.new_borrow_pos("$END", "", tok) if tok is not None else Token("$END", "")
        try:
            result = ps.feed_token(end, True)
        except UnexpectedToken as err:
            if not out.errors:
                out.errors.append(_frozen(err, ip))
            return out
        if not out.errors:
            out.result = result
    except (UnexpectedCharacters, DedentError, TransformError) as err:
        out.errors.append(err)
    return out


def _raw_tokens(lexer: Any, lexer_state: Any, parser_state: Any) -> Iterator[Token]:
    """Lark's contextual lexing, except that a token that does not fit the parser's state is
    yielded (for the parser to reject and recover from) instead of ending the stream."""
    while True:
        try:
            yield lexer.lexers[parser_state.position].next_token(lexer_state, parser_state)
        except EOFError:
            return
        except UnexpectedCharacters as exc:
            try:
                token = lexer.root_lexer.next_token(lexer_state, parser_state)
            except UnexpectedCharacters:
                raise exc from None
            except EOFError:  # pragma: no cover - the context lexer saw a character
                return
            yield token


def _frozen(err: UnexpectedToken, ip: Any) -> UnexpectedToken:
    """``err`` with a copy of the parser state at the error (recovery changes the live one),
    and an interactive parser over it (``match_examples`` compares what each state accepts)."""
    state = ip.parser_state.copy(deepcopy_values=False)
    err.state = state
    err.interactive_parser = InteractiveParser(ip.parser, state, ip.lexer_thread)
    return err


class _Run:
    """The recovery state of one parse: the stacks saved at the line start, what to drop."""

    def __init__(self, ip: Any) -> None:
        self.ip = ip
        self.ps = ip.parser_state
        self.saved = self._save()
        self.line_start = True
        self.skipping = False  # dropping the rest of a bad line
        self.depth = 0  # indented blocks under a bad line still to drop
        self.drop_indent = False  # a block right after the bad line is dropped too
        self.last_line = 0

    def _save(self) -> tuple[list[Any], list[Any]]:
        return list(self.ps.state_stack), list(self.ps.value_stack)

    def _restore(self) -> None:
        # in place: the contextual lexer reads this very parser state
        self.ps.state_stack[:] = self.saved[0]
        self.ps.value_stack[:] = self.saved[1]

    def take(self, tok: Token, out: ParseErrors) -> bool:
        """Feed (or drop) one token; False to stop the parse."""
        if self.drop_indent:
            self.drop_indent = False
            if tok.type == "_INDENT":
                self.depth = 1
                return True
        if self.skipping or self.depth:
            self._drop(tok)
            return True
        if self.line_start and tok.type not in _LINE_END:
            self.saved = self._save()
        try:
            self.ps.feed_token(tok)
        except UnexpectedToken as err:
            return self._error(tok, _frozen(err, self.ip), out)
        self.line_start = tok.type in _LINE_END
        if self.line_start:
            self.saved = self._save()
        return True

    def _error(self, tok: Token, err: UnexpectedToken, out: ParseErrors) -> bool:
        self._restore()
        if tok.type == "_DEDENT" and out.errors and _fill(self.ps, tok):
            return True  # a block a skipped line left empty
        line = tok.line or 0
        if line > self.last_line or not out.errors:
            out.errors.append(err)
            self.last_line = max(line, self.last_line)
        if len(out.errors) >= MAX_ERRORS:
            return False
        if tok.type == "_DEDENT":
            return _fill(self.ps, tok)
        if tok.type == "_INDENT":
            self.depth = 1  # an unexpected indented block: drop all of it
        elif tok.type == "_NL":
            self.drop_indent = True
            self.line_start = True
        else:
            self.skipping = True
        return True

    def _drop(self, tok: Token) -> None:
        if self.skipping:
            if tok.type == "_NL":
                self.skipping = False
                self.drop_indent = True
                self._resume()
            return
        if tok.type == "_INDENT":
            self.depth += 1
        elif tok.type == "_DEDENT":
            self.depth -= 1
            if not self.depth:
                self._resume()

    def _resume(self) -> None:
        self.line_start = True
        self.saved = self._save()


def _fill(ps: Any, dedent: Token) -> bool:
    """Close an empty block before ``dedent`` with a filler line, then feed the dedent."""
    for filler in _FILLERS:
        trial = ps.copy(deepcopy_values=False)
        try:
            for kind, value in filler:
                trial.feed_token(Token.new_borrow_pos(kind, value, dedent))
            trial.feed_token(dedent)
        except (UnexpectedToken, TransformError):
            continue
        ps.state_stack[:] = trial.state_stack
        ps.value_stack[:] = trial.value_stack
        return True
    return False
