"""Sessions read lazy ARI events: only what a call needs is validated, noise stays unread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from vf_sandbox_util import SHORT, WAIT, make_app, sandbox_fixture

from voxflow.ari.models import AriEvent
from voxflow.sandbox import Sandbox
from voxflow.telephony.session import CallSession


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async for s in sandbox_fixture():
        yield s


async def test_a_call_on_the_sandbox_completes_only_what_it_reads(sb: Sandbox) -> None:
    app = make_app(sb)
    seen: list[AriEvent] = []
    stream = app._events
    deliver = stream._on_event

    def observe(event: AriEvent) -> None:  # an observer: every event still reaches the app
        seen.append(event)
        deliver(event)

    stream._on_event = observe
    done = asyncio.Event()
    digits: list[str | None] = []

    @app.default()
    async def handle(call: CallSession) -> None:
        await call.answer()
        await call.play_file(SHORT)
        digits.append(await call.listen_dtmf(timeout=WAIT))
        await call.hangup()
        done.set()

    async with app:
        sim = await sb.place_call(to="100")
        for _ in range(200):
            if any(e.type == "PlaybackFinished" for e in seen):
                break
            await asyncio.sleep(0.02)
        await sim.press("4")
        await asyncio.wait_for(done.wait(), WAIT)
        for _ in range(200):
            if not app.sessions:
                break
            await asyncio.sleep(0.02)
    assert digits == ["4"]
    types = [e.type for e in seen]
    assert {
        "StasisStart",
        "ChannelStateChange",
        "PlaybackFinished",
        "ChannelDtmfReceived",
        "StasisEnd",
    } <= set(types)
    completed = [e.type for e in seen if not e.is_lazy]
    # at most the StasisStart is read in full (handler routing, caller id): every other event
    # is routed and read through the fields decoded on receipt
    assert set(completed) <= {"StasisStart"}, completed
