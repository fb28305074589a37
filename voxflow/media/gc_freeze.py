"""Collections in the pacer's slack that never traverse the calls' live objects: what survived is
frozen instead (``[media] gc = "freeze"``).

With :class:`~voxflow.media.gc_slack.SlackCollector` a generation-1 collection at 500 calls
re-traverses every object the calls made since the last one (7-22 ms while calls are being set
up: longer than a tick's slack), and a full one every live object (85-195 ms). A call's objects
are freed by reference counting when it ends (no reference cycles: docs/media-performance.md,
"Per-call garbage"), so those traversals find nothing. :class:`FreezingCollector` keeps the
slack collector's rules for generation 0 (collected after a tick's sends when it fits: the young
cycles that do occur, an exception dropped with its traceback, are found there), and where the
slack collector would collect an older generation, or a generation 0 that does not fit, it calls
``gc.freeze()`` instead: every tracked object moves to the permanent generation in O(1), the
counts start again from 0, and later collections traverse only what was made after. Frozen
objects are still freed by reference counting as soon as nothing refers to them.

The safety net, for cyclic garbage that was frozen: ``defer[2]`` seconds (``max_defer[2]``, 60 s,
at first) after the first freeze, right after a tick's sends, ``gc.unfreeze()``, a full
collection and ``gc.freeze()`` again (one stall of a full collection's length); its wait doubles,
up to ``longest_defer``, while those collections find fewer than ``little_garbage`` objects, and
is ``max_defer[2]`` again after one that found more. ``release`` (no stream left) does the same
if anything was frozen since the last one, then hands collection back to Python. What was frozen
before the collector started (``gc.freeze()`` after start-up) is thawed and frozen again with it.

:class:`SizedFreezingCollector` (``[media] gc = "sized-freeze"``) sizes the young collections by
the objects they will traverse (:mod:`voxflow.media.gc_sized`) and collects the generation Python
would (0, or 1, due early as the sized collector makes it) when it fits the slack; where the
sized collector would run a young generation longer than any slack at once (a tick stamped late:
while 500 calls are set up the young generation outgrows every slack) or defer one, and where a
full collection is due, it freezes instead; the safety net is the freezing collector's. After a
freeze, generations 1 and 2 hold only what came since (counted here): a full collection that
comes due then is sized too, and runs when it fits like a young one.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from typing import Any

from voxflow.media.gc_sized import _SLACK_DECAY, SizedCollector
from voxflow.media.gc_slack import SlackCollector

__all__ = ["FreezingCollector", "SizedFreezingCollector"]


class FreezingCollector(SlackCollector):
    """A :class:`SlackCollector` that freezes instead of collecting generations 1-2 (module
    docstring). ``freeze``/``unfreeze``: stand-ins for tests; the rest as the slack collector's."""

    def __init__(
        self,
        *args: Any,
        freeze: Callable[[], None] = gc.freeze,
        unfreeze: Callable[[], None] = gc.unfreeze,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self._freeze, self._unfreeze = freeze, unfreeze
        self.frozen_at: float | None = None  # the first freeze since the last full collection
        self.freezes = 0

    def run(self, until: float) -> int:
        """After a tick's sends: the safety net's full collection if its time has come (2),
        else generation 0 if it is due and fits (0), else a freeze if anything is due (-1)."""
        if not self._active:
            return -1
        now = self._clock()
        if self.frozen_at is not None and now - self.frozen_at >= self.defer[2]:
            self.stats.forced += 1
            return self._full(now)
        wanted = self.due()
        if wanted < 0:
            return -1
        if wanted == 0:
            if now + self.cost[0] < until:
                return self._young(now)
            self.stats.deferred += 1
        self._freeze()
        self.freezes += 1
        if self.frozen_at is None:
            self.frozen_at = now
        return -1

    def release(self) -> int:
        """No stream left: the safety net's full collection if anything was frozen since the
        last one, then collection is Python's again."""
        if self._active and self.frozen_at is not None:
            self._full(self._clock())
            self.active(False)
            return 2
        return super().release()

    def _young(self, now: float) -> int:
        self._learn(0, self._collect(0))
        took = self._clock() - now
        self.cost[0] = max(took, 0.95 * self.cost[0])
        self.stats.collections[0] += 1
        self.stats.longest = max(self.stats.longest, took)
        return 0

    def _full(self, now: float) -> int:
        self._unfreeze()
        try:
            found = self._collect(2)
        finally:
            self._freeze()
        took = self._clock() - now
        self._learn(2, found)
        self.stats.collections[2] += 1
        self.stats.longest = max(self.stats.longest, took)
        self.frozen_at = None
        return 2


class SizedFreezingCollector(FreezingCollector, SizedCollector):
    """Young collections sized as :class:`~voxflow.media.gc_sized.SizedCollector`'s, a freeze
    where one does not fit (module docstring); ``freeze``/``unfreeze``: stand-ins for tests."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._counted = False  # generation 2 holds only what was counted since a freeze

    def active(self, on: bool) -> None:
        """As the sized collector's; what generation 2 holds is unknown until a freeze."""
        if on and not self._active:
            self._counted = False
        super().active(on)

    def predict(self, gen: int, counts: tuple[int, int, int]) -> float:
        """Generations 0-1 as the sized collector's; generation 2, after a freeze, by the
        objects counted into generations 1 and 2 since (unknown before one: never fits)."""
        if gen < 2:
            return SizedCollector.predict(self, gen, counts)
        if not self._counted:
            return math.inf
        n = counts[0] + self.older[1] + self.older[2]
        return self.overhead + self.margin * n * self.rate(n)

    def run(self, until: float) -> int:
        """After a tick's sends: the safety net's full collection if its time has come (2), else
        the generation Python would collect if its predicted cost fits before ``until``, else a
        freeze if anything is due (-1)."""
        if not self._active:
            return -1
        now = self._clock()
        self.best_slack = max(until - now, _SLACK_DECAY * self.best_slack)
        if self.frozen_at is not None and now - self.frozen_at >= self.defer[2]:
            self.stats.forced += 1
            gen = self._full(now)
            self.older, self._counted = [0, 0, 0], True
            return gen
        wanted = self.due()
        if wanted < 0:
            return -1
        counts = self._count()
        if now + self.predict(wanted, counts) < until:
            return self._sized(wanted, now, counts)
        self.stats.deferred += 1  # (frozen, not collected: it did not fit)
        self._freeze()
        self.freezes += 1
        self.older, self._counted = [0, 0, 0], True  # generations 1 and 2 are empty now
        if self.frozen_at is None:
            self.frozen_at = now
        return -1

    def _sized(self, gen: int, now: float, counts: tuple[int, int, int]) -> int:
        """Collect ``gen`` (predicted to fit). A generation-2 collection after a freeze traverses
        only what came since: it neither teaches a full collection's cost nor moves the safety
        net (``_learn``), which is for the full collections that also thaw what was frozen."""
        found = self._collect(gen)
        if gen < 2:
            self._learn(gen, found)
        else:
            self.stats.found[2] += found
        took = self._clock() - now
        self._observe(gen, took, found, counts)
        self.stats.collections[gen] += 1
        self.stats.longest = max(self.stats.longest, took)
        return gen
