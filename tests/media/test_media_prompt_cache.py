"""The worker-wide prompt cache: single flight, LRU bound in bytes, failures not kept, and
through the sandbox: concurrent calls saying the same prompt synthesize it once and all hear it."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest
from media_rig import audible, recognise
from sandbox_rig import open_app_rig
from shared_stt import shared_stt

from voxflow.errors import ProviderError
from voxflow.media.callmedia import CallMedia
from voxflow.media.transport import PortRange
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.telephony.session import CallSession
from voxflow.voice.call import BargeIn
from voxflow.voice.prompt_cache import PromptCache, PromptKey


def _key(text: str) -> PromptKey:
    return PromptKey(1, "", text, "ulaw", 8000)


class _Source:
    """Produces ``chunks`` one at a time when released; counts how often it was started."""

    def __init__(self, chunks: list[bytes], fail: Exception | None = None) -> None:
        self.chunks = chunks
        self.fail = fail
        self.started = 0
        self.gate = asyncio.Event()

    async def produce(self) -> AsyncGenerator[bytes, None]:
        self.started += 1
        for chunk in self.chunks:
            await self.gate.wait()
            yield chunk
        if self.fail is not None:
            raise self.fail


async def _read(it: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in it])


async def test_readers_of_one_prompt_share_one_synthesis_even_while_it_runs() -> None:
    cache = PromptCache()
    src = _Source([b"ab", b"cd", b"ef"])
    first = asyncio.ensure_future(_read(cache.stream(_key("hi"), src.produce)))
    await asyncio.sleep(0)
    joined = [asyncio.ensure_future(_read(cache.stream(_key("hi"), src.produce))) for _ in range(9)]
    await asyncio.sleep(0.01)
    assert not first.done()  # still synthesizing: the nine joined it
    src.gate.set()
    assert {await first, *[await j for j in joined]} == {b"abcdef"}
    assert await _read(cache.stream(_key("hi"), src.produce)) == b"abcdef"
    assert src.started == 1
    assert (cache.stats.misses, cache.stats.joins, cache.stats.hits) == (1, 9, 1)
    assert (cache.stats.entries, cache.stats.bytes) == (1, 6)


async def test_a_synthesis_is_asked_for_in_the_call_to_stream_not_a_loop_pass_later() -> None:
    """The provider's first step (espeak-ng spawned, a request written) runs in ``stream``
    itself: after a key, in the key's own dispatch; the rest in the cache's own task."""
    cache = PromptCache()
    src = _Source([b"ab", b"cd"])
    frames = cache.stream(_key("hi"), src.produce)
    assert src.started == 1  # it was 0 here: the synthesis task had not run yet
    src.gate.set()
    assert await _read(frames) == b"abcd"
    assert (cache.stats.misses, cache.stats.entries, cache.stats.bytes) == (1, 1, 4)


async def test_a_reader_that_stops_early_does_not_stop_the_synthesis_for_others() -> None:
    cache = PromptCache()
    src = _Source([b"a", b"b", b"c"])
    src.gate.set()
    barged = cache.stream(_key("x"), src.produce)
    assert await anext(barged) == b"a"
    await barged.aclose()  # type: ignore[attr-defined]  # an async generator underneath
    assert await _read(cache.stream(_key("x"), src.produce)) == b"abc"
    assert src.started == 1


async def test_least_recently_used_prompts_go_first_when_over_the_byte_bound() -> None:
    cache = PromptCache(max_bytes=10)
    sources = {t: _Source([t.encode() * 4]) for t in "abc"}
    for s in sources.values():
        s.gate.set()
    await _read(cache.stream(_key("a"), sources["a"].produce))
    await _read(cache.stream(_key("b"), sources["b"].produce))
    await _read(cache.stream(_key("a"), sources["a"].produce))  # a is now the most recent
    await _read(cache.stream(_key("c"), sources["c"].produce))  # 12 bytes > 10: b goes
    await _read(cache.stream(_key("a"), sources["a"].produce))
    await _read(cache.stream(_key("b"), sources["b"].produce))
    assert (sources["a"].started, sources["b"].started, sources["c"].started) == (1, 2, 1)
    assert cache.stats.bytes <= 10 and cache.stats.evictions == 2


async def test_a_failed_synthesis_reaches_every_reader_and_is_not_kept() -> None:
    cache = PromptCache()
    bad = _Source([b"a"], fail=ProviderError("espeak-ng exited with 1"))
    readers = [asyncio.ensure_future(_read(cache.stream(_key("x"), bad.produce))) for _ in "12"]
    bad.gate.set()
    for r in readers:
        with pytest.raises(ProviderError, match="exited with 1"):
            await r
    good = _Source([b"ok"])
    good.gate.set()
    assert await _read(cache.stream(_key("x"), good.produce)) == b"ok"
    assert good.started == 1 and cache.stats.entries == 1


async def test_closing_the_cache_cancels_syntheses_in_flight() -> None:
    cache = PromptCache()
    src = _Source([b"a"])  # never released
    reader = asyncio.ensure_future(_read(cache.stream(_key("x"), src.produce)))
    await asyncio.sleep(0.01)
    await cache.aclose()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert cache.stats.entries == 0


class _CountingTTS(EspeakTTS):
    """espeak-ng, counting the syntheses it was asked for."""

    calls = 0

    async def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
        self.calls += 1
        async for pcm in super().synthesize(text, voice=voice):
            yield pcm


@pytest.mark.long
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
async def test_concurrent_calls_saying_one_prompt_synthesize_it_once_and_all_hear_it() -> None:
    tts = _CountingTTS(sample_rate=8000)
    rig_cm = open_app_rig(PortRange(), tts=tts, stt=shared_stt())
    async with rig_cm as rig:

        async def body(call: CallSession) -> Any:
            return await call.say("talk to an agent", barge_in=BargeIn("none"))

        rig.bodies.update({str(n): body for n in range(4)})
        sims = await asyncio.gather(
            *(rig.sb.place_call(from_=rig.caller_id, to=str(n), app="voxflow") for n in range(4))
        )
        results = [await rig.result() for _ in sims]
        assert all(r.heard_ms > 500 for r in results)
        assert tts.calls == 1
        assert rig.app.prompt_cache is not None and rig.app.prompt_cache.stats.misses == 1
        await asyncio.sleep(0.2)
        for sim in sims:
            assert "talk to an agent" in await recognise(audible(sim.heard_audio()))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
async def test_a_cached_prompt_is_queued_by_say_itself_not_a_loop_pass_later() -> None:
    async with open_app_rig(PortRange(), tts=EspeakTTS(sample_rate=8000)) as rig:

        async def body(call: CallSession) -> Any:
            await call.say("one moment", barge_in=BargeIn("none"))  # synthesized and cached
            voice = await call.call_voice()
            assert isinstance(voice, CallMedia) and voice.outbound.idle
            hits = rig.app.prompt_cache.stats.hits if rig.app.prompt_cache else -1
            sent = voice.outbound.packets_sent
            again = asyncio.ensure_future(voice.say("one moment", barge_in=BargeIn("none")))
            await asyncio.sleep(0)  # one pass: say() runs to its first wait, and no further
            queued = voice.outbound.queued_frames + voice.outbound.packets_sent - sent
            heard = await again
            assert rig.app.prompt_cache is not None
            return queued, rig.app.prompt_cache.stats.hits - hits, heard.heard_ms

        rig.bodies["1"] = body
        await rig.sb.place_call(from_=rig.caller_id, to="1", app="voxflow")
        queued, hits, heard_ms = await rig.result()
        assert hits == 1 and queued >= 20 and heard_ms >= 400  # the whole prompt, at once
