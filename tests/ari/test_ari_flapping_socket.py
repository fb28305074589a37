"""An events socket that is dropped as soon as it is up (a proxy or server that accepts the
websocket and closes it) backs off as failed connects do. The backoff started afresh at every
connect: a reconnect every 0.25-0.5 s for ever, each with its resync (GET /applications,
/channels, /bridges) and a warning line (42 lines and 273 requests in 14 s)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from voxflow.ari import events as events_mod
from voxflow.ari.events import AriEventStream
from voxflow.ari.rest import _basic_auth
from voxflow.sandbox import Sandbox


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(port=0) as s:
        yield s


async def test_a_socket_dropped_at_once_each_time_backs_off(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []

    def recorded(attempt: int, *, initial: float, maximum: float, rng: random.Random) -> float:
        attempts.append(attempt)
        return 0.001  # the attempt numbers are what is checked, not the wall clock

    monkeypatch.setattr(events_mod, "backoff_delay", recorded)
    seen: asyncio.Queue[bool] = asyncio.Queue()

    async def connected(reconnected: bool) -> None:
        seen.put_nowait(reconnected)

    stream = AriEventStream(
        sb.ari_url, {"Authorization": _basic_auth(sb.user, sb.password)}, "voxflow",
        on_event=lambda event: None, on_connect=connected,
    )  # fmt: skip
    await stream.start()
    got = [seen.get_nowait()]
    try:
        async with asyncio.timeout(20):
            for _ in range(5):  # drop it right after each connect
                while not sb.faults.drop_events_socket("voxflow"):  # noqa: ASYNC110 - the sandbox's socket table has no event
                    await asyncio.sleep(0.005)
                got.append(await seen.get())
    finally:
        await stream.close()
    assert attempts == [0, 1, 2, 3, 4]
    assert got == [False] + [True] * 5
