"""The recogniser's ``settled`` (a final phrase after which its searches heard the caller stop)
and the endpointer acting on it; the check search's noise floor is the same however often the
stream decodes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from shared_stt import shared_stt

from voxflow.media import codecs
from voxflow.media.endpointing import follow
from voxflow.media.stt_check import CheckFeed
from voxflow.media.stt_pocketsphinx import (
    PocketSphinxSTT,
)
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.media.vad import SpeechDetector

espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
MENU = ["sales", "support", "billing", "pay my bill", "operator", "agent"]
WITH_PREFIX = ["sales", "billing", "billing question", "operator"]


def _speaking(settled_silence_ms: int | None) -> SpeechDetector:
    det = SpeechDetector(
        frame_ms=20,
        min_speech_ms=40,
        end_silence_ms=800,
        complete_silence_ms=300,
        final_silence_ms=300,
        settled_silence_ms=settled_silence_ms,
    )
    assert [det.feed(True) for _ in range(3)][1] is not None  # onset
    return det


def test_settled_ends_the_utterance_at_once_or_after_its_own_silence() -> None:
    det = _speaking(0)
    det.final = det.settled = True
    event = det.feed(True)  # the VAD's hangover still calls it speech: the searches decided
    assert event is not None and event.kind == "end" and det.ended_by == "settled"
    det = _speaking(60)
    det.final = det.settled = True
    assert [det.feed(False) is None for _ in range(3)] == [True, True, False]
    assert det.ended_by == "settled" and det.silence_ms == 60
    det = _speaking(None)  # settling off: the final phrase's window
    det.final = det.settled = True
    assert all(det.feed(False) is None for _ in range(14))
    assert det.feed(False) is not None and det.ended_by == "final"
    det = _speaking(0)  # nothing heard yet: the long window
    assert all(det.feed(False) is None for _ in range(39))
    assert det.feed(False) is not None and det.ended_by == "silence"


class _Stream:
    """What a provider without partial results looks like to the endpointer."""


def test_follow_takes_only_what_the_stream_says() -> None:
    det = _speaking(0)
    det.complete = det.final = det.settled = True
    follow(det, _Stream())
    assert (det.complete, det.final, det.settled) == (False, False, False)


async def _fed(stt: PocketSphinxSTT, text: str, phrases: list[str]) -> list[tuple[float, bool]]:
    """Feed ``text`` (then 0.6 s of quiet) as a call delivers it; (ms of audio after the last
    loud sample, settled) after each 20 ms frame."""
    pcm = b"".join([c async for c in EspeakTTS(sample_rate=8000).synthesize(text)])
    loud = np.nonzero(np.abs(np.frombuffer(pcm, "<i2").astype(np.int32)) > 328)[0]
    pcm = bytes(3200) + pcm[: (int(loud[-1]) + 1) * 2]
    stop_ms = len(pcm) / 16
    audio = codecs.resample(codecs.ulaw_decode(codecs.ulaw_encode(pcm + bytes(9600))), 8000, 16000)
    stream = await stt.open_stream(phrases=phrases, min_confidence=0.5)
    out = []
    try:
        for i in range(0, len(audio), 640):
            await stream.feed(audio[i : i + 640])
            out.append(((i + 640) / 32 - stop_ms, stream.settled))
        await stream.finish()
    finally:
        await stream.aclose()
    return out


@espeak
async def test_a_final_phrase_settles_soon_after_the_caller_stops_and_never_before() -> None:
    stt = shared_stt()
    await stt.warm_up()
    seen = await _fed(stt, "operator", MENU)
    first = next(ms for ms, settled in seen if settled)
    assert 0 < first < 250, f"settled {first:.0f} ms after the caller stopped"
    assert not any(s for _, s in await _fed(stt, "billing", WITH_PREFIX))  # not final


@espeak
async def test_without_a_streaming_phone_loop_nothing_settles() -> None:
    alone = PocketSphinxSTT(max_decoders=1)  # the grammar's decoder only: no spare for phones
    await alone.warm_up()
    assert not any(s for _, s in await _fed(alone, "operator", MENU))


def test_the_check_noise_floor_does_not_depend_on_how_the_audio_is_cut() -> None:
    audio = np.random.default_rng(5).integers(-3000, 3000, 16000).astype("<i2").tobytes()
    whole = CheckFeed().floor(audio)
    cut = CheckFeed()
    pieces = b"".join(cut.floor(audio[i : i + 1280]) for i in range(0, len(audio), 1280))
    assert pieces == whole
