"""Prompts as wire frames, and warming the prompt cache with a flow's static prompts.

:func:`prompt_key` and :func:`encoded_prompt` are what :class:`~voxflow.media.callmedia.CallMedia`
uses for a ``say``; :func:`warm_prompts` runs the same synthesis before any call (one prompt at a
time, in the caller's background task), so a call's first prompts are cache hits, or join the
synthesis in flight (the cache's single flight), instead of starting one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from typing import Any

from voxflow.media.codecs import Resampler, codec_spec, encode
from voxflow.voice.prompt_cache import PromptCache, PromptKey
from voxflow.voice.providers import TextToSpeech

__all__ = ["encoded_prompt", "prompt_key", "warm_prompts", "wire_codec"]

log = logging.getLogger(__name__)


def wire_codec(options: Mapping[str, Any]) -> str:
    """The wire codec of a call's media from the app's media options (default ulaw 8 kHz)."""
    return str(options.get("format", options.get("codec", "ulaw")))


def prompt_key(tts: TextToSpeech, text: str, voice: str | None, codec: str) -> PromptKey:
    """The cache key of ``text`` spoken by ``tts`` with ``voice``, encoded as ``codec``."""
    return PromptKey(id(tts), voice or "", text, codec, codec_spec(codec).sample_rate)


def prompt_frames(
    cache: PromptCache | None,
    tts: TextToSpeech,
    text: str,
    voice: str | None,
    codec: str,
    queue: Callable[[list[bytes]], None],
) -> AsyncIterator[bytes]:
    """``text`` as wire-encoded audio: synthesized, or from ``cache`` when there is one. A
    prompt the cache holds whole goes to ``queue`` at once (nothing is left to iterate): its
    first frame leaves with the pacer's next tick, not a pass of the event loop later."""
    if cache is None:
        return encoded_prompt(tts, text, voice, codec)
    key = prompt_key(tts, text, voice, codec)
    chunks = cache.ready(key)
    if chunks is None:
        return cache.stream(key, lambda: encoded_prompt(tts, text, voice, codec))
    queue(chunks)
    return _nothing()


async def _nothing() -> AsyncGenerator[bytes, None]:
    return
    yield  # an async generator that yields nothing


async def encoded_prompt(
    tts: TextToSpeech, text: str, voice: str | None, codec: str
) -> AsyncGenerator[bytes, None]:
    """Synthesize ``text`` and yield it resampled and encoded for the wire."""
    resampler = Resampler(tts.sample_rate, codec_spec(codec).sample_rate)
    pcm_chunks = tts.synthesize(text, voice=voice)
    try:
        async for pcm in pcm_chunks:
            yield encode(resampler.process(pcm), codec)
        yield encode(resampler.process(b"", last=True), codec)
    finally:
        aclose = getattr(pcm_chunks, "aclose", None)  # TextToSpeech promises an iterator only
        if aclose is not None:
            await aclose()


async def warm_prompts(
    cache: PromptCache,
    tts: TextToSpeech,
    prompts: Iterable[tuple[str, str | None]],
    options: Mapping[str, Any],
) -> int:
    """Synthesize ``prompts`` ((text, voice) pairs) into ``cache``, one after the other, until
    they would fill it (``max_bytes``). Returns how many were synthesized or already there. A
    failed synthesis is logged and skipped (the call that needs the prompt tries again)."""
    codec = wire_codec(options)
    warmed = size = 0
    for text, voice in prompts:
        if size >= cache.max_bytes:
            break
        key = prompt_key(tts, text, voice, codec)
        frames = cache.stream(key, functools.partial(encoded_prompt, tts, text, voice, codec))
        try:
            async for chunk in frames:
                size += len(chunk)
        except Exception as exc:  # a provider failure: the first call needing it tries again
            log.warning("could not pre-synthesize prompt %r: %s", text[:40], exc)
            continue
        warmed += 1
    return warmed
