"""pocketsphinx's ``process_raw`` holds the GIL for the whole call (the bindings never release
it), so while a worker thread decodes, the RTP pacer's thread and the event loop wait for the call
to return. The offline recogniser therefore hands a decoder one 10 ms frame per call; and audio
decoded in bulk (a stream that got its decoders late, or fell behind) is decoded 40 ms at a time
as if streamed, so that the decision is the one it would have had with decoders of its own (issue
18; docs/media-performance.md, "Spoken answers at 500 calls")."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from call_audio import call_audio
from shared_stt import shared_stt

from voxflow.media import codecs, stt_pocketsphinx
from voxflow.media.stt_pocketsphinx import PocketSphinxSTT
from voxflow.media.stt_slices import FIRST_SLICE_BYTES, slices
from voxflow.sandbox.audio import espeak_pcm16_async
from voxflow.voice.providers import Transcript

MENU = ["sales", "support", "billing", "pay my bill", "operator", "agent"]
FRAME = 16000 * 2 // 100  # one 10 ms decoder frame of 16 kHz pcm16

espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


class _Recording:
    """A real pocketsphinx decoder whose ``process_raw`` calls are recorded (bytes per call;
    ``START`` for each ``start_utt``)."""

    def __init__(self, decoder: Any, sizes: list[int]) -> None:
        self._decoder, self._sizes = decoder, sizes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._decoder, name)

    def start_utt(self) -> Any:
        self._sizes.append(START)
        return self._decoder.start_utt()

    def process_raw(self, pcm: bytes, no_search: bool, full_utt: bool) -> Any:
        self._sizes.append(len(pcm))
        return self._decoder.process_raw(pcm, no_search, full_utt)


START = -1


@espeak
@pytest.mark.parametrize("decoders", [3, 1])  # every search streams | two run at finish
async def test_no_decoder_call_is_given_more_than_one_frame_of_audio(
    monkeypatch: pytest.MonkeyPatch, decoders: int
) -> None:
    stt = PocketSphinxSTT(max_decoders=decoders)
    sizes: list[int] = []
    build = stt._new_decoder
    monkeypatch.setattr(stt, "_new_decoder", lambda: _Recording(build(), sizes))
    await stt.warm_up()
    audio = await call_audio("billing")
    stream = await stt.open_stream(phrases=MENU, min_confidence=0.5)
    try:
        for i in range(0, len(audio), 640):  # 20 ms pieces, as CallMedia.listen feeds them
            await stream.feed(audio[i : i + 640])
        got = await stream.finish()
    finally:
        await stream.aclose()
    assert got.text == "billing" and (got.confidence or 0) >= 0.5
    # the grammar, phone loop and check each decoded the speech (streamed or at finish; not
    # the silence held back after a settled point), one frame per call (but each decoder's
    # first): a pacer waiting for the GIL waits for one frame's search at most
    calls = [n for n in sizes if n != START]
    assert sum(calls) >= 3 * 16000 * 2 // 2  # >= 0.5 s each
    # an utterance's first call on a decoder is one analysis window (stt_slices), once per
    # start_utt at most
    larger = [n for n in calls if n > FRAME]
    assert larger and set(larger) == {FIRST_SLICE_BYTES}
    assert len(larger) <= sizes.count(START) and len(calls) - len(larger) > 100


async def _decide(stt: PocketSphinxSTT, audio: bytes, *, late: bool) -> tuple[Transcript, Any]:
    """``audio`` recognised by a stream of its own decoders, or (``late``) by one that gets
    them all only at ``finish`` (another recognition held every decoder while the caller spoke)."""
    holder = await stt.open_stream(phrases=MENU[:4], min_confidence=0.5) if late else None
    stream = await stt.open_stream(phrases=MENU[:4], min_confidence=0.5)
    try:
        for i in range(0, len(audio), 640):
            await stream.feed(audio[i : i + 640])
        if holder is not None:
            await holder.aclose()  # every decoder free again: grammar, phone loop and check
        got = await stream.finish()
    finally:
        await stream.aclose()
        if holder is not None:
            await holder.aclose()
    return got, (stream.features, stream.check, stream.check_nbest)


@espeak
async def test_a_stream_that_gets_its_decoders_at_finish_decides_as_with_its_own() -> None:
    # bench/calls.py at 100 calls: the recognitions that waited for decoders decoded the whole
    # utterance in one piece, past the point where a streamed one holds the silence back, and
    # their decision differed (there: the check heard "sales", the answer was rejected)
    stt = shared_stt()
    pcm = bytes(1600) + await espeak_pcm16_async("billing") + bytes(6400)  # the sandbox's caller
    audio = codecs.resample(codecs.ulaw_decode(codecs.ulaw_encode(pcm)), 8000, 16000)
    own = await _decide(stt, audio, late=False)
    late = await _decide(stt, audio, late=True)
    assert own[0].text == "billing"
    assert late == own  # text, confidence, alternatives, features and the check's phrases


@espeak
async def test_ten_ms_calls_decide_as_forty_ms_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    # the decision's constants were fitted with 40 ms process_raw calls; 10 ms calls whose
    # first one held no whole analysis window scored every utterance differently (held-out
    # right answers 80.6 -> 69.4 % clean, docs/speech.md): the first call is now a window
    stt = shared_stt()
    for text in ("billing", "pay my bill", "I want to leave a message"):
        audio = await call_audio(text)
        got = {}
        for size in (4 * FRAME, FRAME):
            monkeypatch.setattr(stt_pocketsphinx, "_SLICE_BYTES", size)
            got[size] = await _decide(stt, audio, late=False)
        assert got[FRAME][1][0] is not None  # a decision was made: features computed
        assert got[FRAME] == got[4 * FRAME], text  # text, confidence, features, check


def test_the_first_slice_of_an_utterance_covers_an_analysis_window() -> None:
    data = bytes(range(256)) * 10  # 2560 bytes
    first = list(slices(data, FRAME, first=True))
    assert [len(p) for p in first] == [FIRST_SLICE_BYTES] + [FRAME] * 5
    assert FIRST_SLICE_BYTES >= 410 * 2  # one 25.6 ms window of 16 kHz pcm16
    assert b"".join(first) == data
    later = list(slices(data, FRAME, first=False))
    assert [len(p) for p in later] == [FRAME] * 8 and b"".join(later) == data
    assert [len(p) for p in slices(data, 1280, first=True)] == [1280, 1280]
    assert list(slices(b"", FRAME, first=True)) == []


async def _decide_alone(stt: PocketSphinxSTT, audio: bytes) -> tuple[Transcript, Any]:
    """``audio`` recognised with no spare decoder: the phone loop and the check run at
    ``finish`` over the kept audio, on the grammar's decoder."""
    others = [stt.pool.take(), stt.pool.take()]  # two other recognitions' decoders
    try:
        got, evidence = await _decide(stt, audio, late=False)
    finally:
        for decoder in others:
            stt._give(decoder)
    return got, evidence


@espeak
async def test_without_a_spare_decoder_the_silence_after_the_caller_does_not_decide() -> None:
    # bench/calls.py at 100 calls: the recognitions that found no spare decoder decoded the
    # whole utterance, 800 ms of line silence after "billing" included, and their check
    # heard "sales" in it (17 of 25 rejected); now the phone loop run at finish finds where
    # the streamed searches would have held the rest back (stt_alone), and the decision is the
    # streamed one however long the silence waited
    stt = shared_stt()
    for text in ("billing", "pay my bill", "I want to leave a message"):
        audio = await call_audio(text)  # 800 ms of line silence after the words
        longer = audio + audio[-3200:] * 10  # one more second of the line's last 100 ms
        own = await _decide(stt, audio, late=False)
        assert own[0].text == ("" if " to " in text else text)
        assert await _decide_alone(stt, audio) == own, text  # text, confidence, features, check
        assert await _decide_alone(stt, longer) == own, text
