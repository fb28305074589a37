"""A queue step's exit keys (choice lines of one digit) and ``into``: parsed, checked, lowered
to the IR and the queue command; misuse is a clear VF408 error, not a traceback."""

from __future__ import annotations

from voxflow.compiler import compile_flow
from voxflow.ir import QueueStep
from voxflow.runtime import events as ev
from voxflow.runtime.step import initial_state, step

FLOW = """flow q:
    timeout 5s

var q: map = {}

state start:
    answer
    queue "support" timeout 4m into q:
        1 -> message
        key "0" -> operator
        on answered, timeout, failed -> message

state message:
    say "Left at {{ q.position }} with {{ q.key }}."
    hangup

state operator:
    hangup "operator"
"""


def _queue(text: str = FLOW) -> QueueStep:
    result = compile_flow(text, "q.flow")
    assert result.diagnostics == [] and result.flow is not None
    q = result.flow.states["start"].steps[1]
    assert isinstance(q, QueueStep)
    return q


def test_exit_keys_lower_to_choices_and_reach_the_queue_command() -> None:
    q = _queue()
    assert [c.keys for c in q.choices] == [("1",), ("0",)]
    assert {"choice:1", "choice:0", "answered", "timeout", "failed"} <= set(q.on)
    assert q.var == "q"
    flow = compile_flow(FLOW, "q.flow").flow
    assert flow is not None
    state, cmds = step(flow, initial_state(flow, ev.CallInfo("c", "+1", "+2")), ev.Start(0))
    answer = next(c for c in cmds if isinstance(c, ev.Op))
    state, cmds = step(flow, state, ev.OpDone(answer.cid, None, now=0))
    queue = next(c for c in cmds if isinstance(c, ev.Queue))
    assert queue.keys == ("1", "0")
    back = {"outcome": "choice:0", "status": "EXITWITHKEY", "position": 2, "wait": None,
            "key": "0"}  # fmt: skip
    state, cmds = step(flow, state, ev.OpDone(queue.cid, back, now=1))
    assert state.variables()["q"] == {"status": "EXITWITHKEY", "position": 2, "wait": None,
                                      "key": "0"}  # fmt: skip
    assert any(isinstance(c, ev.Hangup) and c.reason == "operator" for c in cmds)


def _errors(text: str) -> list[str]:
    return [f"{d.code} {d.message}" for d in compile_flow(text, "q.flow").diagnostics]


def test_an_exit_key_is_one_digit() -> None:
    for bad, shown in (('"operator"', "phrase 'operator'"), ("12", "12"), ('key "*"', "*"),
                       ("/help/", "regex 'help'")):  # fmt: skip
        errors = _errors(FLOW.replace("1 -> message", f"{bad} -> message"))
        assert errors == [f"VF408 a queue's exit key is one digit 0-9, not {shown}"], bad


def test_a_key_twice_and_an_unknown_state_are_reported() -> None:
    errors = _errors(FLOW.replace('key "0" -> operator', "1 -> nowhere"))
    assert "VF101 unknown state 'nowhere'" in errors
    assert any(e.startswith("VF104 key '1' is used by two choices") for e in errors)


def test_other_steps_still_take_no_choices() -> None:
    text = FLOW.replace('queue "support" timeout 4m into q:', 'dial "PJSIP/x":')
    assert any(e.startswith("VF408 'dial' does not take choices") for e in _errors(text))
