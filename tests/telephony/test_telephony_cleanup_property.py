"""The seed's cleanup contract, as a hypothesis property over random interleavings of caller
hang-up, handler return/exception, record_stop, concurrent hangup() calls and a socket drop,
run against the embedded sandbox (voxflow.sandbox)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vf_sandbox_util import RequestLog, started_sandbox

from voxflow.errors import CallEndedError, RecordingError
from voxflow.sandbox import Sandbox
from voxflow.telephony.app import VoxtraApp
from voxflow.telephony.recording import RecordingMetadata
from voxflow.telephony.session import CallSession
from voxflow.voice.call import BargeIn, PromptResult, VoiceContext
from voxflow.voice.chunk import AudioChunk

ACTIONS = st.sampled_from(
    ["caller_hangup", "handler_return", "handler_raise", "record_stop", "hangups", "drop", "dtmf"]
)


class CountingVoice:
    """A CallVoice double that only counts aclose (the media path is not under test here)."""

    def __init__(self, ctx: VoiceContext) -> None:
        self.ctx = ctx
        self.closed = 0
        self.digits: list[str] = []

    async def say(
        self, text: str, *, voice: str | None = None, barge_in: BargeIn | None = None
    ) -> PromptResult:
        return PromptResult()

    async def listen(self, timeout: float = 10.0, **kw: Any) -> str | None:
        return None

    async def recognize(self, timeout: float = 10.0, **kw: Any) -> None:
        return None

    async def audio_stream(self) -> AsyncIterator[AudioChunk]:
        if False:
            yield AudioChunk("ulaw", 8000, b"")

    async def send_audio(self, data: AudioChunk | bytes) -> None:
        return None

    async def wait_for_speech(self, min_speech_ms: int = 200) -> None:
        await asyncio.Event().wait()

    def on_dtmf(self, digit: str) -> None:
        self.digits.append(digit)

    async def aclose(self) -> None:
        self.closed += 1


async def scenario(sb: Sandbox, actions: list[str], record: bool) -> None:
    voices: list[CountingVoice] = []
    sunk: list[RecordingMetadata] = []
    fired: list[int] = []
    script: asyncio.Queue[str] = asyncio.Queue()
    started = asyncio.Event()
    handler_done = asyncio.Event()

    def factory(ctx: VoiceContext) -> CountingVoice:
        voice = CountingVoice(ctx)
        voices.append(voice)
        return voice

    async def sink(meta: RecordingMetadata) -> None:
        sunk.append(meta)

    app = VoxtraApp(
        sb.ari_url,
        sb.user,
        sb.password,
        voice_factory=factory,
        recording_sink=sink,
        event_wait=0.5,
        recording_wait=0.2,
        reconnect_initial=0.02,
        reconnect_max=0.05,
        handler_grace=2.0,
    )
    log = RequestLog(app)

    @app.default()
    async def handler(call: CallSession) -> None:
        call.on_hangup(lambda: fired.append(1))
        try:
            await call.answer()
            await call.send_audio(b"\xff" * 160)  # brings the voice up
            if record:
                await call.record_start()
            started.set()
            while True:
                action = await script.get()
                if action == "handler_return":
                    return
                if action == "handler_raise":
                    raise RuntimeError("handler failed on purpose")
                if action == "record_stop":
                    with contextlib.suppress(RecordingError, CallEndedError):
                        await call.record_stop()
                if action == "hangups":
                    await asyncio.gather(call.hangup(), call.hangup(), call.hangup())
        finally:
            handler_done.set()

    async with app:
        chan = await sb.place_call()
        await asyncio.wait_for(started.wait(), 10)
        call = app.sessions[chan.id]
        for action in actions:
            if action == "caller_hangup":
                await chan.hangup()
            elif action == "drop":
                sb.faults.drop_events_socket("voxflow")
            elif action == "dtmf":
                with contextlib.suppress(CallEndedError):
                    await chan.press("1", duration_ms=20, gap_ms=20)
            elif not handler_done.is_set():
                script.put_nowait(action)
            await asyncio.sleep(0.01)
        if not handler_done.is_set():
            script.put_nowait("handler_return")
        await asyncio.wait_for(call.wait_closed(), 10)
        await asyncio.wait_for(handler_done.wait(), 10)
        assert chan.id not in app.sessions
    # the contract
    assert app.removed == 1
    assert fired == [1]
    assert [v.closed for v in voices] == [1]
    assert len(sunk) == (1 if record else 0)
    deletes = log.find("DELETE", f"/channels/{chan.id}")
    assert len(deletes) <= 1
    if "caller_hangup" not in actions:
        assert len(deletes) == 1  # the framework (or the handler) hung up
    assert call.ended and app.dispatcher.tracked == (0, 0, 0)
    assert chan.ended and chan.id not in sb.pbx.channels  # nothing left up on the PBX


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(actions=st.lists(ACTIONS, min_size=1, max_size=6), record=st.booleans())
def test_cleanup_contract_holds_for_any_interleaving(actions: list[str], record: bool) -> None:
    async def main() -> None:
        sb = await started_sandbox()
        try:
            await scenario(sb, actions, record)
        finally:
            await sb.stop()

    asyncio.run(main())
