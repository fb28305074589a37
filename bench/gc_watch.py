"""The garbage collections of a bench load, each with where and when it ran.

``GcWatch`` (a ``gc.callbacks`` entry while installed) records every collection: its generation,
its duration, the thread it ran on, whether Python started it itself (automatic collection was
on: not a ``gc.collect()`` of the slack collector) and how many streams the pacer had when it
started. ``summary()`` is one line for the bench: collections per generation and the longest,
then Python's own collections split into those that ran while streams were live (each one
stalls every call's audio) and those that ran with none.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter
from dataclasses import dataclass

from voxflow.media.pacer import Pacer

__all__ = ["Collection", "GarbageCensus", "GcWatch", "tracked_by_type"]


@dataclass(frozen=True)
class Collection:
    """One collection: ``at`` (s since the watch started), generation, ms, thread name,
    ``automatic`` (Python started it), ``streams`` (the pacer's, when it started)."""

    at: float
    generation: int
    ms: float
    thread: str
    automatic: bool
    streams: int
    collected: int  # unreachable objects found (cyclic garbage)


class GcWatch:
    """Every collection while installed (module docstring); ``pacer``: whose streams count."""

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer
        self.collections: list[Collection] = []
        self._t0 = time.perf_counter()
        self._start = 0.0
        self._enabled = False
        self._streams = 0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":  # read before the collection: the state it was started in
            self._start, self._enabled, self._streams = now, gc.isenabled(), self.pacer.streams
            return
        self.collections.append(
            Collection(
                at=self._start - self._t0,
                generation=info["generation"],
                ms=(now - self._start) * 1000,
                thread=threading.current_thread().name,
                automatic=self._enabled,
                streams=self._streams,
                collected=info["collected"],
            )
        )

    def close(self) -> None:
        """Stop recording (idempotent)."""
        if self._on in gc.callbacks:
            gc.callbacks.remove(self._on)

    @property
    def longest(self) -> float:
        """The longest collection (ms)."""
        return max((c.ms for c in self.collections), default=0.0)

    def summary(self) -> str:
        """``gc: 120/12/0 collections, longest 9.1 ms; Python's own while streams were live: 0;
        with no stream: 3 (gen 0/0/1), longest 62.0 ms (gen 2, voxflow-pacer, at 0.4 s)``."""
        counts = [0, 0, 0]
        for c in self.collections:
            counts[c.generation] += 1
        found = [sum(c.collected for c in self.collections if c.generation == g) for g in range(3)]
        parts = [
            f"gc: {'/'.join(map(str, counts))} collections, longest {self.longest:.1f} ms, "
            f"cyclic garbage found {'/'.join(map(str, found))}"
        ]
        long = [c for c in self.collections if c.ms > 5]
        parts.append(
            f"over 5 ms: {len(long)} ("
            + ", ".join(f"gen {c.generation} {c.ms:.0f} ms at {c.at:.1f} s" for c in long[:12])
            + (", ..." if len(long) > 12 else "")
            + ")"
        )
        auto = [c for c in self.collections if c.automatic]
        for label, group in (
            ("while streams were live", [c for c in auto if c.streams]),
            ("with no stream", [c for c in auto if not c.streams]),
        ):
            parts.append(f"Python's own {label}: {_describe(group)}")
        return "; ".join(parts)


def _describe(group: list[Collection]) -> str:
    if not group:
        return "0"
    gens = [0, 0, 0]
    for c in group:
        gens[c.generation] += 1
    worst = max(group, key=lambda c: c.ms)
    threads = sorted({c.thread for c in group})
    return (
        f"{len(group)} (gen {'/'.join(map(str, gens))}, on {', '.join(threads)}), longest "
        f"{worst.ms:.1f} ms (gen {worst.generation}, {worst.thread}, {worst.streams} streams, "
        f"at {worst.at:.1f} s)"
    )


def tracked_by_type(top: int = 12) -> tuple[int, str]:
    """The objects the collector tracks now (not frozen ones): how many, and the ``top``
    types by count (``dict 41200, Future 3000, ...``)."""
    objs = gc.get_objects()
    by_type = Counter(type(o).__qualname__ for o in objs)
    del objs
    return sum(by_type.values()), ", ".join(f"{t} {k}" for t, k in by_type.most_common(top))


class GarbageCensus:
    """While entered, collected cyclic garbage is kept (``gc.DEBUG_SAVEALL``) instead of freed;
    on exit it is counted by type and then freed. For a census run only: the kept garbage
    makes every later collection longer."""

    def __init__(self) -> None:
        self.total = 0
        self.by_type: Counter[str] = Counter()

    def __enter__(self) -> GarbageCensus:
        gc.collect()
        gc.garbage.clear()
        gc.set_debug(gc.DEBUG_SAVEALL)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.collect()
        gc.set_debug(0)
        self.by_type = Counter(type(o).__qualname__ for o in gc.garbage)
        self.total = len(gc.garbage)
        gc.garbage.clear()

    def line(self, calls: int, top: int = 14) -> str:
        """``cyclic garbage: 12000 objects (24.0 per call): Future 500, ...``."""
        per = self.total / calls if calls else 0.0
        common = ", ".join(f"{t} {k}" for t, k in self.by_type.most_common(top))
        return f"cyclic garbage: {self.total} objects ({per:.1f} per call): {common}"
