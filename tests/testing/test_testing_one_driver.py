"""voxflow test runs the interpreter that serves calls: the CallDriver on a virtual-time call.

Each test here is a place where the simulator and the driver used to disagree; the one
interpreter now decides, and the trace says what it did."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

from voxflow.compiler import compile_flow
from voxflow.ir.models import Flow
from voxflow.testing import parse_scenario_text, run_scenario
from voxflow.testing import sim as sim_module
from voxflow.testing import simcall as simcall_module
from voxflow.testing.sim import SimResult


def _flow(text: str) -> Flow:
    result = compile_flow(text, "t.flow")
    assert result.flow is not None, result.diagnostics
    return result.flow


def _run(flow_text: str, scenario: str) -> SimResult:
    sf = parse_scenario_text("flow: t.flow\nscenarios:\n" + scenario)
    [sc] = sf.scenarios
    return run_scenario(_flow(flow_text), sc, sf.defaults)


def _lines(res: SimResult) -> list[str]:
    return [f"{t.who} {t.text}" for t in res.trace]


HANGUP_HTTP = """\
flow h:
    answers "200"

var _a: map
var _b: map

on hangup:
    http post "https://crm.example.test/a" into _a
    log "after the first request"
    http post "https://crm.example.test/b" into _b

state start:
    answer
    say "Hello."
    hangup "done"
"""


def test_on_hangup_runs_every_step_when_the_flow_hangs_up() -> None:
    res = _run(HANGUP_HTTP, "  - name: x\n    mocks: {http: [{url: crm}]}\n")
    assert res.http == ["POST https://crm.example.test/a", "POST https://crm.example.test/b"]
    assert "log info: after the first request" in _lines(res)
    assert res.ended == ("completed", "done") and not res.problems


def test_on_hangup_runs_every_step_when_the_caller_hangs_up() -> None:
    res = _run(
        HANGUP_HTTP,
        "  - name: x\n    steps: [{hangup: , at: 0.2s}]\n    mocks: {http: [{url: crm}]}\n",
    )
    assert len(res.http) == 2 and "log info: after the first request" in _lines(res)
    assert res.ended is not None and res.ended[0] == "caller_hangup"


DIAL_THEN_ASK = """\
flow d:
    answers "200"
    timeout 3s

state start:
    answer
    dial "PJSIP/sales" timeout 20s:
        on answered, busy, noanswer, failed -> ask

state ask:
    gather "Say yes or no." input speech:
        "yes" -> yes
        "no" -> bye
        on noinput, nomatch -> bye

state yes:
    say "Great."
    hangup

state bye:
    say "Bye."
    hangup
"""


def test_speech_while_a_dial_rings_is_not_fed_to_a_later_step() -> None:
    res = _run(
        DIAL_THEN_ASK,
        "  - name: x\n    speech: true\n    steps: [{say: yes}]\n"
        "    mocks: {dial: [{result: busy, after: 5s}]}\n",
    )
    lines = _lines(res)
    assert "flow dial PJSIP/sales: busy (busy)" in lines  # the dial's outcome is in the trace
    assert 'flow did not hear "yes" (not listening for speech)' in lines
    assert res.states == ["start", "ask", "bye"]  # the gather did not get the old "yes"


def test_a_bridged_dial_shows_in_the_trace() -> None:
    res = _run(DIAL_THEN_ASK, "  - name: x\n    steps: [hangup]\n")
    assert "flow dial PJSIP/sales: answered, bridged" in _lines(res)


QUEUE = """\
flow q:
    answers "200"

state start:
    answer
    queue "support" timeout 2m:
        on answered -> bye
        on timeout -> late
        on failed -> bye

state late:
    say "Nobody is free."
    hangup

state bye:
    hangup
"""


def test_queue_outcomes_come_from_the_interpreter() -> None:
    res = _run(QUEUE, "  - name: x\n    timeout: 10m\n    mocks: {queue: [{result: timeout}]}\n")
    assert res.states == ["start", "late"]
    assert res.ended_at is not None and 120.0 <= res.ended_at < 125.0  # the flow's 2m timeout
    assert "flow queue support: timeout" in _lines(res)


RECORD = """\
flow r:
    answers "200"

var msg: string

state start:
    answer
    record "msg-{{ call.id }}" into msg max 1m silence 3s:
        prompt "Speak after the tone."
        on done, noinput -> bye
        on error -> bye

state bye:
    say "Bye."
    hangup
"""


def test_a_recording_hears_the_caller_and_says_where_it_went() -> None:
    res = _run(RECORD, "  - name: x\n    steps: [{say: my message for you}]\n")
    lines = _lines(res)
    assert any(
        x.startswith("flow recording msg-") and 'hears "my message for you"' in x for x in lines
    )
    assert not any("not listening" in x for x in lines)
    assert any(x.startswith("flow recorded msg-") and " -> ari:recording:msg-" in x for x in lines)


def test_the_simulator_has_no_step_interpretation_of_its_own() -> None:
    """It imports neither the step function nor the IR step models: the driver runs them."""
    for module in (sim_module, simcall_module):
        tree = ast.parse(Path(inspect.getfile(module)).read_text())
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module is not None
        }
        assert "voxflow.runtime.step" not in imported
        assert "voxflow.runtime.machine" not in imported


def test_a_key_pressed_before_a_recording_starts_leaves_a_trace_line() -> None:
    res = _run(RECORD, "  - name: x\n    steps: [{press: 5, bargein: 0.2s}, hangup]\n")
    assert "flow keys 5 ignored (before the recording)" in _lines(res), _lines(res)


SPOKEN_MENU = """\
flow m:
    answers "200"

var pin: string sensitive

state start:
    menu "Say orders or shop." bargein none:
        "orders" -> start
        "shop" -> start
        on noinput, nomatch, exhausted -> pin_state

state pin_state:
    gather "Your PIN please." into pin bargein none:
        capture digits
        max_digits 4
        on noinput, nomatch, exhausted:
            hangup
    hangup
"""


def test_keys_a_gather_does_not_take_leave_a_trace_line_masked_when_secret() -> None:
    steps = "[{press: 1}, {press: 7, bargein: 0.2s}, hangup]"
    res = _run(SPOKEN_MENU, f"  - name: x\n    steps: {steps}\n")
    lines = _lines(res)
    assert "flow keys 1 ignored (the step takes speech only)" in lines, lines
    assert "flow keys <redacted> ignored (the prompt takes no DTMF barge-in)" in lines, lines
    assert not any("keys 7" in x for x in lines)


LOOPS = """\
flow l:
    answers "200"

on error:
    goto start

state start:
    say "Again."
    hangup
"""


def test_a_flow_that_loops_without_time_passing_is_stopped_and_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from voxflow.runtime import machine

    monkeypatch.setattr(sim_module, "_MAX_TURNS", 1000)  # the same bound, reached sooner
    # the interpreter's own bound on errors in a row would end this loop first (next test)
    monkeypatch.setattr(machine, "ERROR_STREAK_LIMIT", 10**6)
    res = _run(LOOPS, "  - name: x\n    mocks: {fail: [{op: say}]}\n")
    assert any("the flow loops" in p for _, p in res.problems), res.problems
    assert res.ended is not None and res.ended[0] == "error"


def test_an_error_loop_ends_the_call_as_on_a_real_call() -> None:
    """The interpreter's bound (the same on a call): 20 errors in a row, nobody asked."""
    res = _run(LOOPS, "  - name: x\n    mocks: {fail: [{op: say}]}\n")
    assert res.ended is not None and res.ended[0] == "error"
    assert "the flow's error handling loops" in res.ended[1]
    assert not any("the flow loops" in p for _, p in res.problems)  # not the harness's guard


def test_an_interpreter_bug_fails_the_scenario(monkeypatch: pytest.MonkeyPatch) -> None:
    from voxflow.runtime import driver as driver_module
    from voxflow.runtime import events as ev
    from voxflow.runtime.step import step as real

    def broken(flow: Any, state: Any, event: ev.Event, observer: Any = None) -> Any:
        if isinstance(event, ev.OpDone):
            raise KeyError("boom")
        return real(flow, state, event, observer)

    monkeypatch.setattr(driver_module, "step", broken)
    res = _run(LOOPS, "  - name: x\n")
    assert res.ended == ("error", "interpreter failure: 'boom'")
    assert any("the interpreter failed: KeyError('boom')" in p for _, p in res.problems)


def test_a_key_pressed_while_a_dial_rings_is_type_ahead_for_the_next_gather() -> None:
    """As on a real call: the caller's channel still gets its DTMF while the dial rings, and
    the step function keeps keys nothing collects for the next gather."""
    flow = DIAL_THEN_ASK.replace(" input speech:", ":").replace('"yes" -> yes', "1 -> yes")
    res = _run(flow, "  - name: x\n    steps: [{press: 1}]\n    mocks: {dial: [{result: busy}]}\n")
    assert res.states == ["start", "ask", "yes"]
