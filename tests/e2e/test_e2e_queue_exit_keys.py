"""A queue step's exit keys end to end over real ARI on the sandbox: the shipped ``support``
queue (queues.conf ``context = voxflow-queue-exit``) lets a waiting caller out with a digit, the
flow goes on with that key's handler and reads QUEUEPOSITION from ``into``; a digit that is no
exit key of the step puts the caller back in the queue."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _e2e_kit import serving

from voxflow.runtime.events import End

FLOW = """flow leave "Leave the queue":
    answers "100"
    timeout 5s

var q: map = {}

state start:
    answer
    queue "support" timeout 3s into q:
        1 -> message
        on answered:
            hangup "answered"
        on timeout:
            say "Still nobody, position {{ q.position }}."
            hangup "timeout"
        on failed:
            hangup "failed"

state message:
    say "You left the queue at position {{ q.position }} with key {{ q.key }}."
    hangup "message"
"""


async def test_an_exit_key_leaves_the_queue_for_its_state(tmp_path: Path) -> None:
    flow = tmp_path / "leave.flow"
    flow.write_text(FLOW)
    async with serving([flow]) as env:
        call = await env.call("100")
        await call.wait_for("queue", 20)  # the caller hears the queue
        await call.press("1")
        end = await env.result(call, 30)
        assert end == End("completed", "message")
        assert env.said(call) == ["You left the queue at position 1 with key 1."]


async def test_another_digit_puts_the_caller_back_in_the_queue(tmp_path: Path) -> None:
    flow = tmp_path / "leave.flow"
    flow.write_text(FLOW)
    async with serving([flow]) as env:
        call = await env.call("100")
        await call.wait_for("queue", 20)  # the caller hears the queue
        await call.press("5")
        end = await env.result(call, 30)
        assert end == End("completed", "timeout")
        assert env.said(call) == ["Still nobody, position 1."]
