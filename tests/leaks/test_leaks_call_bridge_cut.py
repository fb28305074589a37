"""A dial's call bridge whose creation is still on its way when the caller hangs up is removed.

Joining an answered leg to its caller POSTs the ``vf-br-*`` bridge; the caller hanging up cancels
the join, whose undo DELETEd the bridge at once. Asterisk serves requests of different
connections in any order: the DELETE found nothing (404) and the POST then made a bridge nobody
removes (the media bridge's ``vf-mb-*`` twin, test_leaks_media_setup_cut.py). The sandbox holds
the POST (``Faults.late_requests``) to make the order certain."""

from __future__ import annotations

import asyncio
from pathlib import Path

from _leaks_kit import DIAL_FLOW, leftovers, serving_text, until

NOTHING = {"sessions": [], "channels": [], "bridges": []}


async def test_a_hang_up_while_the_call_bridge_is_being_made_leaves_no_bridge(
    tmp_path: Path,
) -> None:
    async with serving_text(tmp_path, DIAL_FLOW, sandbox={"answer_delay": 0.1}) as s:
        sb = s.sb
        sb.faults.late_requests(1.0, method="POST", path="^/bridges$")
        call = await sb.place_call(from_="+15550100", to="100", app="voxflow")
        await until(lambda: sb.faults.held == 1, 15, "the call bridge's POST held")
        assert any(c.startswith("vf-out-") for c in sb.pbx.channels)  # the leg answered
        await call.hangup()
        await until(lambda: sb.faults.held == 0, 15, "the held POST served")
        for _ in range(250):  # the undo's DELETE (5 s at most)
            if leftovers(s) == NOTHING:
                break
            await asyncio.sleep(0.02)
        assert leftovers(s) == NOTHING
