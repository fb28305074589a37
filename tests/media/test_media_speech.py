"""Offline speech: espeak-ng TTS streams audio, pocketsphinx with phrases recognises it, VAD."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading

import numpy as np
import pytest
from shared_stt import shared_stt

from voxflow.errors import ConfigError
from voxflow.media import codecs
from voxflow.media.stt_pocketsphinx import PocketSphinxSTT, phrases_to_jsgf
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.media.vad import SpeechDetector, WebRtcVad
from voxflow.voice.providers import Transcript

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

PHRASES = ["check my balance", "talk to an agent", "pay my bill", "yes", "no", "operator"]
STT = shared_stt()
"""The process's recogniser (``shared_stt``): its decoders (~0.5 s of CPU each, three) are built
once, not by every test; each recognition starts them afresh (``_start``), and passes its own
threshold."""


async def _speak(text: str, rate: int = 16000) -> bytes:
    tts = EspeakTTS(sample_rate=rate)
    return b"".join([c async for c in tts.synthesize(text)])


def _telephone(pcm16k: bytes) -> bytes:
    """What an 8 kHz mu-law call leg does to audio, back at 16 kHz."""
    narrow = codecs.ulaw_decode(codecs.ulaw_encode(codecs.resample(pcm16k, 16000, 8000)))
    return codecs.resample(narrow, 8000, 16000)


async def test_espeak_streams_pcm_in_pieces() -> None:
    tts = EspeakTTS(sample_rate=8000, rate=170)
    pieces = [c async for c in tts.synthesize("First sentence here. And a second one after it.")]
    assert len(pieces) > 1
    pcm = np.frombuffer(b"".join(pieces), "<i2")
    assert 1.5 < len(pcm) / 8000 < 8
    assert np.abs(pcm).max() > 3000
    assert [c async for c in tts.synthesize("   ")] == []


def test_espeak_bad_options_and_missing_binary() -> None:
    with pytest.raises(ConfigError, match="not found"):
        EspeakTTS(binary="espeak-ng-that-does-not-exist")
    with pytest.raises(ConfigError):
        EspeakTTS(rate=10)


@pytest.mark.parametrize(
    ("said", "key"),
    [
        ("I want to check my balance", "check my balance"),
        ("talk to an agent please", "talk to an agent"),
        ("pay my bill", "pay my bill"),
        ("operator", "operator"),
    ],
)
async def test_pocketsphinx_with_phrases_recognises_espeak(said: str, key: str) -> None:
    stt = STT
    pcm = _telephone(await _speak(said))
    stream = await stt.open_stream(phrases=PHRASES)
    for i in range(0, len(pcm), 640):
        await stream.feed(pcm[i : i + 640])
    result = await stream.finish()
    assert key in result.text
    await stream.aclose()  # idempotent after finish


async def test_free_recognition_and_bad_language() -> None:
    stt = STT
    stream = await stt.open_stream()
    await stream.feed(bytes(16000))
    assert (await stream.finish()).text == ""
    with pytest.raises(ConfigError):
        await stt.open_stream(language="fr-FR")


def test_jsgf_text() -> None:
    g = phrases_to_jsgf([["yes"], ["pay", "my", "bill"]])
    assert "public <s> = (yes) | (pay my bill);" in g
    assert "<f> = please" in phrases_to_jsgf([["yes"]], ["please"])


async def test_vad_and_endpointing_on_speech() -> None:
    vad = WebRtcVad(8000, 20, 2)
    speech = await _speak("Hello, this is a test of the detector", rate=8000)
    audio = bytes(8000) + speech + bytes(16000)  # 0.5 s silence, speech, 1 s silence
    det = SpeechDetector(frame_ms=20, min_speech_ms=200, end_silence_ms=600)
    events = []
    for i in range(0, len(audio) - 319, 320):
        ev = det.feed(vad.is_speech(audio[i : i + 320]))
        if ev:
            events.append(ev)
    assert [e.kind for e in events] == ["start", "end"]
    assert 500 <= events[0].at_ms <= 1000
    # espeak's own output ends with some silence, so the end comes up to ~0.5 s earlier.
    speech_ms = len(speech) // 16
    assert 500 + speech_ms + 600 - 500 <= events[1].at_ms <= 500 + speech_ms + 600 + 100
    assert vad.is_speech(b"\x00" * 10) is False
    with pytest.raises(ConfigError):
        WebRtcVad(11025)


@pytest.mark.parametrize(
    ("said", "key"), [("pay my bill", "pay my bill"), ("check my balance", "check my balance")]
)
async def test_clean_audio_padded_with_digital_silence_is_recognised(said: str, key: str) -> None:
    # Linear (not mu-law) 8 kHz espeak between exact zeros: what a slin16 leg or a TTS prompt
    # echoed back looks like. Undithered, pocketsphinx returned nothing for both.
    pcm = bytes(4800) + await _speak(said, rate=8000) + bytes(4800)
    stream = await STT.open_stream(phrases=PHRASES)
    await stream.feed(codecs.resample(pcm, 8000, 16000))
    first = (await stream.finish()).text
    stream = await STT.open_stream(phrases=PHRASES)  # the same decoders again
    await stream.feed(codecs.resample(pcm, 8000, 16000))
    assert key in first and (await stream.finish()).text == first  # repeatable


async def _recognise(said: str, min_confidence: float | None = None) -> Transcript:
    """``said`` recognised by the shared recogniser, with this recognition's threshold (None:
    the recogniser's own, 0: no decision)."""
    stream = await STT.open_stream(phrases=PHRASES, min_confidence=min_confidence)
    await stream.feed(_telephone(await _speak(said)))
    result = await stream.finish()
    await stream.aclose()
    return result


async def test_a_grammar_result_carries_its_confidence_and_alternatives() -> None:
    result = await _recognise("talk to an agent", 0.01)
    assert result.text == "talk to an agent"
    assert result.confidence is not None and 0.0 <= result.confidence <= 1.0
    plain = await _recognise("talk to an agent")  # no decision: one pass
    assert plain.text == "talk to an agent" and plain.confidence is None
    assert plain.alternatives == result.alternatives
    assert result.alternatives[0] == "talk to an agent"
    assert len(set(result.alternatives)) == len(result.alternatives) <= 3


@pytest.mark.long
async def test_speech_outside_the_grammar_is_not_forced_onto_a_choice() -> None:
    # Without a confidence decision a grammar always answers with one of its phrases.
    forced = await _recognise("I want to leave a message", 0.01)
    strict = await _recognise("I want to leave a message", 0.5)
    assert forced.confidence is not None and forced.confidence < 0.5
    assert strict.text == "" and strict.confidence == forced.confidence
    assert strict.alternatives == forced.alternatives  # what it sounded like, for the trace
    clear = await _recognise("check my balance", 0.5)
    assert clear.text == "check my balance" and (clear.confidence or 0) >= 0.5


def test_a_threshold_outside_0_to_1_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        PocketSphinxSTT(min_confidence=1.5)


async def test_espeak_stopped_mid_prompt_ends_even_with_its_pipe_full() -> None:
    """A synthesis abandoned while espeak-ng's output fills the pipe (the reader paused) ends at
    once: on Python 3.11 a killed subprocess's ``wait()`` also waits for its pipes to close."""
    tts = EspeakTTS(sample_rate=8000)
    chunks = tts.synthesize(" ".join(f"This is sentence number {i}." for i in range(60)))
    assert await anext(chunks)
    await asyncio.sleep(1.0)  # espeak writes ~20x real time: well over the reader's 128 KiB
    await asyncio.wait_for(chunks.aclose(), 10)


def test_a_run_ending_while_espeak_starts_does_not_hang() -> None:
    """``asyncio.run`` ending (an error at start-up) while a prompt's synthesis is spawning
    espeak-ng: the cancelled spawn ends (Python 3.11's ``create_subprocess_exec`` cancelled
    before its pipes connect waits for them forever)."""

    async def main() -> None:
        chunks = EspeakTTS(sample_rate=8000).synthesize("Welcome to the test line.")
        first = asyncio.ensure_future(anext(chunks))
        await asyncio.sleep(0)  # the synthesis is now inside the spawn
        raise RuntimeError(f"start-up failed ({first.done()=})")

    def run() -> None:
        with contextlib.suppress(RuntimeError):
            asyncio.run(main())

    for _ in range(3):
        runner = threading.Thread(target=run, daemon=True)
        runner.start()
        runner.join(20)
        assert not runner.is_alive(), "asyncio.run hung cancelling the synthesis"
