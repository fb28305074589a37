"""Garbage collection in the pacer's slack: collections run right after a tick's sends, never
across the next tick.

Python's collector runs whenever enough objects were allocated, wherever that happens: in the
middle of a loop iteration a few hundred microseconds before a tick is due, or, with the
:class:`~voxflow.media.pacer_thread.ThreadPacer`, while its thread waits for the GIL. A
collection holds the GIL, so neither pacer sends meanwhile (docs/media-performance.md, "The
send-interval tail of whole calls"). :class:`SlackCollector` takes the collector's timing over
while the pacer runs:

* automatic collection is off (``gc.disable()``) from before a pacer's first stream is registered
  until it has none left; it is then handed back on the event loop's thread (``release``: what is
  due is collected there first), never on the pacer's, so no collection Python starts itself can
  run while a stream is live or on the pacer's thread;
* after every tick, on the event loop's thread (finalizers run where asyncio expects them),
  ``run(until)`` looks at ``gc.get_count()`` and picks the generation Python itself would collect
  now (the oldest whose count is over its threshold; the thresholds are Python's, read when the
  collector is made); it collects it only if that generation's recent cost (the longest of its
  last collections, forgotten slowly) ends before ``until`` (the next tick's stamping);
  otherwise a younger generation that fits, otherwise nothing this tick. A full collection's
  cost is unknown until one has run (it grows with everything alive since ``gc.freeze()``:
  85-195 ms at 500 calls), so the first one waits for ``max_defer``; with ``defer_decay`` < 1,
  each tick on which the due generation does not fit lowers its estimate by that factor (an
  estimate that one long collection raised is tried again sooner; off by default: at 500
  calls, retrying young generations within 1-2 s ran 40-60 ms collections and doubled the send
  error p99, docs/media-performance.md);
* a generation left pending for ``max_defer[g]`` seconds (60 s each by default) is collected
  anyway at the next tick's end (garbage never piles up without bound: a collection of a large
  heap can be longer than a tick, and is then run right after a tick's sends, the best place
  for it). For generations 1 and 2 that wait doubles, up to ``longest_defer`` (30 min), each
  time one of their collections found fewer than ``little_garbage`` (1,000) unreachable
  objects, and is ``max_defer`` again after one that found more: when calls leave no cyclic
  garbage (their objects freed by reference counting, docs/media-performance.md, "Per-call
  garbage"), the full collection that stalls every call's audio (~100-200 ms at 500 calls)
  comes ever more rarely; when garbage piles up, every ``max_defer`` again.

``stats`` counts the collections run, skipped for lack of slack and forced, and the garbage
they found.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["SlackCollector", "SlackStats"]

_COST_DECAY = 0.95  # a generation's cost estimate: its longest recent collection, forgotten slowly


@dataclass
class SlackStats:
    """What a :class:`SlackCollector` did: collections per generation, ticks on which a due
    generation did not fit the slack, collections forced by ``max_defer``, the longest (s),
    those run at once though longer than any slack (``SizedCollector``), and
    the cyclic garbage those collections found, per generation."""

    collections: list[int]
    deferred: int = 0
    forced: int = 0
    longest: float = 0.0
    oversized: int = 0  # young collections run though longer than any slack (gc_sized)
    found: list[int] = field(default_factory=lambda: [0, 0, 0])  # unreachable objects found


class SlackCollector:
    """Runs the garbage collector between a tick's sends and the next tick (module docstring).
    ``collect``, ``count``, ``clock``, ``enable``, ``disable``: stand-ins for tests."""

    def __init__(
        self,
        thresholds: tuple[int, int, int] | None = None,
        *,
        max_defer: tuple[float, float, float] = (60.0, 60.0, 60.0),
        defer_decay: float = 1.0,
        longest_defer: float = 1800.0,
        little_garbage: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        collect: Callable[[int], int] = gc.collect,
        count: Callable[[], tuple[int, int, int]] = gc.get_count,
        enable: Callable[[], None] = gc.enable,
        disable: Callable[[], None] = gc.disable,
    ) -> None:
        t = thresholds or gc.get_threshold()
        self.thresholds = (max(1, t[0]), max(1, t[1]), max(1, t[2]))
        self.max_defer = max_defer
        self.defer_decay = defer_decay
        self.longest_defer = longest_defer
        self.little_garbage = little_garbage
        # how long a due generation may wait now: max_defer, doubled for generations 1 and 2
        # each time one of their collections finds little garbage (up to longest_defer)
        self.defer = list(max_defer)
        # recent longest collection per generation (s); a full one's is unknown until one ran
        self.cost = [0.0, 0.0, math.inf]
        self._clock, self._collect, self._count = clock, collect, count
        self._enable, self._disable = enable, disable
        self._pending_since: list[float | None] = [None, None, None]
        self._active = False
        self._was_enabled = False
        self.stats = SlackStats([0, 0, 0])

    @property
    def is_active(self) -> bool:
        """Whether automatic collection is off and ``run`` decides."""
        return self._active

    def active(self, on: bool) -> None:
        """Take the collector's timing over (a pacer has streams) or hand it back to Python."""
        if on and not self._active:
            self._was_enabled = gc.isenabled()
            self._disable()
        elif not on and self._active:
            self._pending_since = [None, None, None]  # Python's to collect from now on
            if self._was_enabled:
                self._enable()
        self._active = on

    def release(self) -> int:
        """Hand the collector's timing back to Python (no stream is live): first collect the
        generation Python would collect now, here, so that the collection owed since ``active``
        does not start on whichever thread allocates next (the pacer's, as it ends); return that
        generation, or -1."""
        if not self._active:
            return -1
        gen = self.due()
        if gen >= 0:
            self._learn(gen, self._collect(gen))
            self.stats.collections[gen] += 1
        self.active(False)
        return gen

    def wants_run(self) -> bool:
        """Whether ``run`` may collect something now (cheap: for the pacer's thread to ask
        before it hands ``run`` to the loop)."""
        if not self._active:
            return False
        return self._count()[0] > self.thresholds[0] or any(
            t is not None for t in self._pending_since
        )

    def due(self) -> int:
        """The generation Python would collect now (-1: none): the oldest whose count is over
        its threshold, once generation 0's is."""
        counts, limits = self._count(), self.thresholds
        if counts[0] <= limits[0]:
            return -1
        return max(g for g in range(3) if g == 0 or counts[g] > limits[g])

    def run(self, until: float) -> int:
        """Collect what is due if it ends before ``until`` (``clock`` time), or what has waited
        ``max_defer``; return the generation collected, or -1. Called after a tick's sends, on
        the loop's thread."""
        if not self._active:
            return -1
        now = self._clock()
        counts, limits, since = self._count(), self.thresholds, self._pending_since
        for g in range(3):
            if since[g] is None and counts[g] > limits[g]:
                since[g] = now
        forced = [g for g, t in enumerate(since) if t is not None and now - t >= self.defer[g]]
        if forced:
            gen = max(forced)
            self.stats.forced += 1
        else:
            wanted = self.due()
            if wanted < 0:
                return -1
            fits = [g for g in range(wanted + 1) if now + self.predict(g, counts) < until]
            if max(fits, default=-1) < wanted:
                anyway = self._never_fits(wanted, counts, until - now)
                if anyway > max(fits, default=-1):  # waiting only makes it longer
                    fits, wanted = [anyway], anyway
            if not fits or max(fits) < wanted:
                self.stats.deferred += 1
                self.cost[wanted] *= self.defer_decay
            if not fits:
                return -1
            gen = max(fits)
        found = self._collect(gen)
        self._learn(gen, found)
        took = self._clock() - now
        self._observe(gen, took, found, counts)
        self.stats.collections[gen] += 1
        self.stats.longest = max(self.stats.longest, took)
        for g in range(gen + 1):
            since[g] = None
        return gen

    def predict(self, gen: int, counts: tuple[int, int, int]) -> float:
        """How long a collection of ``gen`` would take now (s): its longest recent one.
        ``counts``: ``gc.get_count()`` now (a subclass may size the collection by it)."""
        return self.cost[gen]

    def _never_fits(self, gen: int, counts: tuple[int, int, int], slack: float) -> int:
        """A generation up to ``gen`` (due, not fitting ``slack`` s) to collect now anyway,
        or -1 (here always: it waits for a tick with more slack, or for ``max_defer``)."""
        return -1

    def _observe(self, gen: int, took: float, found: int, counts: tuple[int, int, int]) -> None:
        """A collection of ``gen`` took ``took`` s, found ``found`` objects; ``counts`` were
        the counts before it."""
        known = self.cost[gen] if math.isfinite(self.cost[gen]) else 0.0
        self.cost[gen] = max(took, _COST_DECAY * known)

    def _learn(self, gen: int, found: int) -> None:
        """A collection of ``gen`` found ``found`` unreachable objects: an older generation that
        holds little garbage (calls whose objects are freed by reference counting) may wait
        twice as long next time; one that held more waits ``max_defer`` again."""
        self.stats.found[gen] += found
        for g in range(1, gen + 1):
            if found < self.little_garbage:
                self.defer[g] = min(2 * self.defer[g], max(self.longest_defer, self.max_defer[g]))
            else:
                self.defer[g] = self.max_defer[g]
