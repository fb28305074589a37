"""A call's checkpoint: taken from a running call, through JSON, resumed at its state."""

from __future__ import annotations

from voxflow.compiler import compile_flow
from voxflow.ir.models import Flow
from voxflow.runtime import events as ev
from voxflow.runtime.checkpoint import Checkpoint, checkpoint_of, flow_hash, resume_state
from voxflow.runtime.step import RunState, initial_state, step

FLOW = """\
flow resume "resumes at its menu":
    answers "100"

var picked: string = "none"

state start:
    answer
    set picked = "early"
    say "Welcome."
    goto menu

state menu:
    say "Main menu."
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    say "You picked {{ picked }}."
    hangup "done"
"""

CALL = ev.CallInfo("ch-1", "+15550100", "100", "inbound")


def _flow() -> Flow:
    flow = compile_flow(FLOW, "resume.flow").flow
    assert flow is not None
    return flow


def _until_menu_waits(flow: Flow, state: RunState) -> tuple[RunState, list[ev.Command]]:
    """Start the call and complete its ops until the menu collects keys."""
    state, cmds = step(flow, state, ev.Start())
    seen = list(cmds)
    while not state.awaits_caller:
        op = next(c for c in cmds if isinstance(c, ev.Op) and not isinstance(c, ev.StartTimer))
        state, cmds = step(flow, state, ev.OpDone(op.cid))
        seen += cmds
    return state, seen


def test_a_resumed_call_re_enters_its_state_with_its_variables() -> None:
    flow = _flow()
    state, first = _until_menu_waits(flow, initial_state(flow, CALL))
    assert state.state_name == "menu"
    cp = checkpoint_of(state, flow_hash(flow))
    assert cp is not None and cp.state == "menu" and cp.variables == {"picked": "early"}
    cp = Checkpoint.from_json(cp.to_json())

    resumed, cmds = _until_menu_waits(flow, resume_state(flow, initial_state(flow, CALL), cp))
    kinds = [(c.kind, c.data.get("state")) for c in cmds if isinstance(c, ev.Notify)]
    assert ("call.resumed", "menu") in kinds and ("state.entered", "start") not in kinds
    assert not any(isinstance(c, ev.Answer) for c in cmds)  # nothing before the state repeats
    said = [c.text for c in cmds if isinstance(c, ev.Say)]
    assert "Main menu." in said and "Welcome." not in said
    assert [c.text for c in first if isinstance(c, ev.Say)][:2] == ["Welcome.", "Main menu."]
    done, out = step(flow, resumed, ev.Dtmf("1"))
    assert done.state_name == "done"
    assert [c.text for c in out if isinstance(c, ev.Say)] == ["You picked early."]


def test_no_checkpoint_before_the_start_or_after_the_end() -> None:
    flow = _flow()
    fresh = initial_state(flow, CALL)
    assert checkpoint_of(fresh, "h") is None
    state, _ = _until_menu_waits(flow, fresh)
    ended, _ = step(flow, state, ev.HangupEvent("caller"))
    assert checkpoint_of(ended, "h") is None


def test_a_checkpoint_of_a_state_the_flow_lacks_is_refused() -> None:
    flow = _flow()
    try:
        resume_state(flow, initial_state(flow, CALL), Checkpoint("h", "gone", {}))
    except ValueError as exc:
        assert "no state 'gone'" in str(exc)
    else:
        raise AssertionError("resume_state accepted a missing state")
    for bad in ("{}", "[1]", '{"flow_hash": "h"}'):
        try:
            Checkpoint.from_json(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} parsed as a checkpoint")
