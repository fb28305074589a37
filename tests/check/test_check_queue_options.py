"""Queue options kept in the IR for the dialplan side: priority (a number or an expression),
position announcements, call data carried to whoever takes the call (a map, checked by type)."""

from __future__ import annotations

from pathlib import Path

from voxflow.compiler import compile_flow
from voxflow.ir import QueueStep
from voxflow.runtime import events as ev
from voxflow.runtime.step import initial_state, step
from voxflow.testing import parse_scenario_text, run_scenario

FLOW = (Path(__file__).with_name("data") / "queue_options.flow").read_text()


def test_queue_options_lower_and_reach_the_queue_command() -> None:
    result = compile_flow(FLOW, "q.flow")
    # announce_position is carried, and flagged: it changes nothing on Asterisk (VF212)
    assert [d.code for d in result.diagnostics] == ["VF212"] and result.flow is not None
    flow = result.flow
    q = flow.states["start"].steps[1]
    assert isinstance(q, QueueStep)
    assert (q.priority, q.announce_position, q.music) == (5, True, "jazz")
    state, cmds = step(flow, initial_state(flow, ev.CallInfo("c", "+1", "+2")), ev.Start(0))
    answer = next(c for c in cmds if isinstance(c, ev.Op))
    _, cmds = step(flow, state, ev.OpDone(answer.cid, None, now=0))
    queue = next(c for c in cmds if isinstance(c, ev.Queue))
    assert (queue.priority, queue.announce_position) == (5, True)
    assert queue.carry == (("case", "C-42"), ("vip", "False"))


def test_carry_must_be_a_map_and_priority_a_number() -> None:
    bad = FLOW.replace('{"case": case_id, "vip": vip}', "case_id").replace(
        "priority 5", "priority case_id"
    )
    got = sorted(d.message for d in compile_flow(bad, "q.flow").diagnostics if d.code == "VF303")
    assert got == ["'carry' needs a map, not string", "'priority' needs a number, not string"]


TRANSFER = """flow t:
    timeout 5s

var case_id: string = "C-42"

state start:
    answer
    transfer "PJSIP/survey":
        carry {"case": case_id, "agent": "dana"}
"""


def test_transfer_carries_call_data_through_the_simulator() -> None:
    result = compile_flow(TRANSFER, "t.flow")
    assert result.diagnostics == [] and result.flow is not None
    sf = parse_scenario_text("flow: t.flow\nscenarios:\n  - name: s\n")
    res = run_scenario(result.flow, sf.scenarios[0])
    assert not res.problems, res.problems
    assert "carries case='C-42', agent='dana'" in [line.text for line in res.trace]
    assert res.ended is not None and res.ended[0] == "transferred"
