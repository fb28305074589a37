"""The runtime's public observation hook (``step(..., observer)``) as the simulator uses it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voxflow.compiler.frontdoor import compile_flow
from voxflow.ir import models as ir
from voxflow.runtime import events as ev
from voxflow.runtime.step import RunState, initial_state, step

FLOW = """\
flow obs:
    answers "200"
    retries 2

anytime "operator", 0 -> bye
on error -> bye
on hangup:
    log "hung up"

state start:
    answer
    menu "Press 1 for yes.":
        1 -> yes
        on noinput -> bye
        on nomatch:
            say "Try again."
            retry
        on exhausted -> bye

state yes:
    say "Yes!"
    hangup

state bye:
    say "Bye."
    hangup
"""


class Recorder:
    """Records every observer call as a tuple."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def entered(self, where: str) -> None:
        self.calls.append(("entered", where))

    def outcome(self, where: str, step: Any, outcome: str, handler: ir.Handler | None) -> None:
        self.calls.append(("outcome", where, step.op, outcome, handler is not None))

    def error(self, where: str, handler: ir.Handler) -> None:
        self.calls.append(("error", where, handler.origin))

    def command(self, where: str, command: ir.Command) -> None:
        self.calls.append(("command", where, command.name))

    def hangup_handler(self, where: str) -> None:
        self.calls.append(("hangup_handler", where))

    def transition(self, where: str, step: Any, handler_steps: tuple[ir.Step, ...] | None) -> None:
        self.calls.append(("transition", where, step.op, handler_steps is not None))


def _flow(tmp_path: Path) -> ir.Flow:
    path = tmp_path / "obs.flow"
    path.write_text(FLOW)
    result = compile_flow(FLOW, str(path))
    assert result.flow is not None, result.diagnostics
    return result.flow


def _drive(
    flow: ir.Flow, events: list[Any], observer: Recorder | None
) -> tuple[RunState, list[list[ev.Command]]]:
    """Feed events; ``"done"`` answers every live op of the current wait."""
    state = initial_state(flow, ev.CallInfo(id="c1", caller="100", called="200"))
    out: list[list[ev.Command]] = []
    for e in events:
        batch: list[ev.Event]
        if e == "done":
            assert state.wait is not None
            batch = [ev.OpDone(c, None, now=0.0) for c in sorted(state.wait.cids)]
        else:
            batch = [e]
        for one in batch:
            state, cmds = step(flow, state, one, observer)
            out.append(cmds)
    return state, out


def test_observer_sees_states_outcomes_handlers_and_transitions(tmp_path: Path) -> None:
    flow = _flow(tmp_path)
    rec = Recorder()
    # answer, prompt done, the timer fires with no key (noinput -> bye), bye's prompt, hang-up
    script: list[Any] = [ev.Start(now=0.0), "done", "done"]
    state, _ = _drive(flow, script, rec)
    assert state.wait is not None and state.wait.kind == "gather"
    timer = state.wait.timer_cid
    assert timer is not None
    state, _ = step(flow, state, ev.TimerFired(timer, now=5.0), rec)
    assert state.wait is not None  # bye's prompt
    state, _ = step(flow, state, ev.OpDone(max(state.wait.cids), None, now=6.0), rec)
    assert state.ended
    assert rec.calls == [
        ("entered", "start"),
        ("outcome", "start", "gather", "noinput", True),
        ("transition", "start", "goto", True),
        ("entered", "bye"),
        ("transition", "bye", "hangup", False),
        ("hangup_handler", "bye"),
    ]


def test_observer_sees_anytime_commands_and_error_handlers(tmp_path: Path) -> None:
    flow = _flow(tmp_path)
    rec = Recorder()
    state, _ = _drive(flow, [ev.Start(now=0.0), "done", "done"], rec)
    state, _ = step(flow, state, ev.Dtmf("0", now=1.0), rec)
    assert ("command", "start", "operator") in rec.calls
    assert rec.calls[-1] == ("entered", "bye")

    rec2 = Recorder()
    state, _ = _drive(flow, [ev.Start(now=0.0)], rec2)
    assert state.wait is not None
    (cid,) = state.wait.cids
    state, _ = step(flow, state, ev.OpFailed(cid, "answer failed", now=0.1), rec2)
    assert ("error", "start", "flow") in rec2.calls
    assert rec2.calls[-2:] == [("transition", "start", "goto", True), ("entered", "bye")]


def test_observer_changes_nothing(tmp_path: Path) -> None:
    flow = _flow(tmp_path)
    script: list[Any] = [ev.Start(now=0.0), "done", "done", ev.Dtmf("9", now=2.0)]
    plain, plain_out = _drive(flow, script, None)
    seen, seen_out = _drive(flow, script, Recorder())
    assert plain == seen
    assert plain_out == seen_out
