"""The offline recogniser's bounded decoder pool (issue 18): built before serving, never grown
during calls (a build holds the GIL ~0.5 s: the event loop, RTP pacer included, stands still); a
recognition that finds no decoder free keeps its audio and decides at finish, to the decision it
would have had with a decoder of its own."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import pytest
from call_audio import call_audio
from media_rig import until_stopped
from shared_stt import shared_stt

from voxflow import observe
from voxflow.errors import ConfigError
from voxflow.media.stt_pocketsphinx import DECODERS_PER_DECISION, PocketSphinxSTT
from voxflow.media.stt_pool import DecoderPool, PoolStats
from voxflow.runtime.config import load_settings
from voxflow.voice.providers import Transcript

MENU = ["sales", "support", "billing", "pay my bill", "operator", "agent"]
FULL = shared_stt()  # a full pool: every search of a decision streams

espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


async def _feed_and_finish(stream: Any, audio: bytes) -> Transcript:
    try:
        for i in range(0, len(audio), 640):  # 20 ms pieces, as CallMedia.listen feeds them
            await stream.feed(audio[i : i + 640])
        result: Transcript = await stream.finish()
        return result
    finally:
        await stream.aclose()


def _count_builds(stt: PocketSphinxSTT, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    built = [0]
    orig = stt._new_decoder

    def counting() -> Any:
        built[0] += 1
        return orig()

    monkeypatch.setattr(stt, "_new_decoder", counting)
    return built


@espeak
async def test_two_recognitions_share_one_decoder_and_decide_as_with_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alone = PocketSphinxSTT(max_decoders=1)
    built = _count_builds(alone, monkeypatch)
    await alone.warm_up()
    assert built == [1] and alone.stats() == PoolStats(size=1, built=1, free=1, waits=0)
    # ended as the endpointer ends them: a stream whose phone loop streams holds back what
    # follows a settled point, the phone loop run at finish cannot (media_rig.until_stopped)
    long = until_stopped(await call_audio("I want to pay my bill"))
    short = until_stopped(await call_audio("operator"))
    first = await alone.open_stream(phrases=MENU, min_confidence=0.5)
    second = await alone.open_stream(phrases=MENU, min_confidence=0.5)  # none free: it buffers
    results = await asyncio.wait_for(
        asyncio.gather(_feed_and_finish(first, long), _feed_and_finish(second, short)), 60
    )
    assert built == [1]  # no decoder built during the recognitions: the loop never stalled
    assert alone.stats() == PoolStats(size=1, built=1, free=1, waits=1)  # "operator" waited
    await FULL.warm_up()
    own = []
    for audio in (long, short):  # each with decoders of its own (every search streams)
        stream = await FULL.open_stream(phrases=MENU, min_confidence=0.5)
        own.append(await _feed_and_finish(stream, audio))
    assert list(results) == own
    assert results[1].text == "operator" and (results[1].confidence or 0) >= 0.5
    assert results[0].text in ("pay my bill", "")  # never another choice


class _Waits:
    """An observer keeping the decoder waits (the rest of the interface does nothing)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def step(self, kind: str, seconds: float) -> None:
        pass

    def ari_request(self, method: str, seconds: float, status: int) -> None:
        pass

    def provider_error(self, kind: str, provider: str) -> None:
        pass

    def rtp(self, received: int, lost: int, late: int) -> None:
        pass

    def decoder_wait(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_each_recognition_reports_how_long_it_waited_for_a_decoder() -> None:
    alone = PocketSphinxSTT(max_decoders=1)
    await alone.warm_up()
    seen = _Waits()
    observe.install(seen)
    try:
        first = await alone.open_stream(phrases=MENU, min_confidence=0.5)
        second = await alone.open_stream(phrases=MENU, min_confidence=0.5)  # none free
        assert len(seen.waits) == 1 and seen.waits[0] < 1.0  # the first found one free
        assert second.decoder_wait_s is None
        await asyncio.sleep(0.05)  # the second waits while the first holds the only decoder
        await first.aclose()
        await second.feed(bytes(6400))  # takes the decoder given back
        await second.aclose()
    finally:
        observe.uninstall(seen)
    assert len(seen.waits) == 2 and seen.waits[1] >= 0.05
    assert second.decoder_wait_s == seen.waits[1]


@espeak
async def test_a_waiting_recognition_takes_the_decoder_as_soon_as_it_is_free() -> None:
    alone = PocketSphinxSTT(max_decoders=1)
    audio = await call_audio("billing")
    first = await alone.open_stream(phrases=MENU, min_confidence=0.5)
    second = await alone.open_stream(phrases=MENU, min_confidence=0.5)
    await second.feed(audio[:6400])  # kept: the only decoder is the first's
    assert alone.spare() == 0
    await first.aclose()  # the caller hung up: its decoder goes back
    for i in range(6400, len(audio), 640):
        await second.feed(audio[i : i + 640])  # decoded from here on, the kept audio first
    assert alone.spare() == 0
    result = await second.finish()
    await second.aclose()
    assert result.text == "billing" and alone.stats().waits == 0 and alone.spare() == 1


async def test_an_abandoned_wait_leaves_the_pool_whole_and_the_next_waiter_served() -> None:
    made: list[object] = []

    def build() -> object:
        made.append(object())
        return made[-1]

    pool = DecoderPool(build, 1)
    assert await asyncio.to_thread(pool.fill) == 1 and pool.fill() == 0  # never more than size
    held = pool.take()
    assert held is not None and pool.take() is None
    gone = asyncio.ensure_future(pool.acquire())
    served = asyncio.ensure_future(pool.acquire())
    await asyncio.sleep(0)
    assert pool.waiting() == 2
    pool.give(held)  # wakes the first waiter...
    gone.cancel()  # ...which is abandoned before it runs: the second must be served
    assert await asyncio.wait_for(served, 5) is held
    assert gone.cancelled() and pool.waiting() == 0
    assert pool.stats() == PoolStats(size=1, built=1, free=0, waits=2) and len(made) == 1


def test_the_pool_size_is_a_setting_and_at_least_one(tmp_path: Any) -> None:
    assert load_settings(env={}, cwd=tmp_path).stt_decoders == DECODERS_PER_DECISION
    (tmp_path / "voxflow.toml").write_text("[media]\nstt_decoders = 5\n")
    assert load_settings(env={}, cwd=tmp_path).stt_decoders == 5
    (tmp_path / "voxflow.toml").write_text("[media]\nstt_decoders = 0\n")
    with pytest.raises(ConfigError, match="stt_decoders"):
        load_settings(env={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="at least one decoder"):
        PocketSphinxSTT(max_decoders=0)


@espeak
async def test_beside_another_recognition_decoders_are_taken_once_the_caller_is_silent() -> None:
    # bench/calls.py: a recognition held its decoders for the length of the caller's words
    # (~15x what decoding them takes) while the others waited for the pool; the listener's
    # VAD (endpointing.follow) now tells it when the caller is silent
    stt = PocketSphinxSTT()
    await stt.warm_up()
    audio = await call_audio("billing")
    other = await stt.open_stream(phrases=MENU)  # no decision: one decoder
    stream = await stt.open_stream(phrases=MENU, min_confidence=0.5)
    speech = len(audio) - 25600  # the words; the last 800 ms are the line's silence
    try:
        assert stt.spare() == 2 and stream.decoder_wait_s is None
        stream.silence_ms = 0  # the caller speaks
        for i in range(0, speech, 640):
            await stream.feed(audio[i : i + 640])
        assert stt.spare() == 2 and stream.decoder_wait_s is None  # two free, none taken
        stream.silence_ms = 60  # the caller stopped (or pauses): decoders taken, then streamed
        for i in range(speech, len(audio), 640):
            await stream.feed(audio[i : i + 640])
        assert stt.spare() == 0 and stream.decoder_wait_s is not None
        assert stream.decoder_wait_s < 1.0  # counted from when it wanted them, not from open
        got = await asyncio.wait_for(stream.finish(), 60)
    finally:
        await other.aclose()
        await stream.aclose()
    assert stt.stats() == PoolStats(size=3, built=3, free=3, waits=0)
    own = await FULL.open_stream(phrases=MENU, min_confidence=0.5)
    alone = await _feed_and_finish(own, audio)  # alone: decoders at once, every search streams
    assert got == alone and got.text == "billing"
    assert (stream.features, stream.check, stream.check_nbest) == (
        own.features,
        own.check,
        own.check_nbest,
    )


async def test_a_recognition_alone_takes_its_decoders_at_once_one_told_nothing_at_finish() -> None:
    stt = PocketSphinxSTT(max_decoders=2)
    await stt.warm_up()
    first = await stt.open_stream(phrases=MENU, min_confidence=0.5)  # alone: at once
    assert stt.spare() == 0 and first.decoder_wait_s is not None
    await first.aclose()
    keys = await stt.open_stream(phrases=MENU)
    told_nothing = await stt.open_stream(phrases=MENU)  # no listener sets silence_ms
    try:
        await told_nothing.feed(bytes(6400))
        assert stt.spare() == 1 and stt.open_streams == 2  # its audio kept for finish
        await asyncio.wait_for(told_nothing.finish(), 30)
        assert told_nothing.decoder_wait_s is not None and stt.open_streams == 1
    finally:
        await keys.aclose()
        await told_nothing.aclose()
        await told_nothing.aclose()  # idempotent: counted out once
    assert stt.open_streams == 0 and stt.spare() == 2
