"""Garbage collection in the pacer's slack (``SlackCollector``): which generation it picks, what it
defers and forces, and both pacers sending real RTP on their grid while garbage piles up, with
every collection run by the collector after a tick's sends (Python's automatic ones never)."""

from __future__ import annotations

import asyncio
import gc
import itertools
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from udp_receiver import ThreadClock, ThreadedReceiver

from voxflow.errors import MediaError
from voxflow.media.gc_freeze import FreezingCollector
from voxflow.media.gc_slack import SlackCollector
from voxflow.media.pacer import OutboundStream, Pacer, shared_pacer
from voxflow.media.pacer_thread import ThreadPacer
from voxflow.media.pacing import make_pacer, worker_pacing
from voxflow.media.transport import RtpSocket


async def _until(cond: object, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]  # a zero-argument predicate
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.001)


class FakeGc:
    """``gc``'s counts and collections, as the collector sees them; a collection takes ``cost``
    seconds of the fake clock."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.now = 0.0
        self.cost = [0.001, 0.004, 0.050]
        self.collected: list[int] = []
        self.runs = [0, 0, 0]  # collections per generation (counting ``collected`` is quadratic)
        self.enabled = True
        self.garbage = 0  # unreachable objects the next collection finds

    def collect(self, gen: int) -> int:
        self.collected.append(gen)
        self.runs[gen] += 1
        self.now += self.cost[gen]
        if gen < 2:
            self.counts[gen + 1] += 1
        for g in range(gen + 1):
            self.counts[g] = 0
        return self.garbage

    def collector(
        self, max_defer: tuple[float, float, float] = (60, 60, 60), decay: float = 1.0
    ) -> SlackCollector:
        c = SlackCollector(
            (700, 10, 10), max_defer=max_defer, defer_decay=decay, clock=lambda: self.now,
            collect=self.collect,
            count=lambda: (self.counts[0], self.counts[1], self.counts[2]),
            enable=lambda: setattr(self, "enabled", True),
            disable=lambda: setattr(self, "enabled", False),
        )  # fmt: skip
        c.active(True)
        return c


def test_it_collects_what_python_would_and_only_what_fits_before_the_next_stamping() -> None:
    fake = FakeGc()
    c = fake.collector()
    assert c.run(fake.now + 0.015) == -1 and fake.collected == []  # nothing allocated
    fake.counts[0] = 701
    assert c.run(fake.now + 0.015) == 0  # generation 0 is due and its cost is unknown (0)
    fake.counts = [701, 11, 0]  # generation 1 is due too: Python would collect 1
    assert c.run(fake.now + 0.015) == 1
    assert c.cost[:2] == [pytest.approx(0.001), pytest.approx(0.004)]
    fake.counts = [701, 11, 0]
    assert c.run(fake.now + 0.003) == 0  # 1 does not fit in 3 ms: the younger one does
    assert c.stats.deferred == 1
    fake.counts[0] = 701
    assert c.run(fake.now + 0.0005) == -1  # nothing fits: nothing this tick
    assert c.stats.deferred == 2 and fake.collected == [0, 1, 0]


def test_a_full_collection_waits_for_max_defer_then_runs_and_its_cost_is_learnt() -> None:
    fake = FakeGc()
    c = fake.collector(max_defer=(60, 60, 1.0))
    fake.counts = [701, 11, 11]  # a full collection is due; its cost is not known yet
    assert c.run(fake.now + 0.015) == 1  # the oldest that fits
    for _ in range(60):  # 1.2 s of ticks: generation 2 stays pending
        fake.now += 0.02
        fake.counts[0] += 50
        c.run(fake.now + 0.015)
    assert 2 in fake.collected and c.stats.forced == 1
    assert c.cost[2] == pytest.approx(0.050) and c.stats.longest == pytest.approx(0.050)
    fake.counts = [701, 11, 11]
    assert c.run(fake.now + 0.06) == 2  # now known to fit in 60 ms


def test_with_defer_decay_a_generation_that_once_ran_long_is_tried_again_sooner() -> None:
    fake = FakeGc()
    c = fake.collector(max_defer=(1.0, 2.0, 60.0), decay=0.98)
    fake.cost[1] = 0.067  # e.g. the pacer's thread held the GIL meanwhile
    fake.counts = [701, 11, 0]
    assert c.run(fake.now + 0.015) == 1 and c.cost[1] == pytest.approx(0.067)
    fake.cost[1] = 0.004
    ticks = 0
    while fake.collected.count(1) < 2:  # generation 1 due on every tick from now on
        ticks += 1
        fake.now += 0.02
        fake.counts[0], fake.counts[1] = 701, 11
        c.run(fake.now + 0.015)
    # Lowered 2 % a deferred tick, its estimate fits 15 ms after ~75 ticks (1.5 s), before the
    # 2 s after which it would have been forced; generation 0 ran meanwhile.
    assert 70 <= ticks <= 80 and c.stats.forced == 0 and fake.collected.count(0) == ticks - 1


def test_by_default_a_generation_too_long_for_the_slack_waits_max_defer() -> None:
    fake = FakeGc()
    c = SlackCollector(
        (700, 10, 10), clock=lambda: fake.now, collect=fake.collect,
        count=lambda: (fake.counts[0], fake.counts[1], fake.counts[2]),
        enable=lambda: None, disable=lambda: None,
    )  # fmt: skip
    c.active(True)
    fake.cost[1] = 0.067
    fake.garbage = 5000  # its collections find garbage: it never waits longer than max_defer
    fake.counts = [701, 11, 0]
    assert c.run(fake.now + 0.015) == 1
    pending = fake.now + 0.02
    while fake.collected.count(1) < 2:  # generation 1 due on every tick, never fitting 15 ms
        fake.now += 0.02
        fake.counts[0], fake.counts[1] = 701, 11
        c.run(fake.now + 0.015)
        assert fake.now - pending < 61
    assert 60 <= fake.now - pending and c.stats.forced == 1 and fake.collected[-1] == 1


def _forced_full_after(fake: FakeGc, c: SlackCollector) -> float:
    """Seconds (20 ms ticks) until the next full collection, which never fits the slack."""
    start, full = fake.now, fake.runs[2]
    while fake.runs[2] == full:
        fake.now += 0.02
        fake.counts[0], fake.counts[2] = 701, 11
        c.run(fake.now + 0.015)
    return fake.now - start


def test_a_full_collection_that_finds_little_garbage_waits_twice_as_long_next_time() -> None:
    fake = FakeGc()
    fake.cost[2] = 0.150  # 500 calls' worth of live objects: never fits a tick's slack
    c = fake.collector(max_defer=(60, 60, 60))
    c.longest_defer = 200
    fake.garbage = 12  # calls freed by reference counting: next to nothing is cyclic
    waits = [_forced_full_after(fake, c) for _ in range(3)]
    assert [round(w) for w in waits] == [60, 120, 200]  # doubled, up to longest_defer
    assert c.stats.forced == 3 and c.stats.found[2] == 36
    fake.garbage = 5000  # now garbage piles up: back to max_defer at once
    assert round(_forced_full_after(fake, c)) == 200
    assert round(_forced_full_after(fake, c)) == 60


def test_automatic_collection_is_off_only_while_active() -> None:
    fake = FakeGc()
    c = fake.collector()
    assert not fake.enabled and c.is_active
    c.active(False)
    assert fake.enabled and c.run(fake.now + 1) == -1


@contextmanager
def _collections() -> Iterator[list[tuple[float, float, int]]]:
    """Every garbage collection meanwhile: (start, end, generation)."""
    seen: list[tuple[float, float, int]] = []
    start = [0.0]

    def on(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            start[0] = time.monotonic()
        else:
            seen.append((start[0], time.monotonic(), info["generation"]))

    gc.callbacks.append(on)
    try:
        yield seen
    finally:
        gc.callbacks.remove(on)


async def _garbage(stop: asyncio.Event) -> None:
    """Reference cycles, a few thousand a loop pass: only the collector frees them."""
    while not stop.is_set():
        for _ in range(2000):
            a: list[object] = []
            a.append(a)
        await asyncio.sleep(0)


@pytest.mark.parametrize("mode", ["slack", "freeze"])
@pytest.mark.parametrize("kind", ["thread", "loop"])
async def test_a_pacer_with_pending_garbage_sends_every_packet_and_collects_after_its_sends(
    kind: str, mode: str
) -> None:
    pacer = make_pacer(kind, mode)
    collector = pacer.collector
    assert collector is not None
    rx = ThreadedReceiver()
    tx = await RtpSocket.open()
    tx.set_remote(*rx.sock.getsockname())
    st = OutboundStream("ulaw", ssrc=9)
    st.enqueue(b"\x05" * 160 * 50)  # one second of audio
    sends: list[float] = []
    raw = tx.send_from_thread if pacer.threaded else tx.send

    def send(data: bytes) -> None:
        sends.append(time.monotonic())
        raw(data)

    stop = asyncio.Event()
    was_enabled = gc.isenabled()
    with _collections() as seen:
        pacer.register(st, send)
        garbage = asyncio.ensure_future(_garbage(stop))
        try:
            await asyncio.wait_for(st.wait_idle(), 30)
            assert not gc.isenabled()  # automatic collection is off while the pacer runs
            await _until(lambda: len(rx.got) == 50, "every packet read")
        finally:
            stop.set()
            await garbage
            await pacer.aclose()
            await tx.aclose()
            rx.close()
    assert gc.isenabled() == was_enabled  # handed back once the pacer stopped
    pkts = [p for _, p in rx.got]
    assert all((b.sequence - a.sequence) & 0xFFFF == 1 for a, b in itertools.pairwise(pkts))
    ran = collector.stats.collections
    assert ran[0] >= 1  # the garbage was collected, by the collector...
    during = [s for s in seen if sends[0] <= s[0] <= sends[-1]]
    assert len(during) <= sum(ran)  # ...and by nothing else while it paced


async def test_the_thread_pacer_gives_the_collector_the_slack_after_each_ticks_sends() -> None:
    clock = ThreadClock()
    pacer = ThreadPacer(0.02, clock=clock, sleep=clock.sleep, block=clock.block)
    sent: list[float] = []
    asked: list[tuple[float, float]] = []  # on the pacer's thread: (now, latest send so far)
    untils: list[float] = []  # on the loop

    class Recorder(SlackCollector):
        def wants_run(self) -> bool:
            asked.append((clock.now, sent[-1] if sent else -1.0))
            return True

        def run(self, until: float) -> int:
            untils.append(until)
            return -1

    pacer.collector = Recorder()
    st = OutboundStream("ulaw")
    st.enqueue(b"\x01" * 160 * 10)
    pacer.register(st, lambda data: sent.append(clock.now))
    await asyncio.wait_for(st.wait_idle(), 10)
    await _until(lambda: len(untils) >= 10, "the slack of ten ticks")
    await pacer.aclose()
    assert len(sent) == 10 and not pacer.collector.is_active
    # Each tick's slack starts after its sends and ends at the next tick's stamping: the next
    # grid point less the lead (1.5 ms here, the fake stamping takes no time).
    for t in sent:
        assert (t, t) in asked  # asked at the tick's instant, once its send was made
        assert any(u == pytest.approx(t + 0.02 - 0.0015, abs=1e-9) for u in list(untils))


async def test_worker_pacing_installs_the_pacer_and_leaves_no_thread_behind() -> None:
    with pytest.raises(MediaError, match="pacer must be one of thread, loop, got 'fast'"):
        make_pacer("fast")
    with pytest.raises(MediaError, match="gc must be one of slack, python"):
        make_pacer("thread", "never")
    was_enabled, switch = gc.isenabled(), sys.getswitchinterval()
    async with worker_pacing("thread", "slack") as pacer:
        assert shared_pacer() is pacer and isinstance(pacer, ThreadPacer)
        assert pacer.collector is not None
        st = OutboundStream("ulaw")
        st.enqueue(b"\x01" * 160 * 200)  # 4 s: still playing when the worker stops
        pacer.register(st, lambda data: None)
        await _until(lambda: st.packets_sent >= 2, "the first packets")
        assert any(t.name == "voxflow-pacer" for t in threading.enumerate())
        assert not gc.isenabled() and sys.getswitchinterval() == pytest.approx(0.0005)
    assert not any(t.name == "voxflow-pacer" for t in threading.enumerate())
    assert sys.getswitchinterval() == pytest.approx(switch)
    assert gc.isenabled() == was_enabled
    assert type(shared_pacer()) is Pacer and shared_pacer() is not pacer


def test_release_collects_what_is_due_before_handing_collection_back() -> None:
    fake = FakeGc()
    c = fake.collector()
    fake.counts = [5000, 11, 3]  # gen 1 is due: Python would collect it at its next allocation
    assert c.release() == 1 and fake.collected == [1] and fake.enabled and not c.is_active
    assert c.release() == -1 and fake.collected == [1]  # not active: nothing to hand back


@pytest.mark.parametrize("kind", ["thread", "loop"])
async def test_no_automatic_collection_while_a_stream_is_live_and_none_on_the_pacer_thread(
    kind: str,
) -> None:
    """Two streams one after the other (the pacer's thread ends between them) over real RTP,
    with reference cycles piling up: Python's collector is off from the moment a stream is
    registered, and handed back on the loop's thread, with no stream live, after the last."""
    pacer = make_pacer(kind, "slack")
    handed: list[tuple[str, int]] = []  # (thread, streams) whenever collection is handed back

    def enable() -> None:
        handed.append((threading.current_thread().name, pacer.streams))
        gc.enable()

    pacer.collector = SlackCollector(max_defer=(3600.0,) * 3, enable=enable)
    pacer.collector.cost = [1.0, 1.0, 1.0]  # nothing fits the slack: garbage piles up
    automatic: list[tuple[str, int]] = []  # Python's own collections: (thread, streams)

    def on(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and gc.isenabled():
            automatic.append((threading.current_thread().name, pacer.streams))

    rx = ThreadedReceiver()
    tx = await RtpSocket.open()
    tx.set_remote(*rx.sock.getsockname())
    raw = tx.send_from_thread if pacer.threaded else tx.send
    stop = asyncio.Event()
    was_enabled = gc.isenabled()
    gc.enable()
    gc.callbacks.append(on)
    garbage = asyncio.ensure_future(_garbage(stop))
    try:
        for ssrc in (1, 2):
            st = OutboundStream("ulaw", ssrc=ssrc)
            st.enqueue(b"\x05" * 160 * 10)
            pacer.register(st, raw)
            assert not gc.isenabled()  # at once, not when the pacer's task or thread first runs
            await asyncio.wait_for(st.wait_idle(), 30)
            pacer.unregister(st)
            await _until(lambda: not pacer.collector.is_active, "the collector handed back")
            assert gc.isenabled()
    finally:
        stop.set()
        await garbage
        gc.callbacks.remove(on)
        await pacer.aclose()
        await tx.aclose()
        rx.close()
        if not was_enabled:
            gc.disable()
    await _until(lambda: len(rx.got) == 20, "every packet read")
    assert handed == [("MainThread", 0), ("MainThread", 0)]
    assert [a for a in automatic if a[1] or a[0] == "voxflow-pacer"] == []


def _freezing(fake: FakeGc, ops: list[str]) -> FreezingCollector:
    def freeze() -> None:
        ops.append("freeze")
        fake.counts = [0, 0, 0]

    def collect(gen: int) -> int:
        ops.append(f"collect {gen}")
        return fake.collect(gen)

    c = FreezingCollector(
        (700, 10, 10), clock=lambda: fake.now, collect=collect,
        count=lambda: (fake.counts[0], fake.counts[1], fake.counts[2]),
        enable=lambda: None, disable=lambda: None,
        freeze=freeze, unfreeze=lambda: ops.append("unfreeze"),
    )  # fmt: skip
    c.active(True)
    return c


def test_freezing_collects_young_garbage_and_freezes_what_older_collections_traverse() -> None:
    fake, ops = FakeGc(), []
    c = _freezing(fake, ops)
    fake.counts = [701, 0, 0]
    assert c.run(fake.now + 0.015) == 0 and ops == ["collect 0"]  # fits: collected
    fake.counts = [701, 11, 0]  # generation 1 due: frozen, not traversed
    assert c.run(fake.now + 0.015) == -1 and ops[-1] == "freeze" and fake.counts == [0, 0, 0]
    fake.cost[0] = 0.030
    fake.counts = [701, 0, 0]
    assert c.run(fake.now + 0.015) == 0  # its cost is not known yet: 30 ms
    fake.counts = [701, 0, 0]
    assert c.run(fake.now + 0.015) == -1 and ops[-1] == "freeze"  # 30 ms does not fit 15
    assert c.freezes == 2 and c.stats.deferred == 1 and "collect 1" not in ops


def test_freezing_safety_net_is_a_full_collection_after_defer_then_less_often() -> None:
    fake, ops = FakeGc(), []
    c = _freezing(fake, ops)
    c.longest_defer = 200
    waits = []
    for _ in range(3):
        start = fake.now
        fake.counts = [701, 11, 0]
        c.run(fake.now + 0.015)  # a freeze starts the wait
        while ops[-1] != "freeze" or ops[-2:-1] != ["collect 2"]:
            fake.now += 0.02
            c.run(fake.now + 0.015)
        waits.append(round(fake.now - start))
        assert ops[-3:] == ["unfreeze", "collect 2", "freeze"]
    assert waits == [60, 120, 200] and c.stats.forced == 3  # little garbage found: less often
    fake.garbage = 5000  # a safety net that finds garbage: every max_defer again
    start = fake.now
    fake.counts = [701, 11, 0]
    c.run(fake.now + 0.015)
    while ops[-2:] != ["collect 2", "freeze"]:
        fake.now += 0.02
        c.run(fake.now + 0.015)
    assert round(fake.now - start) == 200 and c.defer[2] == 60
    fake.counts = [701, 11, 0]
    c.run(fake.now + 0.015)
    assert c.release() == 2 and ops[-3:] == ["unfreeze", "collect 2", "freeze"]
    assert not c.is_active
