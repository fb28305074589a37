"""Decoders of a recogniser that is gone are reused by the next one (``IDLE_DECODERS``): a
program that makes recognisers one after another builds each decoder once (~0.5 s of CPU with the
GIL held), and a reused decoder decides as a new one does."""

from __future__ import annotations

import asyncio
import gc
import shutil
from typing import Any

import pytest

from voxflow.media import codecs, stt_pocketsphinx
from voxflow.media.stt_pocketsphinx import PocketSphinxSTT
from voxflow.media.stt_pool import DecoderPool, IdleDecoders, PoolStats
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.voice.providers import Transcript

MENU = ["sales", "support", "billing", "pay my bill", "operator", "agent"]

espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


async def _call_audio(text: str) -> bytes:
    """``text`` as a caller's 8 kHz mu-law leg delivers it, at 16 kHz."""
    tts = EspeakTTS(sample_rate=8000)
    pcm = bytes(6400) + b"".join([c async for c in tts.synthesize(text)]) + bytes(12800)
    return codecs.resample(codecs.ulaw_decode(codecs.ulaw_encode(pcm)), 8000, 16000)


async def _recognise(stt: PocketSphinxSTT, audio: bytes, phrases: list[str]) -> Transcript:
    stream = await stt.open_stream(phrases=phrases, min_confidence=0.5)
    try:
        for i in range(0, len(audio), 640):
            await stream.feed(audio[i : i + 640])
        return await stream.finish()
    finally:
        await stream.aclose()


async def _until(check: Any, timeout: float = 10.0) -> None:
    """Wait until ``check()`` (a worker thread may hold a finished call's last reference for a
    moment after it returned)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        gc.collect()
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true after {timeout} s: {check}")
        await asyncio.sleep(0.01)


@espeak
async def test_a_recogniser_that_is_gone_leaves_its_decoders_to_the_next_which_decide_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    idle = IdleDecoders(3)
    monkeypatch.setattr(stt_pocketsphinx, "IDLE_DECODERS", idle)
    builds = [0]
    build = PocketSphinxSTT._build_decoder

    def counting(self: PocketSphinxSTT) -> Any:
        builds[0] += 1
        return build(self)

    monkeypatch.setattr(PocketSphinxSTT, "_build_decoder", counting)
    billing, operator = await _call_audio("billing"), await _call_audio("operator")

    first = PocketSphinxSTT(max_decoders=2)
    config = first._config
    used = await _recognise(first, billing, MENU)  # the decoders now have a history
    assert builds == [2] and used.text == "billing"
    del first
    await _until(lambda: idle.count(config) == 2)

    second = PocketSphinxSTT(max_decoders=3)
    await second.warm_up()
    assert builds == [3]  # two reused, one built
    assert second.stats() == PoolStats(size=3, built=3, free=3, waits=0)
    assert idle.count(config) == 0
    reused = [await _recognise(second, a, p) for a, p in ((operator, MENU), (billing, MENU[:3]))]

    idle.clear()  # a third recogniser with new decoders only
    fresh = PocketSphinxSTT(max_decoders=3)
    new = [await _recognise(fresh, a, p) for a, p in ((operator, MENU), (billing, MENU[:3]))]
    assert builds == [6]
    assert reused == new
    assert [t.text for t in new] == ["operator", "billing"]


def test_idle_decoders_are_kept_per_configuration_and_bounded() -> None:
    idle = IdleDecoders(3)
    a = [object() for _ in range(5)]
    idle.keep("a", a[:2])
    idle.keep("a", a[2:])  # five kept, at most three: the oldest two are dropped
    assert idle.count("a") == 3 and idle.count("b") == 0
    assert idle.take("b") is None
    assert [idle.take("a") for _ in range(4)] == [a[4], a[3], a[2], None]
    idle.keep("b", a[:1])
    idle.clear()
    assert idle.take("b") is None and idle.count("b") == 0


def test_a_pool_that_is_collected_leaves_only_its_free_decoders() -> None:
    left: list[Any] = []
    made = iter(["d1", "d2", "d3"])
    pool = DecoderPool(lambda: next(made), 3, on_gone=left.extend)
    assert pool.fill() == 3
    held = pool.take()  # a recognition still has this one: it is not left to the next pool
    del pool
    gc.collect()
    assert held is not None and sorted(left) == sorted({"d1", "d2", "d3"} - {held})
