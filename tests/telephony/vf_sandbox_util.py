"""Helpers for telephony tests that run VoxtraApp against the embedded sandbox (voxflow.sandbox).

The sandbox is our Asterisk emulator: real HTTP/websocket bytes, Asterisk's observed event order.
``RequestLog`` records which REST requests the client sent: it wraps the client's ``request``
and always passes the call through to the sandbox (an observer, never a stand-in).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from voxflow.sandbox import Sandbox
from voxflow.telephony.app import VoxtraApp

WAIT = 15.0
SHORT = "vf-short"  # 0.1 s tone
LONG = "vf-long"  # 30 s tone


def tone(seconds: float, freq: float = 440.0) -> bytes:
    """8 kHz pcm16 sine (audible, so the caller's experience records it)."""
    t = np.arange(int(8000 * seconds)) / 8000.0
    return (np.sin(2 * np.pi * freq * t) * 8000).astype("<i2").tobytes()


async def started_sandbox(**kw: Any) -> Sandbox:
    """A started sandbox with the short/long test sounds (no espeak warm-up)."""
    kw.setdefault("preload_sounds", False)
    kw.setdefault("record_heard", False)
    sb = Sandbox(port=0, **kw)
    await sb.start()
    sb.add_sound(SHORT, tone(0.1))
    sb.add_sound(LONG, tone(30.0))
    return sb


async def sandbox_fixture() -> AsyncIterator[Sandbox]:
    sb = await started_sandbox()
    try:
        yield sb
    finally:
        await sb.stop()


def make_app(sb: Sandbox, **kw: Any) -> VoxtraApp:
    kw.setdefault("event_wait", 2.0)
    kw.setdefault("reconnect_initial", 0.05)
    kw.setdefault("reconnect_max", 0.2)
    return VoxtraApp(sb.ari_url, sb.user, sb.password, **kw)


class RequestLog:
    """Records (method, path, params) of every REST request ``app`` sends (pass-through)."""

    def __init__(self, app: VoxtraApp) -> None:
        self.entries: list[tuple[str, str, dict[str, Any]]] = []
        original = app.rest.request

        async def request(method: str, path: str, **kw: Any) -> Any:
            self.entries.append((method, path, dict(kw.get("params") or {})))
            return await original(method, path, **kw)

        app.rest.request = request  # type: ignore[method-assign]

    def find(self, method: str, suffix: str) -> list[dict[str, Any]]:
        return [q for m, p, q in self.entries if m == method and p.endswith(suffix)]

    def paths(self, method: str, prefix: str) -> list[str]:
        return [p for m, p, _ in self.entries if m == method and p.startswith(prefix)]


async def until(cond: Callable[[], bool], timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while not cond():  # noqa: ASYNC110 - polling state that several sources change
            await asyncio.sleep(0.01)
