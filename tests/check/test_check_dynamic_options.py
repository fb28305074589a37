"""Step options from typed expressions and menus whose choices come from a list: lowering,
type checks, and the interpreter (virtual time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxflow.compiler import compile_flow
from voxflow.ir import DialStep, DynamicOption, Flow, GatherStep, VarExpr
from voxflow.testing import parse_scenario_text, run_scenario
from voxflow.testing.sim import SimResult

FLOW = Path(__file__).with_name("data") / "dynamic_options.flow"


def _flow(text: str | None = None) -> Flow:
    result = compile_flow(text or FLOW.read_text(), str(FLOW))
    assert result.flow is not None, result.diagnostics
    assert not [d for d in result.diagnostics if d.is_error]
    return result.flow


def _codes(text: str) -> list[tuple[str, int, str]]:
    return [(d.code, d.span.line, d.message) for d in compile_flow(text, "t.flow").diagnostics]


def test_expressions_lower_to_dynamic_options_and_a_list_menu() -> None:
    flow = _flow()
    dial = flow.subflows["ring"].states["r"].steps[0]
    assert isinstance(dial, DialStep)
    assert dial.dynamic == (
        DynamicOption(field="timeout_ms", expr=VarExpr(name="wait"), kind="duration"),
    )
    gather, menu = flow.states["pick"].steps[:2]
    assert isinstance(gather, GatherStep) and gather.dynamic[0].field == "max_digits"
    assert isinstance(menu, GatherStep) and menu.choices_from == VarExpr(name="periods")
    assert menu.choices == ()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("wait: duration", "wait: number", "'timeout' needs a duration, not number"),
        ("max_digits len(pin)", "max_digits pin", "'max_digits' needs a number, not string"),
        ("choices periods", "choices pin", "'choices' needs a list, not string"),
    ],
)
def test_option_expressions_are_checked_by_type(old: str, new: str, message: str) -> None:
    text = FLOW.read_text()
    assert old in text
    got = [m for c, _, m in _codes(text.replace(old, new)) if c == "VF303"]
    assert got == [message]


def test_choice_lines_and_a_choice_list_do_not_mix() -> None:
    text = FLOW.read_text().replace(
        "        choices periods\n", "        choices periods\n        1 -> bye\n"
    )
    assert any(
        m == "a menu takes choice lines or 'choices LIST', not both" for _, _, m in _codes(text)
    )


def test_options_that_take_literals_only_still_say_so() -> None:
    text = FLOW.read_text().replace(
        "max_digits len(pin)", "max_digits len(pin)\n        retries len(pin)"
    )
    assert ("VF408", 18, "'retries' takes a whole number") in _codes(text)


def _run(steps: str, mocks: str = "{}") -> SimResult:
    sf = parse_scenario_text(
        f"flow: x.flow\nscenarios:\n  - name: s\n    mocks: {mocks}\n    steps: {steps}\n"
    )
    res = run_scenario(_flow(), sf.scenarios[0])
    assert not res.problems, res.problems
    return res


def test_the_interpreter_uses_the_values_when_the_step_starts() -> None:
    res = _run('[{wait: 4s}, {press: "1234"}, {press: 2}]')
    assert res.said[1] == "For morning, press 1. For afternoon, press 2. For evening, press 3."
    assert res.variables["period"] == "afternoon" and res.variables["code"] == "1234"
    spoken = _run('[{wait: 4s}, {press: "1234"}, {say: "evening please"}]')
    assert spoken.variables["period"] == "evening"


def test_a_dial_timeout_passed_as_a_subflow_argument() -> None:
    res = _run("[]", "{dial: [{endpoint: sales, result: noanswer, after: 60s}]}")
    noanswer = next(line.t for line in res.trace if "dial -> noanswer" in line.text)
    assert noanswer == pytest.approx(20.0)  # the subflow's 'wait' (20s), not 60 s
