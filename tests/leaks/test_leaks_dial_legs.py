"""Issue 14 item 1: a dialled leg is hung up when the call it belongs to ends, whatever the order
of events, and the app's registry drops it (sandbox: outbound answer_delay 0.5 s)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from _leaks_kit import DIAL_FLOW, clean, leftovers, serving_text, until
from sandbox_rig import open_app_rig

from voxflow.media.transport import PortRange
from voxflow.sandbox.caller import SimCall
from voxflow.telephony.session import CallSession


async def test_caller_hangs_up_while_dial_rings_leaves_no_leg(tmp_path: Path) -> None:
    async with serving_text(tmp_path, DIAL_FLOW, sandbox={"answer_delay": 0.5}) as s:

        async def one(delay_ms: int) -> None:
            call = await s.sb.place_call(from_="+15550100", to="100", app="voxflow")
            await asyncio.sleep(delay_ms / 1000)
            await call.hangup()

        await asyncio.gather(*(one(d) for d in range(20, 501, 40)))
        await until(lambda: clean(s), 15, "no channel, bridge or session left")
        assert leftovers(s) == {"sessions": [], "channels": [], "bridges": []}


async def test_leg_hung_up_when_caller_leaves_after_it_answered(tmp_path: Path) -> None:
    async with serving_text(tmp_path, DIAL_FLOW, sandbox={"answer_delay": 0.1}) as s:
        call = await s.sb.place_call(from_="+15550100", to="100", app="voxflow")
        await call.wait_for("bridge", 20)
        await call.hangup()
        await until(lambda: clean(s), 15, "no channel, bridge or session left")


async def test_owner_ends_while_the_originate_request_is_in_flight() -> None:
    async with open_app_rig(PortRange(0, 0)) as rig:
        real = rig.app.rest.originate
        sims: list[SimCall] = []

        async def late_originate(*args: Any, **kw: Any) -> Any:
            # the caller is gone (and its session ended) before Asterisk creates the leg
            await sims[0].hangup()
            await until(lambda: not rig.app.sessions.get(sims[0].id), 10, "caller's end")
            return await real(*args, **kw)

        rig.app.rest.originate = late_originate  # type: ignore[method-assign]  # observer

        async def body(call: CallSession) -> Any:
            return await call._app.originate("PJSIP/operator", timeout=10)

        sims.append(await rig.call(body))
        with contextlib.suppress(BaseException):
            await rig.result()
        await until(lambda: not rig.sb.pbx.channels and not rig.app.sessions, 15, "no leg left")


async def test_explicit_owner_hangs_up_an_answered_leg() -> None:
    async with open_app_rig(PortRange(0, 0)) as rig:
        legs: list[CallSession] = []

        async def body(call: CallSession) -> None:
            leg = await rig.app.originate("PJSIP/operator", timeout=10, owner=call)
            legs.append(leg)
            await call.wait_ended()

        sim = await rig.call(body)
        await until(lambda: bool(legs) and legs[0].state.value == "in_progress", 10, "answer")
        await sim.hangup()
        await until(lambda: not rig.sb.pbx.channels and not rig.app.sessions, 15, "no leg left")
