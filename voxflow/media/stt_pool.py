"""A bounded pool of pocketsphinx decoders, all built before calls are served.

Building a decoder holds the GIL ~0.5 s of CPU and costs ~92-96 MB: built during a call it stalls
the event loop (the RTP pacer sends nothing meanwhile). So the pool is built once (``fill``, in a
worker thread, before serving) and never grows: a recognition that finds no decoder free waits for
one (``acquire``) and the wait is counted, so that an exhausted pool shows as latency and in
``stats``, never as a stall.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from voxflow.errors import ConfigError

__all__ = [
    "DecoderPool",
    "PoolStats",
    "end_utterances",
    "in_thread_to_the_end",
    "start_utterance",
]

_T = TypeVar("_T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PoolStats:
    """``size``: decoders the pool holds when full; ``built``: decoders built so far; ``free``:
    idle now; ``waits``: recognitions that found none free and waited for one."""

    size: int
    built: int
    free: int
    waits: int


class DecoderPool:
    """At most ``size`` decoders made by ``build`` (a pocketsphinx ``Decoder``; opaque here)."""

    def __init__(self, build: Callable[[], Any], size: int) -> None:
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

    def give_all(self, decoders: tuple[Any, ...], ended: bool) -> None:
        """Return ``decoders`` (None: skipped), their utterances ended first unless ``ended``
        (a decoder given back mid-utterance cannot change its search: KeyError for the next)."""
        if not ended:
            end_utterances(*decoders)
        for decoder in decoders:
            if decoder is not None:
                self.give(decoder)

    def give(self, decoder: Any) -> None:
        """Return ``decoder`` and wake the longest waiter (any thread)."""
        with self._lock:
            self._free.append(decoder)
            waiter = self._waiters.pop(0) if self._waiters else None
        _notify(waiter)


def _notify(waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None) -> None:
    if waiter is not None and not waiter[0].is_closed():
        waiter[0].call_soon_threadsafe(_wake, waiter[1])


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def in_thread_to_the_end(fn: Callable[..., _T], *args: object) -> _T:
    """``fn(*args)`` in a worker thread, awaited to its end even when the awaiting task is
    cancelled (the cancellation is raised once the thread is done). The thread works on pooled
    decoders: a cancelled recognition that gave them back while its thread still decoded into
    them handed its audio to the next recognition that took them (a caller heard as another:
    bench/calls.py under load, docs/speech.md "Decoder pool")."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True  # the thread still runs: wait for it, then give up
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result


def start_utterance(decoder: Any) -> None:
    """Start an utterance from the same state whatever the decoder decoded before (features,
    noise statistics and CMN from the prior), so that a result does not depend on the pool."""
    decoder.reinit_feat()  # (0.1 ms) set_cmn alone leaves state behind: results drifted
    decoder.start_utt()


def end_utterances(*decoders: Any) -> None:
    """End each decoder's utterance (None: skipped; one never started: nothing to end)."""
    for decoder in decoders:
        try:
            if decoder is not None:
                decoder.end_utt()
        except Exception:  # the utterance may never have started
            log.debug("end_utt on an idle decoder", exc_info=True)
