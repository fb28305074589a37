"""Menus with DTMF key patterns through checker and lowering, then run by the interpreter
(virtual time): the keys pressed are stored, and the inter-digit wait ends as soon as no choice
can take another key."""

from __future__ import annotations

import pytest

from voxflow.compiler import compile_flow
from voxflow.ir import Flow, GatherStep
from voxflow.testing import parse_scenario_text, run_scenario
from voxflow.testing.sim import SimResult

MENU = """flow t:
    timeout 5s
    interdigit 3s

var ext: string

state main:
    menu "Dial an extension, or 0.":
        into ext
        key "_1XX" -> extension
        0 -> bye
        on nomatch -> bye
        on noinput -> bye

state extension:
    say "Extension {{ ext }}."
    hangup

state bye:
    hangup "nothing"
"""


def test_the_checker_reports_a_bad_pattern_and_lowering_bounds_max_digits() -> None:
    result = compile_flow(MENU, "t.flow")
    assert result.diagnostics == [] and result.flow is not None
    step = result.flow.states["main"].steps[0]
    assert isinstance(step, GatherStep) and step.max_digits == 3
    bad = compile_flow(MENU.replace("_1XX", "_1XQ"), "t.flow")
    assert [(d.code, d.span.line) for d in bad.diagnostics] == [("VF406", 10)]
    open_ended = compile_flow(MENU.replace("_1XX", "_1."), "t.flow").flow
    assert open_ended is not None
    assert getattr(open_ended.states["main"].steps[0], "max_digits", 0) is None


def _flow() -> Flow:
    result = compile_flow(MENU, "t.flow")
    assert result.flow is not None
    return result.flow


def _run(steps: str) -> SimResult:
    sf = parse_scenario_text(f"flow: t.flow\nscenarios:\n  - name: s\n    steps: {steps}\n")
    res = run_scenario(_flow(), sf.scenarios[0])
    assert not res.problems, res.problems
    return res


def _at(res: SimResult, text: str) -> float:
    return next(line.t for line in res.trace if text in line.text)


def test_the_keys_pressed_are_stored_and_the_match_is_taken_at_the_last_key() -> None:
    res = _run('[{press: "142"}]')
    assert res.states == ["main", "extension"]
    assert res.variables["ext"] == "142"
    assert "Extension 142." in res.said
    # keys are 0.2 s apart: the choice is taken with the third key, not 3 s later
    assert _at(res, "choice:_1XX") == pytest.approx(_at(res, "presses 142") + 0.4)


def test_a_key_no_pattern_can_start_with_is_a_nomatch_at_once() -> None:
    res = _run('[{press: "3"}]')
    assert res.ended == ("completed", "nothing")
    assert _at(res, "-> nomatch") == _at(res, "presses 3")  # no 3 s inter-digit wait


def test_an_unfinished_pattern_waits_the_inter_digit_time() -> None:
    res = _run('[{press: "14"}]')
    assert _at(res, "-> nomatch") == pytest.approx(_at(res, "presses 14") + 0.2 + 3.0)
