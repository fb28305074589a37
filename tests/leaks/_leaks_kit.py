"""Helpers for the leak tests: a flow served on the sandbox, and "nothing left" checks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.sandbox.server import Sandbox
from voxflow.telephony.app import VoxtraApp

DIAL_FLOW = """\
flow leakdial "dial then nothing":
    answers "100"

state start:
    answer
    dial "PJSIP/operator" timeout 10s:
        on answered -> done
        on busy, noanswer, failed -> done

state done:
    hangup "done"
"""


@dataclass
class Served:
    """A sandbox with a FlowServer serving one flow on a VoxtraApp."""

    sb: Sandbox
    app: VoxtraApp
    server: FlowServer


async def until(cond: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Wait (real seconds, polling the loop) until ``cond()``; fail with ``what`` otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.02)


def leftovers(s: Served) -> dict[str, Any]:
    """What is still alive: the app's sessions, the sandbox's channels and bridges."""
    return {
        "sessions": sorted(s.app.sessions),
        "channels": sorted(f"{c.name} {c.state}" for c in s.sb.pbx.channels.values()),
        "bridges": sorted(s.sb.pbx.bridges),
    }


def clean(s: Served) -> bool:
    """True when nothing is left on either side."""
    return not s.app.sessions and not s.sb.pbx.channels and not s.sb.pbx.bridges


@asynccontextmanager
async def serving_text(
    tmp: Path,
    text: str,
    *,
    sandbox: dict[str, Any] | None = None,
    app: dict[str, Any] | None = None,
    settings: Settings | None = None,
    on: Sandbox | None = None,
    server: dict[str, Any] | None = None,
) -> AsyncIterator[Served]:
    """Serve the flow ``text`` on a fresh sandbox (or the running one ``on``) until the block
    exits; yields once the app has started (its start-up sweep done)."""
    path = tmp / "flow.flow"
    path.write_text(text)
    reg = FlowRegistry()
    reg.load([path])
    async with contextlib.AsyncExitStack() as stack:
        sb = on or await stack.enter_async_context(Sandbox(port=0, **(sandbox or {})))
        kw: dict[str, Any] = {"event_wait": 2.0, "reconnect_initial": 0.05, "reconnect_max": 0.2}
        kw.update(app or {})
        vapp = VoxtraApp(sb.ari_url, sb.user, sb.password, "voxflow", **kw)
        fs = FlowServer(vapp, reg, settings or Settings(grace_period=2), **(server or {}))
        stop = asyncio.Event()
        task = asyncio.ensure_future(fs.serve(stop))
        try:
            await sb.wait_app("voxflow", 20)
            await until(lambda: vapp.sweeps > 0, 20, "app started (start-up sweep done)")
            yield Served(sb, vapp, fs)
        finally:
            stop.set()
            await task
