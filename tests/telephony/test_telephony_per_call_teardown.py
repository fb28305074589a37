"""A per-call outbound websocket closes 3 s after its call's StasisEnd (Asterisk 22, captured in
/work/shared/ari/observed-behaviour.md), and in that mode it is the worker's only way to Asterisk:
the call's externalMedia channel and mixing bridge (in the call's own app) must be deleted at once
on the caller's hang-up, before anything slow the end of the call also does (here: a recording
sink that takes 5 s). A DELETE that finds the socket closed is not retried: one warning names what
is left on Asterisk."""

from __future__ import annotations

import asyncio
import logging

import pytest
from test_telephony_outbound_ws import outbound, sandbox
from vf_sandbox_util import WAIT, until

from voxflow.media.callmedia import create_call_voice
from voxflow.sandbox import Sandbox
from voxflow.telephony.app import VoxtraApp
from voxflow.telephony.recording import RecordingMetadata
from voxflow.telephony.session import CallSession


def _ours(sb: Sandbox) -> set[str]:
    """voxflow's media channels and bridges still on the sandbox."""
    chans = {c for c in sb.pbx.channels if c.startswith("vf-em-")}
    return chans | {b for b in sb.pbx.bridges if b.startswith("vf-mb-")}


def _recording(sb: Sandbox) -> bool:
    return bool(sb.pbx.live_recordings)


async def _worker(sink_delay: float) -> VoxtraApp:
    async def slow_sink(meta: RecordingMetadata) -> None:
        await asyncio.sleep(sink_delay)  # an upload that takes its time

    app = VoxtraApp(
        "",
        "asterisk",
        "secret",
        "voxflow",
        mode="per_call",
        listen=("127.0.0.1", 0),
        voice_factory=create_call_voice,
        recording_sink=slow_sink,
        handler_grace=0.2,
    )

    @app.default()
    async def handle(call: CallSession) -> None:
        await call.answer()
        await call.send_audio(bytes(320))  # the media path comes up
        await call.record_start()
        await call.wait_ended()

    await app.start()
    return app


async def test_caller_hang_up_removes_the_media_before_slow_end_of_call_work() -> None:
    async with sandbox() as sb:
        app = await _worker(sink_delay=5.0)
        try:
            assert app.links is not None
            sb.add_outbound_websocket(outbound(app.links.server.port, "per_call_config"))
            sb.outbound.configs["voxflow"].close_after_end = 3.0  # as Asterisk does
            call = await sb.place_call(to="100", app="voxflow")
            await until(lambda: len(_ours(sb)) == 2 and _recording(sb), WAIT)
            await call.hangup()
            await until(lambda: not sb.outbound.sockets, WAIT)  # the socket closed
            assert not _ours(sb), _ours(sb)
        finally:
            await app.close()


async def test_a_delete_after_the_socket_closed_warns_once_naming_what_is_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with sandbox() as sb:
        app = await _worker(sink_delay=0.0)
        try:
            assert app.links is not None
            sb.add_outbound_websocket(outbound(app.links.server.port, "per_call_config"))
            sb.outbound.configs["voxflow"].close_after_end = 0  # at once: the DELETEs come after
            call = await sb.place_call(to="100", app="voxflow")
            await until(lambda: len(_ours(sb)) == 2, WAIT)
            left = _ours(sb)
            with caplog.at_level(logging.INFO):
                await call.hangup()
                await until(lambda: not app.sessions, WAIT)
            warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            about = [m for m in warned if any(o in m for o in left)]
            assert len(about) == 1 and all(o in about[0] for o in left), warned
            tries = [m for m in (r.getMessage() for r in caplog.records) if "retrying" in m]
            assert len(tries) <= len(left), tries  # one more at most: the close under the first
        finally:
            await app.close()
