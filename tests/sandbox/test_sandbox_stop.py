"""Stopping the sandbox is bounded however long its callers' requests were meant to take: a
call waiting for an app that never connects (``wait_app``) or a caller's long silence (a
killed benchmark's callers once held ``voxflow sandbox`` ~40 s after SIGTERM)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable

import aiohttp
from conftest import connected

from voxflow.errors import VoxflowError
from voxflow.sandbox import Sandbox

AUTH = {"Authorization": "Basic " + base64.b64encode(b"voxflow:voxflow").decode()}
STOP_WITHIN = 15.0  # seconds; the handlers below would otherwise hold it 60 s (aiohttp's default)


async def _until(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.02)


async def test_stop_is_bounded_while_control_requests_are_in_flight() -> None:
    sb = Sandbox(port=0)
    await sb.start()
    stopped = False
    try:
        async with aiohttp.ClientSession(headers=AUTH) as s, connected(sb) as ari:
            async with s.post(f"{sb.base_url}/sandbox/calls", json={}) as r:
                assert r.status == 201
                cid = (await r.json())["id"]
            await ari.next("StasisStart")
            held = asyncio.ensure_future(
                s.post(f"{sb.base_url}/sandbox/calls/{cid}/silence", json={"seconds": 3600})
            )
            waiting = asyncio.ensure_future(
                s.post(f"{sb.base_url}/sandbox/calls", json={"app": "absent", "wait_app": 3600})
            )
            await _until(
                lambda: any(e["type"] == "silence" for e in sb.calls[cid].experience()),
                "the caller's silence began",
            )
            await _until(lambda: "absent" in sb._app_waiters, "the call waits for its app")
            t0 = time.monotonic()
            await asyncio.wait_for(sb.stop(), STOP_WITHIN)
            stopped = True
            assert time.monotonic() - t0 < STOP_WITHIN
            for req in (held, waiting):
                await asyncio.wait({req}, timeout=STOP_WITHIN)
                assert req.done()
                if not req.exception():
                    req.result().release()
    finally:
        if not stopped:
            await sb.stop()


async def test_wait_app_ends_when_the_sandbox_stops() -> None:
    sb = Sandbox(port=0)
    await sb.start()
    waiter = asyncio.ensure_future(sb.wait_app("absent", 3600))
    await _until(lambda: "absent" in sb._app_waiters, "wait_app is waiting")
    await asyncio.wait_for(sb.stop(), STOP_WITHIN)
    done, _ = await asyncio.wait({waiter}, timeout=STOP_WITHIN)
    assert waiter in done, "wait_app still waits after stop()"
    assert isinstance(waiter.exception(), VoxflowError)
