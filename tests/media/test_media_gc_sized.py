"""Young collections sized by what they traverse (``SizedCollector``): on a fake heap whose
collections cost time in proportion to the objects they traverse, no young collection that could
fit a tick's slack runs past the next stamping while calls are set up (the slack collector's
longest-recent-duration estimate does); one longer than any slack runs at once, right after the
sends; one that never finds its slack is still collected after ``max_defer``."""

from __future__ import annotations

import pytest

from voxflow.media.gc_freeze import SizedFreezingCollector
from voxflow.media.gc_sized import SizedCollector
from voxflow.media.gc_slack import SlackCollector
from voxflow.media.pacing import make_pacer


class FakeHeap:
    """``gc``'s generations as object counts: allocating adds to generation 0 (and its count); a
    collection of ``gen`` traverses generations 0..gen, takes ``rate`` s per object of the fake
    clock, and moves what survives (all but ``garbage``) one generation up."""

    def __init__(self, rate: float = 100e-9) -> None:
        self.gens = [0, 0, 0]
        self.counts = [0, 0, 0]
        self.rate = rate
        self.now = 0.0
        self.garbage = 0
        self.collected: list[tuple[int, float, int]] = []  # (generation, end, objects traversed)

    def allocate(self, n: int) -> None:
        self.gens[0] += n
        self.counts[0] += n

    def collect(self, gen: int) -> int:
        n = sum(self.gens[: gen + 1])
        self.now += 50e-6 + self.rate * n
        found = min(self.garbage, n)
        for g in range(gen + 1):
            self.gens[g] = 0
            self.counts[g] = 0
        up = min(gen + 1, 2)
        self.gens[up] += n - found
        if gen < 2:
            self.counts[gen + 1] += 1
        self.collected.append((gen, self.now, n))
        return found

    def make(self, kind: type[SlackCollector], **kw: object) -> SlackCollector:
        c = kind(
            (700, 10, 10), clock=lambda: self.now, collect=self.collect,
            count=lambda: (self.counts[0], self.counts[1], self.counts[2]),
            enable=lambda: None, disable=lambda: None, **kw,  # type: ignore[arg-type]
        )  # fmt: skip
        c.active(True)
        return c


def _set_up_calls(
    heap: FakeHeap, c: SlackCollector, ticks: int, per_tick: list[int], busy: list[float]
) -> int:
    """20 ms ticks: the sends end 5 ms after the deadline, the collector runs once the loop
    has done ``busy[i]`` s more work (cycled), with the slack up to the next stamping (1.5 ms
    before the next deadline); ``per_tick[i]`` objects are allocated before (cycled). Return
    how many collections ran past that stamping."""
    late = 0
    for i in range(ticks):
        deadline = 0.020 * (i + 1)
        heap.allocate(per_tick[i % len(per_tick)])
        if heap.now > deadline + 0.015:  # a collection ran long past this tick's sends
            continue
        heap.now = max(heap.now, deadline + 0.005) + busy[i % len(busy)]
        until = deadline + 0.020 - 0.0015
        before = len(heap.collected)
        c.run(until)
        late += sum(1 for _, end, _ in heap.collected[before:] if end > until)
    return late


# Calls set up in a burst: a few thousand objects a tick, 60,000 in a loop pass that set up many
# calls at once, after which the loop is busy 9 ms more before the collector's turn.
_BURST = [3000, 3000, 3000, 3000, 60_000, 3000, 3000, 3000, 3000, 3000, 3000]
_BUSY = [0.0, 0.0, 0.0, 0.0, 0.009, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_sized_young_collections_never_run_past_the_next_stamping() -> None:
    heap = FakeHeap()
    c = heap.make(SizedCollector)
    assert isinstance(c, SizedCollector)
    late = _set_up_calls(heap, c, 1000, _BURST, _BUSY)
    # every object survives: generation 1 is collected early, in pieces that fit, before it
    # outgrows any tick's slack
    assert late == 0 and c.stats.forced == 0
    assert c.stats.collections[0] > 50 and c.stats.collections[1] > 50
    assert c.stats.deferred > 0  # the short slack after the busy pass was left alone
    before = FakeHeap()  # the slack collector, same heap, same ticks: its estimate is too short
    assert _set_up_calls(before, before.make(SlackCollector), 1000, _BURST, _BUSY) > 10
    heap = FakeHeap()
    late_young = heap.make(SizedCollector, early=1.0)  # generation 1 only when Python's is due
    assert 0 < _set_up_calls(heap, late_young, 1000, _BURST, _BUSY) <= late_young.stats.oversized


def test_a_young_generation_longer_than_any_slack_runs_at_once_not_ever_larger() -> None:
    heap = FakeHeap(rate=0.8e-6)  # 0.8 us an object: 20,000 objects never fit 13.5 ms
    heap.garbage = 10**9  # all of it cyclic garbage: nothing grows older
    c = heap.make(SizedCollector)
    assert isinstance(c, SizedCollector)
    late = _set_up_calls(heap, c, 200, [20_000], [0.0])
    # only those (and the first, before any cost per object was known), as documented
    assert 0 < c.stats.oversized <= late <= c.stats.oversized + 1 and c.stats.forced == 0
    assert max(n for _, _, n in heap.collected) <= 40_000  # waiting would only grow it


def test_a_generation_that_never_fits_is_forced_after_max_defer() -> None:
    heap = FakeHeap()
    c = heap.make(SizedCollector, max_defer=(1.0, 1.0, 60.0))
    # after the first tick the loop is busy until 0.5 ms before every next stamping
    late = _set_up_calls(heap, c, 200, [5000], [0.0] + [0.0130] * 199)
    assert c.stats.forced >= 3 and late == c.stats.forced
    assert heap.gens[0] <= 5000 * 51  # collected every max_defer, not piling up


def test_it_learns_the_cost_per_object_by_size_class_and_counts_survivors_into_gen_1() -> None:
    heap = FakeHeap(rate=40e-9)
    c = heap.make(SizedCollector)
    assert isinstance(c, SizedCollector)
    heap.allocate(20_000)
    assert c.run(heap.now + 0.0185) == 0  # 20,000 at 150 ns (not seen yet): 3.95 ms, fits
    assert c.rates[(20_000).bit_length()] == pytest.approx((50e-6 + 40e-9 * 20_000) / 20_000)
    assert c.older[1] == 20_000  # all survived into generation 1
    heap.allocate(1000)
    assert c.objects(1, (1000, 1, 0)) == 21_000
    assert c.predict(2, (1000, 1, 0)) == float("inf")  # a full collection: by time, unknown


def test_sized_is_a_gc_mode() -> None:
    assert isinstance(make_pacer("thread", "sized").collector, SizedCollector)


class FreezingHeap(FakeHeap):
    """A :class:`FakeHeap` with ``gc.freeze``/``unfreeze``: freezing moves every generation to
    the permanent one (O(1): no time on the clock) and zeroes the counts, as CPython 3.11 does;
    collections never traverse what is frozen."""

    def __init__(self, rate: float = 100e-9) -> None:
        super().__init__(rate)
        self.frozen = 0
        self.ops: list[str] = []

    def freeze(self) -> None:
        self.frozen += sum(self.gens)
        self.gens = [0, 0, 0]
        self.counts = [0, 0, 0]
        self.ops.append("freeze")

    def unfreeze(self) -> None:
        self.gens[2] += self.frozen
        self.frozen = 0
        self.ops.append("unfreeze")

    def make_freezing(self, **kw: object) -> SizedFreezingCollector:
        c = self.make(SizedFreezingCollector, freeze=self.freeze, unfreeze=self.unfreeze, **kw)
        assert isinstance(c, SizedFreezingCollector)
        return c


def test_sized_freezing_freezes_a_young_generation_longer_than_any_slack() -> None:
    """The young generation that ``sized`` runs at once (a late tick) is frozen instead: no
    collection past the next stamping; the cyclic garbage frozen with it is collected by the
    safety net's full collection, which comes after ``max_defer``."""
    heap = FreezingHeap(rate=0.8e-6)  # as above: 20,000 objects never fit 13.5 ms
    heap.garbage = 10**9
    c = heap.make_freezing()
    late = _set_up_calls(heap, c, 200, [20_000], [0.0])
    assert late <= 1  # at most the first, before any cost per object was known
    assert c.freezes > 0 and c.stats.oversized == 0 and c.stats.forced == 0
    assert max(n for _, _, n in heap.collected) <= 40_000
    sized = FakeHeap(rate=0.8e-6)  # the sized collector, same ticks: late at each of them
    sized.garbage = 10**9
    s = sized.make(SizedCollector)
    assert _set_up_calls(sized, s, 200, [20_000], [0.0]) > 5
    net = FreezingHeap(rate=0.8e-6)
    net.garbage = 10**9
    c = net.make_freezing(max_defer=(60.0, 60.0, 1.0))
    _set_up_calls(net, c, 200, [20_000], [0.0])
    assert c.stats.forced >= 1 and c.stats.collections[2] == c.stats.forced
    assert net.ops[net.ops.index("unfreeze") + 1] == "freeze"  # a full collection between


def test_sized_freezing_keeps_the_burst_within_the_slack() -> None:
    """Calls set up in a burst (every object survives): where the sized collector collects
    generation 1 over and over (each traversing what survived since), this one freezes; none
    runs past the stamping, and its longest collection is shorter."""
    heap = FreezingHeap()
    c = heap.make_freezing()
    assert _set_up_calls(heap, c, 1000, _BURST, _BUSY) == 0
    sized = FakeHeap()
    s = sized.make(SizedCollector)
    assert _set_up_calls(sized, s, 1000, _BURST, _BUSY) == 0
    assert c.freezes > 0 and c.stats.collections[0] > 50
    assert c.stats.collections[1] < s.stats.collections[1] / 10
    assert c.stats.longest < s.stats.longest / 2
    assert isinstance(make_pacer("thread", "sized-freeze").collector, SizedFreezingCollector)
