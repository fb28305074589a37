"""VF204 and 'retries unlimited': loops the caller bounds are accepted, loops nothing bounds are
reported with their path (anytime commands included), counters in shared states count."""

from __future__ import annotations

from voxflow.compiler import compile_flow
from voxflow.ir import GatherStep
from voxflow.testing import parse_scenario_text, run_scenario

HEAD = "flow t:\n    timeout 5s\n\n"

FOREVER = """
state main:
    menu "Press 1.":
        retries unlimited
        1 -> bye
        on nomatch -> retry
        on noinput 3 -> bye
        on noinput -> retry

state bye:
    hangup
"""


def _diags(body: str) -> list[tuple[str, int, str]]:
    return [
        (d.code, d.span.line, d.message) for d in compile_flow(HEAD + body, "t.flow").diagnostics
    ]


def _codes(body: str) -> list[str]:
    return [c for c, _, _ in _diags(body)]


def test_retries_unlimited_needs_no_exhausted_and_compiles_to_an_unbounded_step() -> None:
    assert _diags(FOREVER) == []
    flow = compile_flow(HEAD + FOREVER, "t.flow").flow
    assert flow is not None
    step = flow.states["main"].steps[0]
    assert isinstance(step, GatherStep) and step.unlimited


def test_retries_takes_a_number_or_unlimited() -> None:
    got = _diags(FOREVER.replace("retries unlimited", "retries forever"))
    assert ("VF408", 7, "'retries' takes a whole number") in got


def test_an_error_retry_with_unlimited_retries_spins_and_is_reported() -> None:
    body = FOREVER.replace("on nomatch -> retry", "on nomatch -> retry\n        on error -> retry")
    [(code, line, message)] = _diags(body)
    assert (code, line) == ("VF204", 10)
    assert "'error' of menu in state 'main' retries it without waiting for the caller" in message


def test_a_goto_loop_on_caller_outcomes_of_an_unlimited_step_is_accepted() -> None:
    body = FOREVER.replace("on nomatch -> retry", "on nomatch -> sorry") + (
        '\nstate sorry:\n    say "Sorry."\n    goto main\n'
    )
    assert _codes(body) == []
    bounded = body.replace("        retries unlimited\n", "")
    [(_, _, message)] = [d for d in _diags(bounded) if d[0] == "VF204"]
    assert message.endswith(
        "loops back through 'sorry' with no bound: main --nomatch--> sorry --> main"
    )


def test_vf204_names_the_anytime_command_that_closes_the_loop() -> None:
    body = """
anytime "menu", 9 -> main

state main:
    menu "Press 1.":
        1 -> bye
        on nomatch -> help
        on noinput -> retry
        on exhausted -> bye

state help:
    gather "Say menu to go back." into x:
        on noinput, nomatch -> retry
        on exhausted -> bye
    goto bye

state bye:
    hangup
"""
    [(code, line, message)] = [d for d in _diags(body) if d[0] == "VF204"]
    assert (code, line) == ("VF204", 10)
    assert message.endswith("main --nomatch--> help --anytime command (line 5)--> main")


def test_a_counter_kept_in_a_shared_state_bounds_the_loop() -> None:
    body = """
var fails: number = 0

state main:
    menu "Press 1.":
        1 -> bye
        on nomatch -> count
        on noinput -> count

state count:
    set fails = fails + 1
    if fails >= 3:
        goto bye
    goto main

state bye:
    hangup
"""
    assert "VF204" not in _codes(body)
    no_test = body.replace("    if fails >= 3:\n        goto bye\n", "")
    assert "VF204" in _codes(no_test)


def test_no_vf204_for_an_exhausted_that_cannot_happen() -> None:
    body = """
state main:
    menu "Press 1.":
        1 -> bye
        on nomatch, noinput -> bye
        on exhausted -> main

state bye:
    hangup
"""
    assert "VF204" not in _codes(body)
    retried = body.replace("on nomatch, noinput -> bye", "on nomatch, noinput -> retry")
    assert "VF204" in _codes(retried)


def test_the_interpreter_never_exhausts_an_unlimited_step() -> None:
    flow = compile_flow(HEAD + FOREVER, "t.flow").flow
    assert flow is not None
    presses = ", ".join(["{press: 7}"] * 6 + ["{press: 1}"])
    sf = parse_scenario_text(f"flow: t.flow\nscenarios:\n  - name: s\n    steps: [{presses}]\n")
    res = run_scenario(flow, sf.scenarios[0])
    assert not res.problems, res.problems
    assert res.states == ["main", "bye"]
    nomatches = [line.text for line in res.trace if "-> nomatch" in line.text]
    assert len(nomatches) == 6 and not any("exhausted" in line.text for line in res.trace)
    silent = run_scenario(
        flow,
        parse_scenario_text("flow: t.flow\nscenarios:\n  - name: s\n    steps: []\n").scenarios[0],
    )
    assert sum("-> noinput" in line.text for line in silent.trace) == 3  # 'on noinput 3 -> bye'
