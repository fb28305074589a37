"""Leaving the app (queue, transfer) while a playback or a recording runs: on Asterisk the continue
waits behind them (the sandbox reproduces it), so the session stops them first and the caller is
not left waiting; the recording is kept, with the audio up to the transfer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from vf_sandbox_util import LONG, WAIT, RequestLog, make_app, sandbox_fixture, until

from voxflow.sandbox import Sandbox
from voxflow.telephony.recording import CallbackSink, RecordingMetadata
from voxflow.telephony.session import CallSession

# Much longer than the test waits for the continue: a continue left queued is seen as a failure.
EVENT_WAIT = 12.0
PROMPT = 3.0


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async for s in sandbox_fixture():
        yield s


async def test_queue_stops_a_running_playback_first(sb: Sandbox) -> None:
    app = make_app(sb, event_wait=EVENT_WAIT, queue_context="queues")
    log = RequestLog(app)
    started = asyncio.Event()

    @app.default()
    async def handler(call: CallSession) -> None:
        await call.answer()
        playing = asyncio.ensure_future(call.play_file(LONG))
        await until(lambda: bool(call._playbacks) and bool(log.find("POST", "/play")))
        started.set()
        await call.transfer_to_queue("support")
        await playing

    async with app:
        sim = await sb.place_call(to="100")
        await asyncio.wait_for(started.wait(), WAIT)
        got = await sim.wait_for("continue", PROMPT)
        assert (got["context"], got["exten"]) == ("queues", "queue")
        await until(lambda: not app.sessions)
    stops = [i for i, e in enumerate(log.entries) if e[0] == "DELETE" and "/playbacks/" in e[1]]
    cont = [i for i, e in enumerate(log.entries) if e[1].endswith("/continue")]
    assert stops and cont and stops[0] < cont[0]


async def test_transfer_stops_and_keeps_a_live_recording(sb: Sandbox) -> None:
    kept: list[RecordingMetadata] = []
    app = make_app(
        sb, event_wait=EVENT_WAIT, transfer_context="xfer", recording_sink=CallbackSink(kept.append)
    )

    @app.default()
    async def handler(call: CallSession) -> None:
        await call.answer()
        await call.record_start("before-transfer")
        await asyncio.sleep(0.3)
        await call.transfer_to("5551234")

    async with app:
        sim = await sb.place_call(to="100")
        got = await sim.wait_for("continue", PROMPT)
        assert (got["context"], got["exten"]) == ("xfer", "5551234")
        recorded = await sim.wait_for("recorded", WAIT)
        # The recording ended before the call left: the continue did not wait for event_wait.
        assert recorded["t"] <= got["t"]
        await until(lambda: not app.sessions and bool(kept))
    assert [m.name for m in kept] == ["before-transfer"]
    assert kept[0].state == "done"
