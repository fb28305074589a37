"""DTMF key patterns (Asterisk style): matching, early end of the inter-digit wait, and the
checker of ``answers`` patterns (a menu's patterns through checker, lowering and interpreter:
tests/testing/test_testing_dtmf_patterns.py)."""

from __future__ import annotations

import pytest

from voxflow.compiler import compile_flow
from voxflow.spec.dtmf import (
    can_extend,
    example_number,
    key_matches,
    max_length,
    pattern_problem,
)


@pytest.mark.parametrize(
    ("key", "pressed", "matches", "more"),
    [
        ("_1XX", "123", True, False),
        ("_1XX", "12", False, True),
        ("_1XX", "3", False, False),
        ("_1XX", "1234", False, False),
        ("_NXXNXXXXXX", "2125551234", True, False),
        ("_NXXNXXXXXX", "1125551234", False, False),
        ("_Z0", "10", True, False),
        ("_Z0", "00", False, False),
        ("_9.", "9", False, True),
        ("_9.", "91", True, True),
        ("_9!", "9", True, True),
        ("_[1-3]5", "25", True, False),
        ("_[13]5", "25", False, False),
        ("_*7X", "*72", True, False),
        ("12", "12", True, False),
        ("12", "1", False, True),
        ("#", "#", True, False),
    ],
)
def test_patterns_match_and_say_whether_more_keys_could_match(
    key: str, pressed: str, matches: bool, more: bool
) -> None:
    assert key_matches(key, pressed) is matches
    assert can_extend(key, pressed) is more


def test_pattern_lengths_and_problems() -> None:
    assert (max_length("_1XX"), max_length("_9."), max_length("123")) == (3, None, 3)
    assert pattern_problem("_1XX") is None
    assert pattern_problem("_1Q") == "'Q' is not a DTMF key or pattern letter (X Z N [..] . !)"
    assert pattern_problem("_[1-") == "'[' without ']' in '_[1-'"
    assert pattern_problem("_") == "a pattern needs keys after '_'"
    assert pattern_problem("1E") == "'1E' is not a DTMF key"


def test_answers_patterns_are_checked() -> None:
    head = 'flow t:\n    answers "100", "_1XX", "_+1NXXNXXXXXX"\n\nstate s:\n    hangup\n'
    assert compile_flow(head, "t.flow").diagnostics == []
    bad = compile_flow(head.replace("_1XX", "_1XQ"), "t.flow").diagnostics
    assert [(d.code, d.message) for d in bad] == [
        ("VF408", "answers: 'Q' is not a number's character or pattern letter (X Z N [..] . !)")
    ]
    assert (example_number("_1XX"), example_number("_9."), example_number("200")) == (
        "100",
        "90",
        "200",
    )
