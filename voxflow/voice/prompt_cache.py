"""A worker-wide cache of synthesized prompts, kept as wire-ready frames.

Most of what an IVR says is the same few sentences on every call. :class:`PromptCache` keeps each
prompt once per worker, already resampled and encoded for the wire (G.711 or slin16), keyed by
:class:`PromptKey` (the TTS, voice, text, wire codec and rate). It is bounded in bytes and evicts
the least recently used prompt first.

Single flight: the first call that asks for a prompt starts one synthesis task owned by the cache
(its first step, the provider's request, runs in that call's own callback:
:func:`~voxflow.eager.start_eagerly`); every call asking for the same key while it runs streams
the same chunks as they are produced, so no call waits for, or repeats, a synthesis that another
call already started. The task finishes even if the call that started it barges in or hangs up
(the prompt is wanted next time); a failed synthesis raises in every reader and is not kept, so
the next call tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass

from voxflow.eager import start_eagerly

__all__ = ["PromptCache", "PromptCacheStats", "PromptKey"]

DEFAULT_MAX_BYTES = 32 * 1024 * 1024  # ~70 min of 8 kHz G.711 prompts


@dataclass(frozen=True, slots=True)
class PromptKey:
    """What makes two prompts the same audio. ``tts`` identifies the provider object (a cache
    belongs to one app, whose providers live as long as it)."""

    tts: int
    voice: str
    text: str
    codec: str
    sample_rate: int


@dataclass(slots=True)
class PromptCacheStats:
    """Counters: ``hits`` (finished prompt reused), ``joins`` (joined a synthesis in flight),
    ``misses`` (synthesis started), ``evictions``; ``bytes`` and ``entries`` held now."""

    hits: int = 0
    joins: int = 0
    misses: int = 0
    evictions: int = 0
    bytes: int = 0
    entries: int = 0


class _Entry:
    """One prompt: its chunks so far, and whether the synthesis finished or failed."""

    __slots__ = ("changed", "chunks", "done", "error", "size")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = False
        self.error: BaseException | None = None
        self.changed = asyncio.Event()

    def add(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        self._wake()

    def finish(self, error: BaseException | None = None) -> None:
        self.done = True
        self.error = error
        self._wake()

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def read(self) -> AsyncIterator[bytes]:
        i = 0
        while True:
            while i < len(self.chunks):
                yield self.chunks[i]
                i += 1
            if self.done:
                if self.error is not None:
                    raise self.error
                return
            await self.changed.wait()


class PromptCache:
    """Bounded (``max_bytes``), least-recently-used, single-flight cache of encoded prompts."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = max_bytes
        self.stats = PromptCacheStats()
        self._entries: OrderedDict[PromptKey, _Entry] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def stream(
        self, key: PromptKey, produce: Callable[[], AsyncGenerator[bytes, None]]
    ) -> AsyncIterator[bytes]:
        """The prompt's encoded chunks: from the cache, from a synthesis in flight, or from a new
        one (``produce()`` is called at most once per key while the prompt stays cached)."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            if entry.done:
                self.stats.hits += 1
            else:
                self.stats.joins += 1
            return entry.read()
        self.stats.misses += 1
        entry = self._entries[key] = _Entry()
        # its first step now, in the caller's callback (a key's dispatch, for a prompt after a
        # barge-in): the provider is asked (espeak-ng spawned, a request written) at once
        task = start_eagerly(self._fill(key, entry, produce), self._tasks.add)
        task.add_done_callback(self._tasks.discard)
        return entry.read()

    def ready(self, key: PromptKey) -> list[bytes] | None:
        """The chunks of a prompt the cache holds whole (a hit), or None (not cached, or its
        synthesis still running: ``stream`` joins it)."""
        entry = self._entries.get(key)
        if entry is None or not entry.done or entry.error is not None:
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return list(entry.chunks)

    async def _fill(
        self, key: PromptKey, entry: _Entry, produce: Callable[[], AsyncGenerator[bytes, None]]
    ) -> None:
        chunks = produce()
        try:
            async for chunk in chunks:
                if chunk:
                    entry.add(chunk)
        except asyncio.CancelledError:
            entry.finish(asyncio.CancelledError("the prompt cache was closed"))
            self._drop(key, entry)
            raise
        except Exception as exc:  # a provider failure: every reader sees it, nothing is kept
            entry.finish(exc)
            self._drop(key, entry)
            return
        finally:
            await chunks.aclose()
        entry.finish()
        self.stats.bytes += entry.size
        self.stats.entries += 1
        self._evict()

    def _drop(self, key: PromptKey, entry: _Entry) -> None:
        if self._entries.get(key) is entry:
            del self._entries[key]

    def _evict(self) -> None:
        """Remove finished prompts, least recently used first, until within ``max_bytes``."""
        if self.stats.bytes <= self.max_bytes:
            return
        for key in list(self._entries):
            if self.stats.bytes <= self.max_bytes:
                break
            entry = self._entries[key]
            if not entry.done:
                continue
            del self._entries[key]
            self.stats.bytes -= entry.size
            self.stats.entries -= 1
            self.stats.evictions += 1

    def clear(self) -> None:
        """Forget every finished prompt (syntheses in flight carry on for their readers)."""
        for key in [k for k, e in self._entries.items() if e.done]:
            del self._entries[key]
        self.stats.bytes = 0
        self.stats.entries = 0

    async def aclose(self) -> None:
        """Cancel syntheses in flight (their readers get ``CancelledError``) and clear."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.clear()
