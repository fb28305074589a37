"""Collections in the pacer's slack, sized by what they will traverse.

:class:`~voxflow.media.gc_slack.SlackCollector` predicts a young collection's cost by its longest
recent one. At 500 calls that is wrong just when it matters: while calls are set up, the young
generations grow by tens of thousands of objects between two ticks, and a generation-1 collection
that took 2 ms a second ago takes 8-24 ms now, longer than the slack before the next tick's
stamping; the tick is stamped late and every stream's interval with it (docs/media-performance.md,
"The young collections' cost, sized").

:class:`SizedCollector` predicts a generation-0 or -1 collection from the objects it will
traverse: ``gc.get_count()[0]`` (objects allocated since the last young collection, less those
freed) plus, for generation 1, the objects that survived into it since its own last collection
(counted here: what each generation-0 collection traversed less what it found). The cost per
object is learnt from the collections run, per size class (a power of two of the objects
traversed: a larger heap costs more per object, cache misses: ~25 ns/object at 10,000, ~90-140 at
200,000 on the bench machine), as the longest recent one (forgotten slowly); a size class not seen
yet costs ``default_rate``. The prediction is ``overhead + margin * objects * rate``. A full
collection is predicted as the slack collector does (by time: it traverses everything alive since
``gc.freeze()``, which nothing here counts). Deferring and forcing are the slack collector's: a
young generation that never fits is collected anyway after ``max_defer``, right after a tick's
sends, so garbage never piles up without bound.
"""

from __future__ import annotations

from typing import Any

from voxflow.media.gc_slack import SlackCollector

__all__ = ["SizedCollector"]

_RATE_DECAY = 0.9  # a size class's cost per object: its longest recent one, forgotten slowly
_SLACK_DECAY = 0.999  # the most slack a tick gave lately, forgotten slowly (~20 s)
_LEARN_FROM = 1000  # smaller collections are mostly fixed cost: they teach no cost per object


class SizedCollector(SlackCollector):
    """A :class:`SlackCollector` that sizes young collections by the objects they traverse
    (module docstring). ``default_rate`` (s per object, a size class not seen yet), ``overhead``
    (s, any collection), ``margin`` (a factor on the per-object part) and ``early`` (generation
    1 is due once it would take that share of a tick's slack); the rest as the slack
    collector's."""

    def __init__(
        self,
        *args: Any,
        default_rate: float = 150e-9,
        overhead: float = 0.0002,
        margin: float = 1.25,
        early: float = 0.4,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self.default_rate, self.overhead, self.margin = default_rate, overhead, margin
        self.early = early
        self.rates: dict[int, float] = {}  # size class (bit length of objects) -> s per object
        self.older = [0, 0, 0]  # objects moved into generation 1 / 2 since it was collected
        self.best_slack = 0.0  # the most slack a tick gave lately (s)

    def active(self, on: bool) -> None:
        """As the slack collector's; what moved between generations is counted afresh."""
        if on and not self._active:
            self.older = [0, 0, 0]
        super().active(on)

    def objects(self, gen: int, counts: tuple[int, int, int]) -> int:
        """The objects a collection of ``gen`` (0 or 1) would traverse now."""
        return counts[0] + (self.older[1] if gen >= 1 else 0)

    def rate(self, objects: int) -> float:
        """Cost per object (s) of a collection traversing ``objects``: its size class's; for
        one not seen yet, the nearest smaller one's doubled a class (at most ``default_rate``),
        else ``default_rate``."""
        size = objects.bit_length()
        if size in self.rates:
            return self.rates[size]
        below = [k for k in self.rates if k < size]
        if not below:
            return self.default_rate
        k = max(below)
        return min(self.rates[k] * 2.0 ** (size - k), max(self.default_rate, self.rates[k]))

    def predict(self, gen: int, counts: tuple[int, int, int]) -> float:
        """A young collection: by the objects it traverses; a full one: by time."""
        if gen == 2:
            return super().predict(gen, counts)
        n = self.objects(gen, counts)
        return self.overhead + self.margin * n * self.rate(n)

    def due(self) -> int:
        """Python's choice, except that generation 1 comes early once it would take
        ``early`` of the most slack a tick has given lately: its survivors are traversed in
        pieces that fit, before it grows past any slack."""
        gen = super().due()
        if gen == 0 and self.best_slack > 0:
            counts = self._count()
            if self.predict(1, counts) >= self.early * self.best_slack:
                return 1
        return gen

    def run(self, until: float) -> int:
        """As the slack collector's; the slack ``until`` leaves is remembered."""
        if self._active:
            self.best_slack = max(until - self._clock(), _SLACK_DECAY * self.best_slack)
        return super().run(until)

    def _never_fits(self, gen: int, counts: tuple[int, int, int], slack: float) -> int:
        """A young generation (up to ``gen``) predicted longer than the most slack a tick has
        given lately only grows while it waits: the oldest such runs now if this tick's slack is
        near that most (right after the sends, not late in a busy loop pass)."""
        if slack < 0.8 * self.best_slack:
            return -1
        for g in range(min(gen, 1), -1, -1):
            if self.predict(g, counts) > self.best_slack:
                self.stats.oversized += 1
                return g
        return -1

    def _observe(self, gen: int, took: float, found: int, counts: tuple[int, int, int]) -> None:
        super()._observe(gen, took, found, counts)
        if gen == 2:
            self.older = [0, 0, 0]
            return
        n = self.objects(gen, counts)
        if n >= _LEARN_FROM:
            size = n.bit_length()
            self.rates[size] = max(took / n, _RATE_DECAY * self.rates.get(size, 0.0))
        self.older[gen + 1] += max(n - found, 0)
        if gen == 1:
            self.older[1] = 0
