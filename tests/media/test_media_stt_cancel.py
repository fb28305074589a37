"""A recognition cancelled while its worker thread decodes (the call hung up, a key stopped the
listen) keeps its pooled decoders until that thread has stopped: given back earlier, the next
recognition to take them heard the rest of the cancelled caller's audio (issue 18, session 10:
"billing" heard as "sales" under load)."""

from __future__ import annotations

import asyncio
import shutil
import threading
from typing import Any

import pytest
from call_audio import call_audio
from shared_stt import shared_stt

from voxflow.media.stt_pocketsphinx import PocketSphinxStream, PocketSphinxSTT
from voxflow.media.stt_pool import PoolStats, in_thread_to_the_end
from voxflow.voice.providers import Transcript

MENU = ["sales", "support", "billing", "pay my bill", "operator"]
FULL = shared_stt()

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


async def _call_audio(text: str) -> bytes:
    return await call_audio(text, lead=3200, tail=6400)  # shorter pauses than the VAD's


async def _feed(stream: PocketSphinxStream, audio: bytes) -> None:
    for i in range(0, len(audio), 640):  # 20 ms pieces, as CallMedia.listen feeds them
        await stream.feed(audio[i : i + 640])


def _block_first_dither(stream: PocketSphinxStream) -> tuple[threading.Event, threading.Event]:
    """Stop ``stream``'s worker thread inside a decode (its decoders in hand) until released;
    returns (stopped there, release)."""
    stopped, release = threading.Event(), threading.Event()
    dither = stream._dither

    def blocking(pcm16: bytes) -> bytes:
        if not stopped.is_set():
            stopped.set()
            if not release.wait(30):
                raise TimeoutError("never released")
        return dither(pcm16)

    stream._dither = blocking  # type: ignore[method-assign]  # a test hook in the decode path
    return stopped, release


async def _streamed(audio: bytes) -> tuple[Transcript, Any, str | None]:
    own = await FULL.open_stream(phrases=MENU, min_confidence=0.5)
    try:
        await _feed(own, audio)
        return await own.finish(), own.features, own.check
    finally:
        await own.aclose()


async def test_a_cancelled_feed_keeps_its_decoders_until_its_thread_stops_decoding() -> None:
    stt = PocketSphinxSTT()
    await stt.warm_up()
    sales, billing = await _call_audio("sales sales sales"), await _call_audio("billing")
    cancelled = await stt.open_stream(phrases=MENU, min_confidence=0.5)  # alone: all three
    stopped, release = _block_first_dither(cancelled)
    feeding = asyncio.ensure_future(cancelled.feed(sales))
    assert await asyncio.to_thread(stopped.wait, 30)
    feeding.cancel()  # the call hung up while its thread decodes
    closing = asyncio.ensure_future(cancelled.aclose())
    await asyncio.wait({closing}, timeout=1.0)  # (given back at once before the fix)
    nxt = await stt.open_stream(phrases=MENU, min_confidence=0.5)
    try:
        assert nxt.decoder_wait_s is None  # all still the cancelled one's: audio kept
        await _feed(nxt, billing[: len(billing) // 2])
        release.set()  # the cancelled thread decodes on, into its own decoders only
        await asyncio.wait_for(closing, 30)
        with pytest.raises(asyncio.CancelledError):
            await feeding
        await _feed(nxt, billing[len(billing) // 2 :])
        got = await asyncio.wait_for(nxt.finish(), 60)
    finally:
        release.set()
        await nxt.aclose()
    assert stt.stats() == PoolStats(size=3, built=3, free=3, waits=0)
    assert (got, nxt.features, nxt.check) == await _streamed(billing)
    assert got.text == "billing"


async def test_a_cancelled_finish_gives_its_decoders_back_once_its_thread_has_ended() -> None:
    stt = PocketSphinxSTT()
    await stt.warm_up()
    stream = await stt.open_stream(phrases=MENU, min_confidence=0.5)
    await _feed(stream, (await _call_audio("billing"))[:3200])
    stopped, release = _block_first_dither(stream)
    finishing = asyncio.ensure_future(stream.finish())
    assert await asyncio.to_thread(stopped.wait, 30)
    finishing.cancel()
    await asyncio.wait({finishing}, timeout=1.0)
    assert stt.spare() == 0  # the thread still decodes: none given back yet
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(finishing, 30)
    await stream.aclose()
    assert stt.stats() == PoolStats(size=3, built=3, free=3, waits=0)  # none leaked


async def test_a_finish_cancelled_as_it_binds_its_decoders_gives_them_back_usable() -> None:
    # bench/calls.py, 250 calls: decoders given back mid-utterance cannot change their search
    # ("listen failed: KeyError: 'Unable to set search ...'" for the next recognitions)
    stt = PocketSphinxSTT()
    await stt.warm_up()
    billing = await _call_audio("billing")
    keys = await stt.open_stream(phrases=MENU)  # beside another: decoders taken when silent
    stream = await stt.open_stream(phrases=MENU, min_confidence=0.5)
    await _feed(stream, billing)  # no listener tells it the caller is silent: kept for finish
    await keys.aclose()
    assert stream.decoder_wait_s is None and stt.spare() == 3
    stopped, release = threading.Event(), threading.Event()
    attach = stream._attach_sync

    def blocking(decoder: Any) -> None:
        attach(decoder)  # the grammar, the phone loop and the check started
        stopped.set()
        release.wait(30)

    stream._attach_sync = blocking  # type: ignore[method-assign]  # a test hook
    finishing = asyncio.ensure_future(stream.finish())
    assert await asyncio.to_thread(stopped.wait, 30)
    finishing.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(finishing, 30)
    await stream.aclose()
    assert stt.spare() == 3
    nxt = await stt.open_stream(phrases=MENU, min_confidence=0.5)
    try:
        await _feed(nxt, billing)
        got = await asyncio.wait_for(nxt.finish(), 60)
    finally:
        await nxt.aclose()
    assert (got, nxt.features, nxt.check) == await _streamed(billing)


async def test_a_thread_awaited_to_the_end_raises_the_cancellation_after() -> None:
    started, release, ended = threading.Event(), threading.Event(), threading.Event()

    def work() -> int:
        started.set()
        release.wait(30)
        ended.set()
        return 1

    task = asyncio.ensure_future(in_thread_to_the_end(work))
    assert await asyncio.to_thread(started.wait, 30)
    task.cancel()
    await asyncio.wait({task}, timeout=0.2)
    assert not task.done()  # cancelled, still waiting for the thread
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 30)
    assert ended.is_set()
    assert await in_thread_to_the_end(lambda: 2) == 2
