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
