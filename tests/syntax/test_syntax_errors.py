"""Syntax errors are diagnostics with positions and words, never tracebacks."""

from __future__ import annotations

import pytest

from voxflow.errors import VoxflowSyntaxError
from voxflow.source import Source
from voxflow.syntax import ast
from voxflow.syntax.parser import parse_module, parse_or_raise

CASES = [
    ("state main\n    answer\n", "missing ':' after the state name", (1, 11)),
    ('state a:\n    say "hello\n', "unterminated string", (2, 9)),
    ("state a:\n    pause 5sec\n", "bad duration '5sec'", (2, 11)),
    ('state a:\n    speak "hi"\n', "unknown step 'speak'", (2, 5)),
    ('state a:\n    menu "x"\n        1 -> b\n', "missing ':' at the end of the previous", (3, 1)),
    ("state a:\n    if x > 1\n        goto b\n", "missing ':' after the condition", (2, 13)),
    ('state a:\n    say "x" voice\n', "an option needs a value", (2, 18)),
    ("include foo.flow\n", "include path must be a quoted string", (1, 9)),
    ("state a:\n  answer\n    hangup\n", "unexpected indentation", (3, 1)),
    ("state a:\n    answer\n  hangup\n", "indentation does not match", (3, 1)),
    ('state a:\n    menu:\n        1, "sales" sales\n', "missing '->'", (3, 20)),
    ("state a:\n    set x = 1 +\n", "expression is incomplete", (2, 16)),
    ("state a:\n    goto\n", "expected a state name after 'goto'", (2, 9)),
    ("scope s\n    state a:\n        answer\n", "missing ':' after the scope name", (1, 8)),
    ("state a:\n    set x 1\n", "missing '='", (2, 11)),
    ('say "hi"\n', "a step must be inside a state", (1, 1)),
    ("\x00\x01garbage", "unexpected character", (1, 1)),
]


@pytest.mark.parametrize(("text", "message", "pos"), CASES)
def test_common_mistakes_are_named(text: str, message: str, pos: tuple[int, int]) -> None:
    module, diags = parse_module(Source("bad.flow", text))
    assert module is None
    assert len(diags) == 1
    d = diags[0]
    assert d.code == "VF001"
    assert d.file == "bad.flow"
    assert message in d.message
    assert (d.span.line, d.span.col) == pos


def test_parse_or_raise_carries_line_and_column() -> None:
    with pytest.raises(VoxflowSyntaxError) as info:
        parse_or_raise(Source("x.flow", "state a:\n    goto\n"))
    assert (info.value.line, info.value.column) == (2, 9)


def test_spans_cover_whole_constructs() -> None:
    text = 'state start:\n    say "hi" voice "en"\n    goto start\n'
    module, diags = parse_module(Source("ok.flow", text))
    assert not diags and module is not None
    state = module.states[0]
    assert (state.span.line, state.span.col, state.span.end_line) == (1, 1, 3)
    say = state.steps[0]
    assert isinstance(say, ast.SimpleStep)
    assert (say.span.line, say.span.col, say.span.end_col) == (2, 5, 24)
    goto = state.steps[1]
    assert isinstance(goto, ast.GotoStep)
    assert (goto.target_span.col, goto.target_span.end_col) == (10, 15)


def _all(text: str) -> list[tuple[int, str]]:
    module, diags = parse_module(Source("bad.flow", text))
    assert module is None
    assert all(d.code == "VF001" for d in diags)
    return [(d.span.line, d.message) for d in diags]


def test_every_syntax_error_is_reported_once_without_follow_on_errors() -> None:
    text = (
        "state a\n"  # 1: missing ':' (its block is skipped with it)
        '    say "x"\n'
        "state b:\n"
        "    set x 1\n"  # 4
        "    hangup\n"
        "state c:\n"
        "    goto\n"  # 7: the only step: the empty block is no second error
        "state d:\n"
        "    answer\n"
        "        hangup\n"  # 10
        "    goto a\n"
    )
    got = _all(text)
    assert [line for line, _ in got] == [1, 4, 7, 10]
    assert "missing ':' after the state name" in got[0][1]
    assert "missing '='" in got[1][1]
    assert "expected a state name after 'goto'" in got[2][1]
    assert "line 10 is indented more than line 9" in got[3][1]


def test_else_if_suggests_elif() -> None:
    text = "state a:\n    if x:\n        hangup\n    else if y:\n        hangup\n    hangup\n"
    [(line, message)] = _all(text)
    assert (line, message) == (4, "write 'elif' instead of 'else if'")


def test_a_lexer_error_ends_the_list_after_the_earlier_errors() -> None:
    got = _all('state a:\n    set x 1\n    say "open\n    set y 2\n')
    assert [line for line, _ in got] == [2, 3]
    assert got[1][1] == "unterminated string"
