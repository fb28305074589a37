"""Once the stream is ``quiet`` (the phone loop heard no phone for 400 ms, whatever the words), the
audio after is held back from the searches until it holds speech again, as after a settled
phrase: the silence the endpointer still waits costs no decoding (issue 18, a decision's CPU),
and a recognition whose phone loop ran at ``finish`` (no decoder spare) is decided on the same
audio. Real espeak-ng speech over a G.711 leg."""

from __future__ import annotations

import shutil

import pytest
from call_audio import call_audio
from shared_stt import shared_stt

from voxflow.media.stt_alone import Mark, streamed_end
from voxflow.media.stt_pocketsphinx import PocketSphinxSTT
from voxflow.voice.providers import Transcript

espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
# "billing" is not a final phrase here ("billing question" extends it): it never settles, nor
# does speech out of the grammar in the main menu; both end quiet
EXTENDED = ["sales", "billing", "billing question"]
MENU = ["sales", "support", "billing", "pay my bill", "operator", "agent"]
CASES = [("billing", EXTENDED), ("I want to leave a message", MENU)]
TWO_SECONDS = 2 * 8000 * 2  # of 8 kHz silence after the words


def test_the_no_spare_replay_holds_where_the_phone_loop_heard_nothing() -> None:
    # 40 ms marks, never a final phrase; the phone loop's last phone ended at frame 20
    marks = [Mark(1280 * i, 4 * i, False, None) for i in range(1, 31)]
    raw = bytes(1280 * 30)  # silence: nothing speaks again

    def phone_end(end: int) -> int | None:
        return 20 if end >= 1280 * 5 else None

    assert streamed_end(marks, raw, phone_end, 10, 40) == 1280 * 15  # 60 - 20 >= 40 frames
    assert streamed_end(marks, raw, phone_end, 10, 200) == 1280 * 30  # never quiet: all of it


async def _recognise(
    stt: PocketSphinxSTT, audio: bytes, phrases: list[str]
) -> tuple[Transcript, list[int]]:
    """The decision, and the grammar decoder's frames after each piece once ``quiet``."""
    stream = await stt.open_stream(phrases=phrases, min_confidence=0.6)
    frames: list[int] = []
    try:
        for i in range(0, len(audio), 640):
            await stream.feed(audio[i : i + 640])
            decoder = stream._decoder  # the grammar's (None while it waits for one)
            if stream.quiet and decoder is not None:
                frames.append(decoder.n_frames())
        return await stream.finish(), frames
    finally:
        await stream.aclose()


@espeak
@pytest.mark.parametrize(("said", "phrases"), CASES)
async def test_once_quiet_the_silence_after_is_not_decoded(said: str, phrases: list[str]) -> None:
    audio = await call_audio(said, tail=TWO_SECONDS)
    result, frames = await _recognise(shared_stt(), audio, phrases)
    assert result.text in (said, "") and result.confidence is not None
    assert len(frames) > 50  # quiet for more than a second of the silence
    assert len(set(frames)) == 1  # ... and not a frame decoded since (fed: ~100 per second)
    assert frames[0] < len(audio) // 320 - 100


@espeak
@pytest.mark.parametrize(("said", "phrases"), CASES)
async def test_with_no_spare_decoder_a_quiet_stream_is_decided_on_the_same_audio(
    said: str, phrases: list[str]
) -> None:
    audio = await call_audio(said, tail=TWO_SECONDS)
    alone = PocketSphinxSTT(max_decoders=1)  # the phone loop runs at finish, over the kept audio
    late, _ = await _recognise(alone, audio, phrases)
    streamed, _ = await _recognise(shared_stt(), audio, phrases)
    assert late == streamed and late.confidence is not None
