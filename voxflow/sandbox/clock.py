"""Clocks for the sandbox: real time, or virtual time for fast deterministic tests.

The PBX core never awaits: it schedules callbacks with :meth:`Clock.call_later`. A
:class:`RealClock` maps that onto the event loop; a :class:`VirtualClock` keeps its own
timer heap and jumps straight to the next deadline (automatically when the loop has
nothing else to do, or by hand with :meth:`VirtualClock.advance`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "RealClock", "Timer", "VirtualClock", "ari_timestamp"]


def ari_timestamp(when: datetime) -> str:
    """Format a datetime like Asterisk: ``2026-11-24T06:48:49.689+0000``."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


class Timer(Protocol):
    """A scheduled callback that can be cancelled."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """What the sandbox needs from time."""

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wall(self) -> datetime:
        """Wall-clock time for event timestamps."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` after ``delay`` seconds."""
        ...

    async def sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds of this clock's time."""
        ...

    def start(self) -> None:
        """Bind to the running loop (called by ``Sandbox.start``)."""
        ...

    async def stop(self) -> None:
        """Release anything started by :meth:`start`."""
        ...


class RealClock:
    """The event loop's monotonic clock."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def now(self) -> float:
        return self._get_loop().time()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self._get_loop().call_later(max(0.0, delay), callback)

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` at monotonic time ``when`` (absolute schedule, no drift)."""
        return self._get_loop().call_at(when, callback)

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(max(0.0, delay))

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        return None


class _VTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """Virtual time. With ``auto=True`` (default) time jumps to the next deadline whenever
    the event loop has had a few turns with nothing due, so a 60 s call runs in milliseconds
    and timers always fire in deadline order. With ``auto=False`` only :meth:`advance`
    moves time."""

    def __init__(self, *, auto: bool = True, start: float = 0.0, idle_turns: int = 8) -> None:
        self._now = start
        self._auto = auto
        self._idle_turns = idle_turns
        self._heap: list[tuple[float, int, _VTimer]] = []
        self._seq = itertools.count()
        self._epoch = datetime.now(UTC)
        self._task: asyncio.Task[None] | None = None
        self._kick: asyncio.Event | None = None  # created in start(), inside the loop

    def now(self) -> float:
        return self._now

    def wall(self) -> datetime:
        return self._epoch + timedelta(seconds=self._now)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.call_at(self._now + max(0.0, delay), callback)

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` at virtual time ``when``."""
        timer = _VTimer(max(when, self._now), callback)
        heapq.heappush(self._heap, (timer.when, next(self._seq), timer))
        if self._kick is not None:
            self._kick.set()
        return timer

    async def sleep(self, delay: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        timer = self.call_later(delay, wake)
        try:
            await fut
        finally:
            timer.cancel()

    def _run_due(self) -> int:
        ran = 0
        while self._heap and self._heap[0][0] <= self._now:
            _, _, timer = heapq.heappop(self._heap)
            if not timer.cancelled:
                ran += 1
                timer.callback()
        return ran

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing timers in order and yielding between them."""
        target = self._now + seconds
        while self._heap and self._heap[0][0] <= target:
            self._now = max(self._now, self._heap[0][0])
            self._run_due()
            await asyncio.sleep(0)
        self._now = target

    def pending(self) -> int:
        """Number of live timers."""
        return sum(1 for _, _, t in self._heap if not t.cancelled)

    async def _drive(self) -> None:
        assert self._kick is not None
        while True:
            for _ in range(self._idle_turns):
                await asyncio.sleep(0)
            while self._heap and self._heap[0][2].cancelled:
                heapq.heappop(self._heap)
            if not self._heap:
                self._kick.clear()
                await self._kick.wait()
                continue
            # Let real I/O (sockets) make progress before jumping ahead.
            await asyncio.sleep(0.0005)
            if self._heap:
                self._now = max(self._now, self._heap[0][0])
                self._run_due()

    def start(self) -> None:
        self._kick = asyncio.Event()
        if self._auto and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drive())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
