"""Where a worker's CPU goes: signalling, media, TTS, STT (``bench/calls.py``'s split).

The worker runs one asyncio loop thread; pocketsphinx decodes in worker threads; espeak-ng runs as
child processes. :class:`CpuSplit` measures, over one ``with`` block:

* **the loop thread**, split by timing code paths with the thread's own CPU clock
  (``time.thread_time``, CLOCK_THREAD_CPUTIME_ID: time spent waiting for the GIL or sleeping is
  not counted). Each metered path is charged only for the CPU of its own synchronous stretches:
  a coroutine is metered step by step (every ``send`` into it, from one suspension to the next),
  so time other tasks run while it awaits is never its. Nested metered stretches are exclusive
  (the inner one's CPU is taken out of the outer one's).

  - media: the RTP receive path (``RtpSocket._readable``: read, parse, jitter buffer, VAD,
    watchers), the quiet-line timer (``CallMedia._on_quiet``) and the shared pacer's task
    (``Pacer._run``: stamping, the spin to the deadline, sending; with ``ThreadPacer``, the
    default, its thread's ticks are metered there and counted as media too). The first two
    run per packet or per call every 100 ms, and a reading of the thread's CPU clock costs
    ~2 us (a syscall: a third of the receive path), so they are *sampled*: one call in
    ``SAMPLE_EVERY``, chosen at random, is metered and counted that many times; the others
    run bare (their CPU is in the loop thread's total, and the estimate moves it from
    signalling to media);
  - TTS: producing a prompt's audio (``CallMedia._prompt_frames``: the prompt cache, and on a
    miss reading espeak-ng's pipe, resampling, G.711 encoding);
  - STT (in the loop): a recognition (``CallMedia.recognize``: resampling the caller's speech and
    feeding the recogniser);
  - signalling: the rest of the loop thread (ARI websocket events and REST, the interpreter or
    the handler, timers, call set-up and tear-down);

* **other threads** of the process (``process_time`` minus the loop thread's ``thread_time``
  and the pacer thread's): pocketsphinx's decoding (``asyncio.to_thread``), counted as STT;
* **child processes**: espeak-ng (``RUSAGE_CHILDREN`` growth up to the moment the scripted
  callers' process, a child too, has closed its output but is not yet waited for:
  :attr:`CpuSplit.children_end`), counted as TTS.
"""

from __future__ import annotations

import random
import resource
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from types import TracebackType
from typing import Any

from voxflow.media.callmedia import CallMedia
from voxflow.media.pacer import Pacer
from voxflow.media.pacer_thread import ThreadPacer
from voxflow.media.transport import RtpSocket

__all__ = ["PARTS", "SAMPLE_EVERY", "CpuMeter", "CpuSplit", "children_cpu"]

PARTS = ("signalling", "media", "tts", "stt")
SAMPLE_EVERY = 16  # the receive path: one call in this many is metered


class CpuMeter:
    """Exclusive CPU time (loop thread) per part, charged by the metered code paths."""

    def __init__(self) -> None:
        self.spent = dict.fromkeys(PARTS, 0.0)
        self._stack: list[list[Any]] = []  # [part, started, weight] of the stretches, inner last

    def enter(self, part: str, weight: int = 1) -> None:
        now = time.thread_time()
        if self._stack:
            top = self._stack[-1]
            self.spent[top[0]] += (now - top[1]) * top[2]
        self._stack.append([part, now, weight])

    def leave(self) -> None:
        now = time.thread_time()
        part, started, weight = self._stack.pop()
        self.spent[part] += (now - started) * weight
        if self._stack:
            self._stack[-1][1] = now

    def sync(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` charged to ``part``."""
        meter = self

        def metered(*args: Any, **kw: Any) -> Any:
            meter.enter(part)
            try:
                return fn(*args, **kw)
            finally:
                meter.leave()

        return metered

    def sampled(self, part: str, fn: Callable[..., Any], every: int) -> Callable[..., Any]:
        """``fn`` charged to ``part`` by sampling: a call made outside any metered stretch is
        metered with probability ``1 / every`` and charged ``every`` times its CPU (expected
        value: the CPU of all the calls); one nested in a metered stretch is always metered."""
        meter, rand, stack = self, random.random, self._stack
        p = 1.0 / every

        def metered(*args: Any, **kw: Any) -> Any:
            if stack:
                meter.enter(part)
            elif rand() < p:
                meter.enter(part, weight=every)
            else:
                return fn(*args, **kw)
            try:
                return fn(*args, **kw)
            finally:
                meter.leave()

        metered.__wrapped__ = fn  # type: ignore[attr-defined]  # (loop_trace.py names it by fn)
        return metered

    def steps(self, part: str, awaitable: Awaitable[Any]) -> Generator[Any, Any, Any]:
        """Await ``awaitable`` charging each of its synchronous steps to ``part``."""
        it = awaitable.__await__()
        value: Any = None
        error: BaseException | None = None
        while True:
            self.enter(part)
            try:
                yielded = it.send(value) if error is None else it.throw(error)
            except StopIteration as done:
                return done.value
            finally:
                self.leave()
            try:
                value, error = (yield yielded), None
            except GeneratorExit:  # the awaiting task is being closed: close the coroutine too
                close = getattr(it, "close", None)
                if close is not None:
                    close()
                raise
            except BaseException as exc:  # cancellation and the like: handed to the coroutine
                value, error = None, exc

    def coroutine(self, part: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        """``async def`` ``fn`` charged to ``part`` step by step (still a coroutine function)."""
        meter = self

        async def metered(*args: Any, **kw: Any) -> Any:
            return await _Steps(meter, part, fn(*args, **kw))

        return metered

    def iterator(self, part: str, fn: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
        """``fn`` returning an async iterator, each item's production charged to ``part``;
        ``fn`` itself is called at once and charged too (it may queue a cached prompt)."""
        meter = self

        def metered(*args: Any, **kw: Any) -> AsyncIterator[Any]:
            meter.enter(part)
            try:
                it = fn(*args, **kw).__aiter__()
            finally:
                meter.leave()
            return _items(meter, part, it)

        return metered


async def _items(meter: CpuMeter, part: str, it: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """``it``'s items, each one's production charged to ``part``."""
    try:
        while True:
            try:
                item = await _Steps(meter, part, it.__anext__())
            except StopAsyncIteration:
                return
            yield item
    finally:
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            await _Steps(meter, part, aclose())


class _Steps:
    def __init__(self, meter: CpuMeter, part: str, awaitable: Awaitable[Any]) -> None:
        self.meter, self.part, self.awaitable = meter, part, awaitable

    def __await__(self) -> Generator[Any, Any, Any]:
        return self.meter.steps(self.part, self.awaitable)


class CpuSplit:
    """Install the meters once (:meth:`install`); each ``with`` block measures one load."""

    def __init__(self) -> None:
        self.meter = CpuMeter()
        self._saved: list[tuple[type, str, Any]] = []
        self.seconds = dict.fromkeys(PARTS, 0.0)
        self.children_end: float | None = None  # children_cpu() before the callers were reaped
        self.pacer_thread = 0.0  # CPU of ThreadPacer's thread so far (its ticks, metered)

    def install(self) -> None:
        m = self.meter
        wraps: tuple[tuple[type, str, Callable[[Any], Any]], ...] = (
            (RtpSocket, "_readable", lambda f: m.sampled("media", f, SAMPLE_EVERY)),
            (CallMedia, "_on_quiet", lambda f: m.sampled("media", f, SAMPLE_EVERY)),
            (Pacer, "_run", lambda f: m.coroutine("media", f)),
            (CallMedia, "_prompt_frames", lambda f: m.iterator("tts", f)),
            (CallMedia, "recognize", lambda f: m.coroutine("stt", f)),
        )
        for cls, name, wrap in wraps:
            orig = getattr(cls, name)
            self._saved.append((cls, name, orig))
            setattr(cls, name, wrap(orig))
        tick = ThreadPacer._tick_once
        self._saved.append((ThreadPacer, "_tick_once", tick))
        split = self

        def metered_tick(pacer: ThreadPacer) -> bool:
            started = time.thread_time()
            try:
                return tick(pacer)
            finally:
                split.pacer_thread += time.thread_time() - started

        ThreadPacer._tick_once = metered_tick  # type: ignore[method-assign,assignment]  # metered

    def uninstall(self) -> None:
        for cls, name, orig in reversed(self._saved):
            setattr(cls, name, orig)
        self._saved.clear()

    def __enter__(self) -> CpuSplit:
        self._loop0 = time.thread_time()
        self._proc0 = time.process_time()
        self._kids0 = children_cpu()
        self._spent0 = dict(self.meter.spent)
        self._pacer0 = self.pacer_thread
        self.children_end = None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        loop = time.thread_time() - self._loop0
        pacer = self.pacer_thread - self._pacer0
        threads = max(0.0, time.process_time() - self._proc0 - loop - pacer)
        end = children_cpu() if self.children_end is None else self.children_end
        kids = max(0.0, end - self._kids0)
        part = {p: self.meter.spent[p] - self._spent0[p] for p in PARTS}
        self.seconds = {
            "signalling": max(0.0, loop - part["media"] - part["tts"] - part["stt"]),
            "media": part["media"] + pacer,
            "tts": part["tts"] + kids,
            "stt": part["stt"] + threads,
        }


def children_cpu() -> float:
    """CPU seconds of this process's children that have ended and been waited for."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime
