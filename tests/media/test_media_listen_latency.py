"""How soon ``listen`` decides after the caller stops talking: real espeak-ng speech over the
sandbox's RTP, CallMedia's VAD endpointing and pocketsphinx, in virtual time (the clock stands
still while a decoder thread works, so the figures are audio time, the same on a loaded machine).

A phrase that no other choice extends ("operator") is decided soon after its last word (the
recogniser's ``final``); one that another choice extends ("billing" beside "billing question")
waits out the longer complete-phrase window, so a caller who goes on is still heard."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import numpy as np
import pytest
from sandbox_rig import open_app_rig
from shared_stt import shared_stt

from voxflow.media import codecs
from voxflow.media.callmedia import CallMedia
from voxflow.media.stt_pocketsphinx import DECODERS_PER_DECISION
from voxflow.media.transport import PortRange
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.media.vad import SpeechDetector
from voxflow.telephony.session import CallSession
from voxflow.testing.violoop import run_virtual

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

MENU = ["sales", "support", "billing", "pay my bill", "operator", "agent"]
WITH_PREFIX = ["sales", "billing", "billing question", "operator"]
LOUD = 328  # -40 dBFS: the caller has stopped talking after the last louder sample


async def _spoken(text: str) -> bytes:
    """espeak-ng's 8 kHz speech of ``text`` without its trailing silence."""
    pcm = b"".join([c async for c in EspeakTTS(sample_rate=8000).synthesize(text)])
    loud = np.nonzero(np.abs(np.frombuffer(pcm, "<i2").astype(np.int32)) > LOUD)[0]
    return pcm[: (int(loud[-1]) + 1) * 2]


def _decide_after_speech(
    text: str, phrases: list[str], options: dict[str, int] | None = None
) -> tuple[str | None, float, int, str | None]:
    """On a sandbox call in virtual time: the caller says ``text`` and stays quiet; returns what
    ``listen`` heard, the seconds from the caller's last loud sample to the decision, the VAD
    silence (ms) that ended the utterance and what ended it (``Transcript.endpoint``).
    ``options``: media options (default: a 200 ms final window, settling off)."""

    async def main() -> tuple[str | None, float, int, str | None]:
        stt = shared_stt()
        await stt.warm_up(DECODERS_PER_DECISION)  # every search streams
        pcm = await _spoken(text)
        rig_cm = open_app_rig(
            PortRange(),
            tts=EspeakTTS(sample_rate=8000),
            stt=stt,
            media_options=options
            if options is not None
            else {"listen_final_silence_ms": 200, "listen_settled_silence_ms": -1},
        )
        async with rig_cm as rig:
            loop = asyncio.get_running_loop()

            async def body(call: CallSession) -> Any:
                heard = await call.listen(20, phrases=phrases, min_confidence=0.5)
                voice = await call.call_voice()
                assert isinstance(voice, CallMedia) and voice.last_transcript is not None
                ended_by = voice.last_transcript.endpoint
                return heard, loop.time(), voice.last_endpoint_silence_ms, ended_by

            sim = await rig.call(body)
            await sim.silence(0.3)
            await sim.say_audio(pcm, label=text)
            stopped = loop.time()
            heard, at, window, ended_by = await rig.result()
            return heard, at - stopped, window, ended_by

    return run_virtual(main())


def test_a_final_phrase_is_decided_soon_after_the_caller_stops() -> None:
    heard, after, window, ended_by = _decide_after_speech("operator", MENU)
    assert heard == "operator" and ended_by == "final"
    assert window < 300  # not the 300 ms complete-phrase window, nor the 800 ms one
    # audio time: the jitter buffer (60 ms), the VAD's hangover, the 200 ms window; the 300 ms
    # window would make it over 0.4 s (the next test)
    assert after < 0.36, f"decided {after * 1000:.0f} ms after the caller stopped"


def test_a_phrase_another_choice_extends_waits_the_longer_window() -> None:
    heard, after, window, ended_by = _decide_after_speech("billing", WITH_PREFIX, {})
    assert heard == "billing" and ended_by == "complete"  # never settled: it is not final
    assert window >= 300  # "billing question" could still come
    assert after > 0.36


def test_by_default_a_settled_final_phrase_is_decided_within_300_ms() -> None:
    heard, after, _, ended_by = _decide_after_speech("operator", MENU, {})
    assert heard == "operator" and ended_by == "settled"
    # audio time: the jitter buffer (60 ms) and the searches putting the word's end behind them
    # (~100-200 ms); the 300 ms final window would make it over 0.4 s
    assert after < 0.3, f"decided {after * 1000:.0f} ms after the caller stopped"


def test_a_caller_going_on_past_a_final_phrase_is_heard_to_the_end() -> None:
    # the grammar's "operator" ends early; "please" goes on: the utterance must not end before
    _, after, _, _ = _decide_after_speech("operator please", MENU, {})
    assert after > 0  # decided after the caller stopped, so the decision heard "please" too


async def test_the_stream_calls_a_phrase_final_only_when_no_other_phrase_extends_it() -> None:
    async def main() -> list[tuple[bool, bool]]:
        stt = shared_stt()
        await stt.warm_up(DECODERS_PER_DECISION)
        tail = bytes(8000)  # 0.5 s of silence after the word
        pcm = await _spoken("billing")
        audio = codecs.resample(codecs.ulaw_decode(codecs.ulaw_encode(pcm + tail)), 8000, 16000)
        out = []
        for phrases in (MENU, WITH_PREFIX):
            stream = await stt.open_stream(phrases=phrases, min_confidence=0.5)
            try:
                for i in range(0, len(audio), 640):
                    await stream.feed(audio[i : i + 640])
                out.append((stream.complete, stream.final))
                assert (await stream.finish()).text == "billing"
            finally:
                await stream.aclose()
        return out

    assert await main() == [(True, True), (True, False)]


def test_a_final_phrase_ends_the_utterance_after_the_shortest_silence() -> None:
    def detector() -> SpeechDetector:
        det = SpeechDetector(
            frame_ms=20,
            min_speech_ms=40,
            end_silence_ms=800,
            complete_silence_ms=300,
            final_silence_ms=100,
        )
        assert [det.feed(True) for _ in range(3)][1] is not None  # onset
        return det

    det = detector()
    det.complete = det.final = True
    events = [det.feed(False) for _ in range(5)]
    assert events[-1] is not None and events[-1].kind == "end" and det.silence_ms == 100
    det = detector()
    det.complete = True  # a whole phrase another one extends: the complete-phrase window
    assert all(det.feed(False) is None for _ in range(14))
    assert det.feed(False) is not None and det.silence_ms == 300
