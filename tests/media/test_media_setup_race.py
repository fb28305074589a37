"""Media set-up against Asterisk's ordering: a new externalMedia (or snoop) channel enters Stasis
only after the REST answer that created it, 0.3-30 ms later (capture
external-media-ordering.json), and a bridge refuses it until then with 422. The sandbox
reproduces the gap (``stasis_delay``); CallMedia waits for the channel's StasisStart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from sandbox_rig import ASTERISK_STASIS_DELAY, open_app_rig

from voxflow.errors import CallEndedError, MediaError
from voxflow.media.transport import PortRange
from voxflow.telephony.session import CallSession
from voxflow.voice.call import PromptResult

CALLS = 50
WAVE = 10


class ToneTTS:
    """A TextToSpeech that renders every text as 0.3 s of a 440 Hz tone (8 kHz pcm16)."""

    sample_rate = 8000

    async def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
        t = np.arange(2400) / 8000.0
        pcm = (np.sin(2 * np.pi * 440 * t) * 6000).astype("<i2").tobytes()
        for i in range(0, len(pcm), 960):
            yield pcm[i : i + 960]


async def _say(call: CallSession) -> PromptResult:
    return await call.say("Welcome.")


def _rig(delay: Any, **app: Any) -> Any:
    return open_app_rig(PortRange(), sandbox_options={"stasis_delay": delay}, tts=ToneTTS(), **app)


async def test_fifty_concurrent_calls_with_late_stasis_start_lose_no_prompt() -> None:
    # Waves of 10 concurrent calls: all 50 at once make every REST round trip slow enough to
    # hide the race; in waves, set-up without waiting for StasisStart lost ~1 prompt in 3.
    results: list[object] = []
    async with _rig(ASTERISK_STASIS_DELAY) as rig:
        rig.bodies["100"] = _say
        for _ in range(CALLS // WAVE):
            sims = await asyncio.gather(
                *(rig.sb.place_call(from_=rig.caller_id, to="100") for _ in range(WAVE))
            )
            for _ in range(WAVE):
                try:
                    results.append(await rig.result(60))
                except Exception as exc:  # a failed prompt: counted, not raised
                    results.append(exc)
            for sim in sims:
                if not sim.ended:
                    await sim.wait_for("audio", 30)
    failed = [r for r in results if not isinstance(r, PromptResult) or r.heard_ms <= 0]
    assert len(results) == CALLS
    assert failed == []


async def test_a_late_stasis_start_is_waited_for() -> None:
    # 200 ms: an addChannel sent on the REST answer would be refused (422) every time.
    async with _rig(0.2) as rig:
        sim = await rig.call(_say)
        result = await rig.result()
        await sim.wait_for("audio", 10)
    assert isinstance(result, PromptResult) and result.heard_ms > 0


async def test_no_stasis_start_in_time_is_a_clear_media_error() -> None:
    async with _rig(1.0, media_options={"stasis_wait": 0.1}) as rig:
        await rig.call(_say)
        try:
            await rig.result()
        except MediaError as exc:
            message = str(exc)
        else:
            raise AssertionError("the prompt should have failed")
    assert "did not enter the Stasis app 'voxflow' within 0.1 s" in message


async def test_a_hang_up_during_the_wait_ends_set_up_at_once() -> None:
    # StasisStart 3 s late; the caller hangs up meanwhile: set-up stops waiting (CallEndedError)
    # instead of running into stasis_wait, and nothing is left behind (the rig checks).
    loop = asyncio.get_running_loop()
    async with _rig(3.0) as rig:
        sim = await rig.call(_say)
        await asyncio.sleep(0.2)  # the externalMedia channel exists, not yet in Stasis
        hung = loop.time()
        await sim.hangup()
        try:
            await rig.result()
        except CallEndedError:
            pass
        else:
            raise AssertionError("the prompt should have ended with the call")
        assert loop.time() - hung < 2.0
