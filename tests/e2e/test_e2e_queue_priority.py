"""A queue step's ``priority`` end to end over real ARI on the sandbox: voxflow sets
``QUEUE_PRIO`` and the sandbox's ``Queue()`` places the caller ahead of the callers of a lower
priority already waiting, as app_queue.c's ``join_queue`` does."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _e2e_kit import serving

FLOW = """flow line "Wait in line":
    answers "NUMBER"

state start:
    answer
    queue "support" timeout 30sPRIORITY:
        on answered, timeout, failed:
            hangup "queue"
"""


async def test_a_caller_with_a_higher_priority_goes_ahead(tmp_path: Path) -> None:
    plain, urgent = tmp_path / "plain.flow", tmp_path / "urgent.flow"
    plain.write_text(FLOW.replace("NUMBER", "100").replace("PRIORITY", ""))
    text = FLOW.replace("NUMBER", "200").replace("line ", "urgent_line ")
    urgent.write_text(text.replace("PRIORITY", " priority 5"))
    async with serving([plain, urgent]) as env:
        first = await env.call("100")
        await first.wait_for("queue", 20)
        second = await env.call("200")
        await second.wait_for("queue", 20)
        assert env.sb.pbx.channels[second.id].variables.get("QUEUE_PRIO") == "5"
        waiting = env.sb.pbx.contexts.queues["support"].waiting
        assert waiting == [second.id, first.id]  # joined later, waits ahead
        await asyncio.gather(first.hangup(), second.hangup())


TWO_STEPS = """flow again "Two queues":
    answers "300"

state start:
    answer
    queue "sales" timeout 1s priority 10:
        on answered, failed:
            hangup "sales"
        on timeout:
            goto support

state support:
    queue "support" timeout 30s:
        on answered, timeout, failed:
            hangup "support"
"""


async def _second_queue_order(tmp_path: Path, **kw: dict[str, str]) -> tuple[list[str], str, str]:
    """A priority-0 caller waits in support; a caller queued in sales at priority 10 (the step
    times out) then in support by a step without ``priority``: support's order (ids), the
    waiting caller's id, the two-step caller's id."""
    plain, again = tmp_path / "plain.flow", tmp_path / "again.flow"
    plain.write_text(FLOW.replace("NUMBER", "100").replace("PRIORITY", ""))
    again.write_text(TWO_STEPS)
    async with serving([plain, again]) as env:
        first = await env.call("100")
        await first.wait_for("queue", 20)
        second = await env.call("300", **kw)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while sum(e["type"] == "queue" for e in second.experience()) < 2:  # no event per entry
            assert loop.time() < deadline, "the second queue step never queued the caller"
            await asyncio.sleep(0.05)
        order = list(env.sb.pbx.contexts.queues["support"].waiting)
        await asyncio.gather(first.hangup(), second.hangup())
        return order, first.id, second.id


async def test_a_queue_step_without_priority_does_not_keep_an_earlier_step_s(
    tmp_path: Path,
) -> None:
    # QUEUE_PRIO=10 of the sales step stayed on the channel: the caller jumped ahead
    order, waiting, again = await _second_queue_order(tmp_path)
    assert order == [waiting, again]


async def test_a_queue_step_without_priority_keeps_the_dialplan_s_queue_prio(
    tmp_path: Path,
) -> None:
    # the dialplan set QUEUE_PRIO=3 before Stasis(): a step without priority leaves it at that
    order, waiting, again = await _second_queue_order(tmp_path, variables={"QUEUE_PRIO": "3"})
    assert order == [again, waiting]
