"""A queue step's exit keys end to end over real ARI on the sandbox: the shipped ``support``
queue (queues.conf ``context = voxflow-queue-exit``) lets a waiting caller out with a digit, the
flow goes on with that key's handler and reads QUEUEPOSITION from ``into``; a digit that is no
exit key of the step puts the caller back in the queue."""

from __future__ import annotations

import asyncio
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


async def test_another_digit_keeps_the_caller_s_place_in_the_queue(tmp_path: Path) -> None:
    # Asterisk's valid_exit lets any digit [voxflow-queue-exit] matches out of Queue(); voxflow
    # queues the caller again with Queue()'s position argument (QUEUEPOSITION when it left), so
    # a key the step does not list does not send the caller to the back (it did: position 2)
    flow = tmp_path / "leave.flow"
    flow.write_text(FLOW.replace("timeout 3s", "timeout 30s"))
    async with serving([flow]) as env:
        first = await env.call("100")
        await first.wait_for("queue", 20)
        second = await env.call("100")
        await second.wait_for("queue", 20)  # queued behind the first caller
        await first.press("5")
        async with asyncio.timeout(20):
            while sum(e["type"] == "queue" for e in first.experience()) < 2:  # noqa: ASYNC110  # no event per entry
                await asyncio.sleep(0.05)  # back in Queue()
        await first.press("1")
        assert await env.result(first, 30) == End("completed", "message")
        assert env.said(first) == ["You left the queue at position 1 with key 1."]
        await second.hangup()
