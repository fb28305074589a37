"""pocketsphinx's confidence decision on real espeak-ng audio over a telephone leg: streaming
decoding, the per-recognition threshold, out-of-grammar speech -> nomatch, the features, and the
shorter end-silence window once a whole phrase was heard (on a sandbox call)."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import pytest
from call_audio import call_audio
from media_rig import speak, until_stopped
from sandbox_rig import open_app_rig
from shared_stt import shared_stt

from voxflow.errors import ConfigError
from voxflow.media.stt_confidence import Segment, confidence, features
from voxflow.media.stt_pocketsphinx import PocketSphinxSTT
from voxflow.media.transport import PortRange
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.media.vad import SpeechDetector
from voxflow.telephony.session import CallSession
from voxflow.voice.providers import Transcript

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

MENU = ["sales", "support", "billing", "pay my bill", "operator", "agent"]
FRONT_DESK = ["sales", "accounts"]  # flows/front_desk.flow's two-choice menu
# one pool for the module: decoders take ~0.3 s to build
STT = shared_stt()


async def _recognise(
    audio: bytes,
    piece: int,
    min_confidence: float | None,
    stt: PocketSphinxSTT = STT,
    phrases: list[str] = MENU,
) -> Transcript:
    stream = await stt.open_stream(phrases=phrases, min_confidence=min_confidence)
    try:
        for i in range(0, len(audio), piece):
            await stream.feed(audio[i : i + piece])
        return await stream.finish()
    finally:
        await stream.aclose()


async def test_streaming_in_call_sized_pieces_gives_the_batch_result() -> None:
    audio = await call_audio("pay my bill")
    whole = await _recognise(audio, len(audio), 0.5)
    frames = await _recognise(audio, 640, 0.5)  # 20 ms pieces, as CallMedia.listen feeds them
    assert whole == frames
    assert whole.text == "pay my bill" and (whole.confidence or 0) >= 0.5


async def test_out_of_grammar_speech_is_a_nomatch_when_the_recognition_asks_to_decide() -> None:
    audio = await call_audio("I want to leave a message")
    forced = await _recognise(audio, 640, None)  # the instance's default: no decision
    assert forced.text in MENU and forced.confidence is None  # a grammar always answers
    decided = await _recognise(audio, 640, 0.5)
    assert decided.text == "" and decided.confidence is not None and decided.confidence < 0.5
    assert decided.alternatives and decided.alternatives[0] in MENU  # kept for the trace


async def test_a_clear_menu_word_is_accepted_with_confidence_above_the_threshold() -> None:
    result = await _recognise(await call_audio("operator"), 640, 0.5)
    assert result.text == "operator" and (result.confidence or 0) >= 0.5
    strict = await _recognise(await call_audio("operator"), 640, 1.0)
    assert strict.text == "" and strict.confidence == result.confidence
    with pytest.raises(ConfigError):
        await STT.open_stream(phrases=MENU, min_confidence=1.5)


async def test_with_no_spare_decoder_the_phone_loop_runs_at_finish_to_the_same_result() -> None:
    audio = until_stopped(await call_audio("I want to leave a message"))
    alone = PocketSphinxSTT(max_decoders=1)  # one decoder: the phone loop runs at finish on it
    late = await _recognise(audio, 640, 0.5, alone)
    assert alone.stats().built == 1
    await STT.warm_up()
    assert await _recognise(audio, 640, 0.5, STT) == late  # every search streamed
    assert late.text == "" and late.confidence is not None


def _features(outside_frames: int, ratio: float) -> float:
    """The confidence of a 40-frame "sales" over 100 frames, with speech outside it; the n-best
    margin stays 3 per frame whatever the ``ratio``."""
    words = [Segment("<sil>", 0, 29), Segment("sales", 30, 69)]
    phones = [Segment("S", 30, 69)]
    if outside_frames:
        phones.append(Segment("AH", 70, 69 + outside_frames))
    f = features(
        frames=100,
        best=-5000.0 + ratio * 100,
        second=-5300.0 + ratio * 100,
        phone_best=-5000.0,
        words=words,
        phones=phones,
        n_phones=5,
    )
    assert f.outside == pytest.approx(outside_frames / (40 + outside_frames))
    return confidence(f)


def test_speech_the_phrase_does_not_cover_and_a_worse_fit_lower_the_confidence() -> None:
    assert 0.0 <= _features(30, 0.0) < _features(0, 0.0) <= 1.0
    assert _features(0, -10.0) < _features(0, 0.0) < _features(0, 5.0)


def test_loop_phones_counts_the_phone_loops_phones_inside_the_phrases_words() -> None:
    words = [Segment("<sil>", 0, 29), Segment("sales", 30, 69), Segment("<sil>", 70, 99)]
    # five phones centred inside frames 30..69 (one straddles the start), one after, silence
    phones = [Segment("SIL", 0, 24), Segment("S", 25, 40), Segment("EY", 41, 50)]
    phones += [Segment("L", 51, 60), Segment("Z", 61, 65), Segment("AH", 66, 72)]
    phones += [Segment("T", 73, 80), Segment("+NSN+", 81, 99)]
    f = features(
        frames=100, best=-5000.0, second=None, phone_best=-5000.0, words=words, phones=phones,
        n_phones=4,
    )  # fmt: skip
    assert f.loop_phones == 5 / 4


async def test_a_sentence_stretched_over_a_two_phrase_grammars_phrase_is_a_nomatch() -> None:
    # en-us+f3 "hello is anybody there" against front_desk's sales / accounts: the grammar
    # stretches "accounts" over the whole sentence (no speech outside it; no other phrase in the
    # n-best), so the confidence passes 0.6; the phone loop hears ~13 phones in its 6 phones' span
    heard = await _recognise(
        await call_audio("hello is anybody there", "en-us+f3", 160), 640, 0.6, STT, FRONT_DESK
    )
    assert heard.alternatives[:1] == ("accounts",) and (heard.confidence or 0) >= 0.6
    assert heard.text == ""  # a re-prompt, not a transfer to accounts
    audio = await call_audio("accounts", "en-us+f3", 160)
    said = await _recognise(audio, 640, 0.6, STT, FRONT_DESK)
    assert said.text == "accounts"  # the phrase itself: 4 phone-loop phones in its 6


async def test_the_stream_says_when_what_it_heard_is_a_whole_phrase() -> None:
    audio = await call_audio("operator")
    stream = await STT.open_stream(phrases=MENU, min_confidence=0.5)
    try:
        seen = []
        for i in range(0, len(audio), 640):
            await stream.feed(audio[i : i + 640])
            seen.append(stream.complete)
        assert not seen[0] and seen[-1]  # nothing at first; "operator" before the end
        assert (await stream.finish()).text == "operator"
    finally:
        await stream.aclose()


def test_a_whole_phrase_ends_the_utterance_after_the_shorter_silence() -> None:
    det = SpeechDetector(frame_ms=20, min_speech_ms=40, end_silence_ms=800, complete_silence_ms=300)
    assert [det.feed(True) for _ in range(3)][1] is not None  # onset
    det.complete = True
    events = [det.feed(False) for _ in range(15)]
    assert events[-1] is not None and events[-1].kind == "end" and det.silence_ms == 300
    det = SpeechDetector(frame_ms=20, min_speech_ms=40, end_silence_ms=800, complete_silence_ms=300)
    for _ in range(3):
        det.feed(True)
    assert all(det.feed(False) is None for _ in range(39))  # not complete: the long window
    assert det.feed(False) is not None and det.silence_ms == 800


async def test_listen_on_a_call_ends_soon_after_a_whole_phrase() -> None:
    # end_silence_ms of 8 s would keep the caller waiting; "operator" is a whole phrase, so the
    # utterance ends after listen_complete_silence_ms (300 ms) of silence instead.
    rig_cm = open_app_rig(PortRange(), tts=EspeakTTS(sample_rate=8000), stt=STT)
    async with rig_cm as rig:

        async def body(call: CallSession) -> Any:
            heard = await call.listen(20, phrases=MENU, end_silence_ms=8000)
            return heard, asyncio.get_running_loop().time()

        sim = await rig.call(body)
        await speak(sim, "operator")
        said = asyncio.get_running_loop().time()
        heard, at = await rig.result()
        assert heard == "operator"
        assert at - said < 6.0  # far less than the 8 s window, even on a loaded machine
