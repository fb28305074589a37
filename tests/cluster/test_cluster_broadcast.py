"""StasisBroadcast() offering calls to several workers (each its own app name, classic mode):
a worker that is draining (SIGTERM: its calls in progress finish within the grace period)
claims no new broadcast call; a worker still serving takes it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from _cluster_kit import MENU_FLOW, played, until

from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.sandbox.server import Sandbox
from voxflow.telephony.app import VoxtraApp


@contextlib.asynccontextmanager
async def _worker(
    sb: Sandbox, flow: Path, app_name: str
) -> AsyncIterator[tuple[FlowServer, asyncio.Event]]:
    """A worker on the sandbox under ``app_name``; set the event to stop (drain) it."""
    reg = FlowRegistry()
    reg.load([flow])
    app = VoxtraApp(sb.ari_url, sb.user, sb.password, app_name, event_wait=2.0)
    server = FlowServer(app, reg, Settings(grace_period=30))
    stop = asyncio.Event()
    task = asyncio.ensure_future(server.serve(stop))
    try:
        await sb.wait_app(app_name, 20)
        yield server, stop
    finally:
        stop.set()
        for d in list(server.drivers.values()):
            d.hang_up("test over")
        await task


async def test_a_draining_worker_claims_no_broadcast_call(tmp_path: Path) -> None:
    flow = tmp_path / "menu.flow"
    flow.write_text(MENU_FLOW)
    async with (
        Sandbox(port=0, preload_sounds=False) as sb,
        _worker(sb, flow, "voxflow-1") as (one, stop_one),
    ):
        first = await sb.place_broadcast_call(to="100", timeout=3.0, app_filter="^voxflow-")
        await until(lambda: "sound:vm-login" in played(sb, first.id), 15, "the first call")
        assert first.id in one.drivers and one.app.claims_won == 1
        async with _worker(sb, flow, "voxflow-2") as (two, _):
            stop_one.set()  # SIGTERM: one drains, its call in progress has the grace period
            await until(lambda: not one.accepting, 10, "one drains")
            second = await sb.place_broadcast_call(
                from_="+15550101", to="100", timeout=3.0, app_filter="^voxflow-"
            )
            await until(lambda: "sound:vm-login" in played(sb, second.id), 15, "the 2nd call")
            assert second.id in two.drivers
            assert (one.app.claims_won, one.app.claims_lost) == (1, 0)  # it claimed nothing
            assert second.hangup_cause is None
