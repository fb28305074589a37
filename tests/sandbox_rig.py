"""A sandbox PBX plus a real VoxtraApp whose handler runs a per-number body, for the tests that
cross ARI and RTP (no fakes of our own code between the app and the caller's ear).

Shared by tests/media (``media_rig``) and tests/ai; on exit it checks that every call left
nothing behind: sessions, channels, bridges, RTP ports and sockets, pacer streams.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from voxflow.media.callmedia import CallMedia
from voxflow.media.pacer import shared_pacer
from voxflow.media.transport import PortRange
from voxflow.sandbox import Sandbox
from voxflow.sandbox.caller import SimCall
from voxflow.telephony.app import VoxtraApp
from voxflow.telephony.session import CallSession

__all__ = ["ASTERISK_STASIS_DELAY", "AppRig", "CallBody", "open_app_rig"]

CallBody = Callable[[CallSession], Awaitable[Any]]


@dataclass
class AppRig:
    """A sandbox, an app whose handler answers and runs the body registered for the dialled
    number, and the bodies' results (or exceptions) in the order they finish."""

    sb: Sandbox
    app: VoxtraApp
    ports: PortRange
    caller_id: str = "+15550001111"
    bodies: dict[str, CallBody] = field(default_factory=dict)
    results: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    voices: list[CallMedia] = field(default_factory=list)

    async def call(self, body: CallBody, *, to: str = "100") -> SimCall:
        """Place a call to ``to`` handled by ``body``; returns once the app answered it."""
        self.bodies[to] = body
        sim = await self.sb.place_call(from_=self.caller_id, to=to, app="voxflow")
        await sim.wait_answered(20)
        return sim

    async def result(self, timeout: float = 40.0) -> Any:
        """The next body's return value; re-raises what the body raised."""
        got = await asyncio.wait_for(self.results.get(), timeout)
        if isinstance(got, BaseException):
            raise got
        return got


# Asterisk's gap between the REST answer creating an externalMedia/snoop channel and its
# StasisStart (capture external-media-ordering.json: 0.3 to 30 ms).
ASTERISK_STASIS_DELAY = (0.0003, 0.03)


@contextlib.asynccontextmanager
async def open_app_rig(
    ports: PortRange,
    *,
    caller_id: str = "+15550001111",
    sandbox_options: dict[str, Any] | None = None,
    **app_kwargs: Any,
) -> AsyncIterator[AppRig]:
    """A started rig (``sandbox_options`` go to the Sandbox, ``app_kwargs`` to VoxtraApp); media
    channels enter Stasis as late as on Asterisk unless ``stasis_delay`` says otherwise. On exit
    every call is hung up and nothing may be left behind."""
    sb_opts: dict[str, Any] = {"stasis_delay": ASTERISK_STASIS_DELAY, **(sandbox_options or {})}
    async with Sandbox(port=0, **sb_opts) as sb:
        app = VoxtraApp(
            sb.ari_url,
            sb.user,
            sb.password,
            "voxflow",
            media_options={"rtp_ports": ports, **app_kwargs.pop("media_options", {})},
            **app_kwargs,
        )
        rig = AppRig(sb, app, ports, caller_id)

        @app.default()
        async def handler(call: CallSession) -> None:
            await call.answer()
            try:
                out = await rig.bodies[call.called_number](call)
            except BaseException as exc:  # surfaced to the test by AppRig.result
                rig.results.put_nowait(exc)
                raise
            finally:
                if isinstance(call._voice, CallMedia):
                    rig.voices.append(call._voice)
            rig.results.put_nowait(out)

        async with app:
            await sb.wait_app("voxflow", 20)
            yield rig
            for sim in list(sb.calls.values()):
                await sim.hangup()
            for _ in range(400):  # the handler's cleanup runs on StasisEnd
                if not app.sessions:
                    break
                await asyncio.sleep(0.05)
            assert not app.sessions
        # Teardown leaves nothing behind: channels, bridges, our sockets and ports, the pacer.
        assert sb.pbx.channels == {}
        assert sb.pbx.bridges == {}
        assert ports.in_use == frozenset()
        assert all(v.socket is None or v.socket.closed for v in rig.voices)
        assert shared_pacer().streams == 0
        assert app._stasis_waiters == {}
