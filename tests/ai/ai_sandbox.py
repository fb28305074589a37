"""A sandbox PBX plus a real VoxtraApp whose handler runs a per-test body, for the AI tests that
cross ARI and RTP (no fakes of our own code between the agent and the caller's ear)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from voxflow.media.pacer import shared_pacer
from voxflow.media.transport import PortRange
from voxflow.sandbox import Sandbox
from voxflow.sandbox.caller import SimCall
from voxflow.telephony.app import VoxtraApp
from voxflow.telephony.session import CallSession

CallBody = Callable[[CallSession], Awaitable[Any]]


@dataclass
class AppRig:
    sb: Sandbox
    app: VoxtraApp
    ports: PortRange
    body: CallBody | None = None
    results: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)

    async def call(self, body: CallBody, *, to: str = "100") -> SimCall:
        """Place a call that ``body`` handles (after answering); returns once answered."""
        self.body = body
        sim = await self.sb.place_call(from_="+15550002222", to=to, app="voxflow")
        await sim.wait_answered(20)
        return sim

    async def result(self, timeout: float = 40.0) -> Any:
        got = await asyncio.wait_for(self.results.get(), timeout)
        if isinstance(got, BaseException):
            raise got
        return got


@contextlib.asynccontextmanager
async def app_rig(ports: PortRange, **app_kwargs: Any) -> AsyncIterator[AppRig]:
    """Yield a rig; on exit every call is hung up and nothing may be left behind."""
    async with Sandbox(port=0) as sb:
        app = VoxtraApp(
            sb.ari_url,
            sb.user,
            sb.password,
            "voxflow",
            media_options={"rtp_ports": ports},
            **app_kwargs,
        )
        rig = AppRig(sb, app, ports)

        @app.default()
        async def handler(call: CallSession) -> None:
            await call.answer()
            try:
                assert rig.body is not None
                out = await rig.body(call)
            except BaseException as exc:  # surfaced to the test by AppRig.result
                rig.results.put_nowait(exc)
                raise
            rig.results.put_nowait(out)

        async with app:
            await sb.wait_app("voxflow", 20)
            yield rig
            for sim in list(sb.calls.values()):
                await sim.hangup()
            for _ in range(400):
                if not app.sessions:
                    break
                await asyncio.sleep(0.05)
            assert not app.sessions
        assert sb.pbx.channels == {}
        assert sb.pbx.bridges == {}
        assert ports.in_use == frozenset()
        assert shared_pacer().streams == 0
