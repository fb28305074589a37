"""A bounded pool of pocketsphinx decoders, all built before calls are served.

Building a decoder holds the GIL ~0.5 s of CPU and costs ~92-96 MB: built during a call it stalls
the event loop (the RTP pacer sends nothing meanwhile). So the pool is built once (``fill``, in a
worker thread, before serving) and never grows: a recognition that finds no decoder free waits for
one (``acquire``) and the wait is counted, so that an exhausted pool shows as latency and in
``stats``, never as a stall.

A pool that is garbage collected leaves its free decoders to ``on_gone``: the recogniser passes
them to an ``IdleDecoders`` store, where the next pool of the same configuration takes them
instead of building (a program, or a test suite, that makes recognisers one after another builds
each decoder once).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from voxflow.errors import ConfigError

__all__ = ["DecoderPool", "IdleDecoders", "PoolStats"]


@dataclass(frozen=True, slots=True)
class PoolStats:
    """``size``: decoders the pool holds when full; ``built``: decoders built so far; ``free``:
    idle now; ``waits``: recognitions that found none free and waited for one."""

    size: int
    built: int
    free: int
    waits: int


class DecoderPool:
    """At most ``size`` decoders made by ``build`` (a pocketsphinx ``Decoder``; opaque here).
    ``on_gone`` is called with the free decoders when the pool is garbage collected (it must not
    refer to the pool, or the pool is never collected)."""

    def __init__(
        self,
        build: Callable[[], Any],
        size: int,
        on_gone: Callable[[list[Any]], None] | None = None,
    ) -> None:
        if size < 1:
            raise ConfigError(f"the recogniser needs at least one decoder, not {size}")
        self.size = size
        self._build = build
        self._free: list[Any] = []
        self._built = 0
        self._waits = 0
        self._lock = threading.Lock()
        self._filling = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        if on_gone is not None:
            # the list, not the pool: at collection it holds exactly the decoders given back
            weakref.finalize(self, on_gone, self._free).atexit = False

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(self.size, self._built, len(self._free), self._waits)

    def fill(self, count: int | None = None) -> int:
        """Build decoders until ``count`` more exist or the pool is full (blocking: call it in a
        worker thread before serving). Returns how many were built."""
        made = 0
        with self._filling:  # concurrent fillers build one pool, not one each
            while count is None or made < count:
                with self._lock:
                    if self._built >= self.size:
                        break
                decoder = self._build()
                with self._lock:
                    self._built += 1
                made += 1
                self.give(decoder)
        return made

    def take(self) -> Any | None:
        """A free decoder, or None (never waits, never builds)."""
        with self._lock:
            return self._free.pop() if self._free else None

    def waiting(self) -> int:
        """Recognitions waiting for a decoder now."""
        with self._lock:
            return len(self._waiters)

    async def acquire(self) -> Any:
        """A free decoder, waiting (counted in ``stats().waits``) until one is given back."""
        counted = False
        while True:
            loop = asyncio.get_running_loop()
            with self._lock:
                if self._free:
                    return self._free.pop()
                if not counted:
                    self._waits += 1
                    counted = True
                entry = (loop, loop.create_future())
                self._waiters.append(entry)
            try:
                await entry[1]
            finally:
                with self._lock:
                    if entry in self._waiters:
                        self._waiters.remove(entry)
                    # woken but cancelled, or beaten to it: the next waiter may now be served
                    nxt = self._waiters.pop(0) if self._free and self._waiters else None
                _notify(nxt)

    def give(self, decoder: Any) -> None:
        """Return ``decoder`` and wake the longest waiter (any thread)."""
        with self._lock:
            self._free.append(decoder)
            waiter = self._waiters.pop(0) if self._waiters else None
        _notify(waiter)


class IdleDecoders:
    """Idle decoders of pools that are gone, by the configuration they were built with, for the
    next pool of that configuration: at most ``limit`` per configuration (the oldest beyond that
    are dropped, and freed). Safe from any thread and from a garbage collector's finalizer (no
    lock: deque and dict operations are atomic)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._idle: dict[Hashable, deque[Any]] = {}

    def keep(self, key: Hashable, decoders: Iterable[Any]) -> None:
        """Keep ``decoders`` (idle: no utterance in progress) for a pool of ``key``."""
        self._idle.setdefault(key, deque(maxlen=self.limit)).extend(decoders)

    def take(self, key: Hashable) -> Any | None:
        """An idle decoder of ``key``, or None."""
        kept = self._idle.get(key)
        try:
            return kept.pop() if kept is not None else None
        except IndexError:  # taken by another thread meanwhile
            return None

    def count(self, key: Hashable) -> int:
        """How many idle decoders of ``key`` are kept."""
        return len(self._idle.get(key, ()))

    def clear(self) -> None:
        """Drop every idle decoder (their memory is freed)."""
        self._idle.clear()


def _notify(waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None) -> None:
    if waiter is not None and not waiter[0].is_closed():
        waiter[0].call_soon_threadsafe(_wake, waiter[1])


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
