"""Where the event loop's time goes between a caller's key and the interpreter's ``say()``.

``LoopTrace`` wraps ``asyncio.events.Handle._run`` (every callback the loop runs: task steps,
``call_soon``/timer callbacks, socket readers) and notes when each started and ended on the loop
thread. ``line(windows)`` takes the key -> ``say`` stretches of a load (``PromptClock``) and
splits each into the callbacks that ran in it, by name (a task step by its coroutine's name, a
callback by its function's), and the rest: the loop outside any callback (``select``, waiting for
the GIL while the pacer's thread holds it). Printed: the mean ms per key of each, over all keys
and over the slowest 1 %, and how many callbacks ran in a window. Diagnostic only (``--loop-trace``:
~1 us a callback, and every callback is kept until the end of the load).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["LoopTrace"]


def _name(callback: object) -> str:
    """A task step by its coroutine, anything else by its function's qualified name."""
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        code = getattr(coro, "cr_code", None)
        return f"task {getattr(code, 'co_qualname', type(coro).__name__)}"
    fn = getattr(callback, "__func__", callback)
    fn = getattr(fn, "__wrapped__", fn)  # a bench meter's wrapper: what it wraps
    return str(getattr(fn, "__qualname__", type(fn).__name__))


class LoopTrace:
    """Every callback the loop runs while installed: (start, end, callback)."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, object]] = []
        self._orig: Callable[[asyncio.Handle], None] = asyncio.events.Handle._run
        rows, orig, clock = self.rows, self._orig, time.monotonic

        def run(handle: asyncio.Handle) -> None:
            t0 = clock()
            orig(handle)
            rows.append((t0, clock(), handle._callback))  # type: ignore[attr-defined]  # CPython's

        asyncio.events.Handle._run = run  # type: ignore[method-assign,assignment]  # bench

    def close(self) -> None:
        asyncio.events.Handle._run = self._orig  # type: ignore[method-assign,assignment]  # restore

    def split(self, start: float, end: float, into: defaultdict[str, float]) -> int:
        """Add the time of ``[start, end]`` to ``into`` by callback name (the rest as "outside
        callbacks"); return how many callbacks ran in it."""
        starts = self._starts
        i = max(int(np.searchsorted(starts, start)) - 1, 0)
        inside, count = 0.0, 0
        while i < len(self.rows) and self.rows[i][0] < end:
            t0, t1, cb = self.rows[i]
            overlap = min(t1, end) - max(t0, start)
            if overlap > 0:
                into[_name(cb)] += overlap
                inside += overlap
                count += 1
            i += 1
        into["(outside callbacks: select, the GIL held by the pacer)"] += (end - start) - inside
        return count

    def line(self, windows: list[tuple[float, float]]) -> str:
        """Key -> say split by callback: mean ms per key over all keys and the slowest 1 %."""
        if not windows or not self.rows:
            return "loop trace: nothing traced"
        self.rows.sort(key=lambda r: r[0])
        self._starts: Any = np.array([r[0] for r in self.rows])
        spans = np.array([e - s for s, e in windows])
        slow_cut = np.percentile(spans, 99)
        every: defaultdict[str, float] = defaultdict(float)
        slow: defaultdict[str, float] = defaultdict(float)
        counts, slow_n = [], 0
        for (s, e), span in zip(windows, spans, strict=True):
            counts.append(self.split(s, e, every))
            if span >= slow_cut:
                self.split(s, e, slow)
                slow_n += 1

        def top(c: defaultdict[str, float], n: int) -> str:
            most = sorted(c.items(), key=lambda kv: -kv[1])[:8]
            return ", ".join(f"{k} {1000 * v / n:.2f}" for k, v in most)

        total: defaultdict[str, float] = defaultdict(float)
        calls: defaultdict[str, int] = defaultdict(int)
        for t0, t1, cb in self.rows:
            name = _name(cb)
            total[name] += t1 - t0
            calls[name] += 1
        whole = sorted(total.items(), key=lambda kv: -kv[1])[:8]
        each = ", ".join(
            f"{k} {v:.2f} s / {calls[k]} = {1e6 * v / calls[k]:.0f} us" for k, v in whole
        )
        return (
            f"loop trace, the whole load: {each}\n"
            f"loop trace, key -> say: {len(windows)} keys, callbacks in a window p50/p99 "
            f"{np.percentile(counts, 50):.0f}/{np.percentile(counts, 99):.0f}; ms per key, all: "
            f"{top(every, len(windows))}; slowest 1% ({slow_n}): {top(slow, slow_n)}"
        )
