"""Jitter buffer (reorder, loss, wraparound) and pacer (fake clock) — pure code."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from pathlib import Path

import numpy as np

from voxflow.media.jitter import JitterBuffer
from voxflow.media.pacer import OutboundStream, Pacer, TickSchedule
from voxflow.media.rtp import RtpPacket, parse_rtp


def _pkt(seq: int, ts: int, ssrc: int = 7, fill: int = 1, n: int = 160) -> RtpPacket:
    return RtpPacket(0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, bytes([fill % 256]) * n)


def _run(jb: JitterBuffer, packets: list[RtpPacket]) -> list[tuple[int, int, bytes]]:
    out = []
    for p in packets:
        out += [(c.sequence, c.timestamp, c.payload) for c in jb.push(p)]
    out += [(c.sequence, c.timestamp, c.payload) for c in jb.flush()]
    return out


def test_in_order_passes_through_immediately() -> None:
    jb = JitterBuffer("ulaw")
    for i in range(5):
        ready = jb.push(_pkt(100 + i, 1000 + 160 * i, fill=i))
        assert [c.sequence for c in ready] == [100 + i]
    assert jb.buffered == 0


def test_reorder_across_sequence_and_timestamp_wrap() -> None:
    start_seq, start_ts = 65533, 0xFFFFFFFF - 320
    pkts = [_pkt(start_seq + i, start_ts + 160 * i, fill=i) for i in range(8)]
    shuffled = [pkts[0], pkts[2], pkts[1], pkts[4], pkts[3], pkts[5], pkts[7], pkts[6]]
    jb = JitterBuffer("ulaw", depth=3)
    out = _run(jb, shuffled)
    assert [s for s, _, _ in out] == [(start_seq + i) & 0xFFFF for i in range(8)]
    assert [p[0] for _, _, p in out] == list(range(8))
    assert [t for _, t, _ in out] == [(start_ts + 160 * i) & 0xFFFFFFFF for i in range(8)]
    assert jb.stats.lost == 0 and jb.stats.reordered == 3


def test_loss_filled_with_silence_of_right_length() -> None:
    jb = JitterBuffer("ulaw", depth=2)
    seqs = [0, 1, 3, 4, 5, 6]  # 2 lost
    out = _run(jb, [_pkt(s, s * 160, fill=s + 1) for s in seqs])
    assert [s for s, _, _ in out] == [0, 1, 2, 3, 4, 5, 6]
    assert out[2][2] == b"\xff" * 160  # mu-law silence
    assert out[2][1] == 320
    assert jb.stats.lost == 1


def test_concealment_repeats_the_last_frame_fading_then_silence() -> None:
    jb = JitterBuffer("slin16", depth=1, conceal=True, conceal_frames=3)
    level = np.full(320, 3000, ">i2").tobytes()  # slin16: 20 ms = 320 big-endian samples
    pkts = [RtpPacket(118, s, s * 320, 9, level) for s in (0, 6, 7)]  # 1-5 lost (5 frames)
    out = [c for p in pkts for c in jb.push(p)] + jb.flush()
    assert [c.sequence for c in out] == list(range(8))
    peaks = [int(np.abs(np.frombuffer(c.payload, ">i2")).max()) for c in out]
    assert peaks == [3000, 3000, 2000, 1000, 0, 0, 3000, 3000]
    assert all(len(c.payload) == 640 for c in out)
    assert (jb.stats.lost, jb.stats.concealed) == (5, 3)


def test_late_and_duplicate_dropped() -> None:
    jb = JitterBuffer("ulaw", depth=1)
    out = _run(jb, [_pkt(0, 0), _pkt(2, 320), _pkt(3, 480), _pkt(1, 160), _pkt(3, 480)])
    assert [s for s, _, _ in out] == [0, 1, 2, 3]
    # 1 came after its hole was filled; the second 3 after 3 was played out.
    assert jb.stats.lost == 1 and jb.stats.late == 2
    jb = JitterBuffer("ulaw", depth=3)
    out = _run(jb, [_pkt(0, 0), _pkt(2, 320), _pkt(2, 320), _pkt(1, 160)])
    assert [s for s, _, _ in out] == [0, 1, 2]
    assert jb.stats.duplicates == 1 and jb.stats.lost == 0


def test_new_ssrc_restarts() -> None:
    jb = JitterBuffer("ulaw")
    out = _run(jb, [_pkt(10, 0), _pkt(11, 160), _pkt(5000, 9, ssrc=8), _pkt(5001, 169, ssrc=8)])
    assert [s for s, _, _ in out] == [10, 11, 5000, 5001]
    assert jb.stats.resyncs == 1


def test_random_shuffle_within_depth_loses_nothing() -> None:
    rng = random.Random(5)
    pkts = [_pkt(60000 + i, 4_000_000_000 + 160 * i, fill=i) for i in range(2000)]
    arrived = []
    for i in range(0, len(pkts), 3):
        block = pkts[i : i + 3]
        rng.shuffle(block)
        arrived += block
    jb = JitterBuffer("ulaw", depth=3)
    out = _run(jb, arrived)
    assert len(out) == 2000 and jb.stats.lost == 0
    assert [p[0] for _, _, p in out] == [i % 256 for i in range(2000)]


def test_schedule_is_absolute_and_skips_when_far_behind() -> None:
    s = TickSchedule(100.0, 0.02, max_catchup=3)
    assert s.deadline() == 100.02
    assert s.due(100.019) == []
    assert s.due(100.0201) == [1]
    # Waking 7 ms late does not shift the grid: tick 2 is still due at 100.04.
    assert s.due(100.047) == [2]
    assert abs(s.deadline() - 100.06) < 1e-9
    # Far behind: only the latest 3 ticks run, the rest are counted as skipped.
    assert s.due(100.2) == [8, 9, 10]
    assert s.skipped == 5
    s.resync(101.005)
    assert s.next_tick == 51


def test_stream_stamps_seq_ts_marker() -> None:
    st = OutboundStream("ulaw", ssrc=99, sequence=65535, timestamp=0xFFFFFF00)
    st.enqueue(b"\x01" * 500)  # 3 whole frames + 20 bytes partial
    assert st.queued_frames == 3
    pk = [parse_rtp(st.packet_for_tick(t) or b"") for t in (1, 2, 3)]
    assert [p.sequence for p in pk] == [65535, 0, 1]
    assert [p.timestamp for p in pk] == [0xFFFFFF00, 0xFFFFFFA0, 0x40]
    assert [p.marker for p in pk] == [True, False, False]
    assert {p.ssrc for p in pk} == {99}
    assert st.packet_for_tick(4) is None
    st.end_of_audio()
    # Gap of 3 ticks (4, 5, 6 idle): timestamp jumps by 4 frames, marker set, seq +1.
    p = parse_rtp(st.packet_for_tick(8) or b"")
    assert p.sequence == 2 and p.marker
    assert p.timestamp == (0x40 + 160 + 4 * 160) & 0xFFFFFFFF
    assert p.payload == b"\x01" * 20 + b"\xff" * 140


def test_stream_flush_and_slin16_framing() -> None:
    st = OutboundStream("slin16")
    st.enqueue(bytes(640 * 5))
    assert st.queued_frames == 5 and st.frame_samples == 320
    assert st.flush() == 5
    assert st.idle and st.packet_for_tick(1) is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.blocks: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        # Oversleep by a varying amount, as a loaded loop would.
        self.now += delay + 0.003 * (len(self.sleeps) % 3)
        await asyncio.sleep(0)

    def block(self, delay: float) -> None:
        self.blocks.append(delay)
        self.now += delay


class OnTimeClock(FakeClock):
    """A fake clock whose sleeps wake exactly on time."""

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay
        await asyncio.sleep(0)


async def test_pacer_on_fake_clock_sends_one_frame_per_tick_on_grid() -> None:
    clock = FakeClock()
    pacer = Pacer(0.02, clock=clock, sleep=clock.sleep, early=0.0015, block=clock.block)
    sent: dict[str, list[tuple[float, bytes]]] = {"a": [], "b": []}
    a, b = OutboundStream("ulaw"), OutboundStream("alaw")
    a.enqueue(b"\x00" * 160 * 50)
    b.enqueue(b"\x00" * 160 * 20)
    pacer.register(a, lambda d: sent["a"].append((clock.now, d)))
    pacer.register(b, lambda d: sent["b"].append((clock.now, d)))
    await asyncio.wait_for(a.wait_idle(), 5)
    await pacer.aclose()
    assert len(sent["a"]) == 50 and len(sent["b"]) == 20
    # The pacer sleeps until 1.5 ms before each grid point and blocks for the rest. The first
    # oversleeps (3, then 6 ms) make sends 1.5 and 2.5 ms late; from then on it wakes early by
    # the recent oversleep + 0.5 ms, the oversleep counted up to a quarter tick (5 ms): sends on
    # the grid after a 3 ms oversleep, under 1 ms late after a 6 ms one. Lateness never
    # accumulates (the grid is absolute).
    lateness = []
    for t, _ in sent["a"]:
        k = round((t - 1000.0) / 0.02)
        lateness.append(round(t - (1000.0 + k * 0.02), 6))
    assert lateness[:2] == [0.0015, 0.0025]
    assert max(lateness[2:]) < 0.001 and lateness[2:].count(0.0) >= 30
    assert max(clock.blocks) <= 0.0055 + 1e-9 and 0.004 < pacer.wake_lag <= 0.005
    seqs = [parse_rtp(d).sequence for _, d in sent["a"]]
    assert all((y - x) & 0xFFFF == 1 for x, y in itertools.pairwise(seqs))
    assert pacer.streams == 0


async def test_pacer_wake_lag_is_forgotten_once_the_loop_is_on_time_again() -> None:
    class CalmingClock(FakeClock):
        async def sleep(self, delay: float) -> None:
            self.sleeps.append(delay)
            self.now += delay + (0.004 if len(self.sleeps) <= 3 else 0.0)  # a busy start
            await asyncio.sleep(0)

    clock = CalmingClock()
    pacer = Pacer(0.02, clock=clock, sleep=clock.sleep, early=0.0015, block=clock.block)
    st = OutboundStream("ulaw")
    st.enqueue(b"\x00" * 160 * 100)
    sent: list[float] = []
    pacer.register(st, lambda d: sent.append(clock.now))
    await asyncio.wait_for(st.wait_idle(), 5)
    await pacer.aclose()
    assert len(sent) == 100
    # Woken 4 ms late three times: tick 1 goes out 2.5 ms late; then the lead is 4.5 ms, so the
    # next two late wake-ups still leave 0.5 ms to block and send on the grid. Once wake-ups are
    # on time the pacer blocks 4.5 ms, less by 2 % a tick, back down to ``early`` (1.5 ms).
    blocks = [round(b, 6) for b in clock.blocks]
    assert blocks[:3] == [0.0005, 0.0005, 0.0045]
    settled = blocks.index(0.0015)
    assert all(x > y for x, y in itertools.pairwise(blocks[2 : settled + 1]))
    assert set(blocks[settled:]) == {0.0015} and settled < 80
    assert round(sent[0] - 1000.02, 6) == 0.0025
    assert all(abs(t - round(t / 0.02) * 0.02) < 1e-9 for t in sent[1:])


class _SlowStampStream(OutboundStream):
    """Stamping a frame costs 1 ms of (fake) time, as it would with many streams."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__("ulaw")
        self.clock = clock

    def packet_for_tick(self, tick: int, *, wake: bool = True) -> bytes | None:
        self.clock.now += 0.001
        return super().packet_for_tick(tick, wake=wake)


async def test_pacer_stamps_before_the_deadline_and_sends_on_the_grid() -> None:
    clock = OnTimeClock()
    pacer = Pacer(0.02, clock=clock, sleep=clock.sleep, early=0.0015, block=clock.block)
    sent: list[tuple[float, int]] = []
    streams = [_SlowStampStream(clock) for _ in range(3)]
    for i, st in enumerate(streams):
        st.enqueue(b"\x00" * 160 * 10)
        pacer.register(st, lambda d, i=i: sent.append((clock.now, i)))
    await asyncio.wait_for(asyncio.gather(*(s.wait_idle() for s in streams)), 5)
    await pacer.aclose()
    assert len(sent) == 30
    late = [round((t - 1000.0) / 0.02 % 1 * 0.02, 6) % 0.02 for t, _ in sent]
    # Tick 1: the pacer does not know yet that stamping 3 frames takes 3 ms, wakes 1.5 ms early
    # and sends 1.5 ms late. From then on it wakes early + 3 ms, stamps, blocks to the grid
    # point and sends all three there, back to back.
    assert late[:3] == [0.0015] * 3
    assert late[3:] == [0.0] * 27
    assert all(abs(s - (0.02 - 0.0045)) < 1e-9 for s in clock.sleeps[2:10])
    # wait_idle returned only after the last frame was handed to the sender.
    assert [i for _, i in sent[-3:]] == [0, 1, 2]


async def test_packet_for_tick_without_wake_leaves_waiters_to_wake_idle() -> None:
    st = OutboundStream("ulaw")
    st.enqueue(b"\x00" * 160)
    waiter = asyncio.ensure_future(st.wait_idle())
    await asyncio.sleep(0)
    assert st.packet_for_tick(1, wake=False) is not None and st.idle
    await asyncio.sleep(0)
    assert not waiter.done()
    st.wake_idle()
    await asyncio.wait_for(waiter, 1)


async def test_pacer_holds_the_loop_only_on_ticks_with_audio() -> None:
    clock = OnTimeClock()
    pacer = Pacer(0.02, clock=clock, sleep=clock.sleep, early=0.0015, block=clock.block)
    st = OutboundStream("ulaw")
    sent: list[float] = []
    pacer.register(st, lambda d: sent.append(clock.now))
    for _ in range(200):  # a listening call: registered, nothing queued
        if pacer.ticks >= 10:
            break
        await asyncio.sleep(0)
    assert pacer.ticks >= 10 and clock.blocks == [] and sent == []
    st.enqueue(b"\x00" * 160 * 3)
    await asyncio.wait_for(st.wait_idle(), 5)
    await pacer.aclose()
    assert len(sent) == 3 and len(clock.blocks) == 3
    assert all(abs(t - round(t / 0.02) * 0.02) < 1e-9 for t in sent)


def test_a_silent_gap_with_a_marker_and_a_timestamp_jump_is_not_loss() -> None:
    # Asterisk's two-channel bridge sends nothing in silence: the sequence continues, the
    # timestamp jumps by the elapsed time, the first packet after the gap has the marker bit
    # (capture rtp-silence.json). Nothing is buffered, filled or concealed.
    jb = JitterBuffer("ulaw", depth=3, conceal=True)
    speech = [_pkt(100 + i, 160 * i, fill=0x20) for i in range(5)]
    resumed = RtpPacket(0, 105, 160 * 5 + 8000 * 3, 7, b"\x30" * 160, marker=True)
    after = [_pkt(106 + i, 160 * (6 + i) + 8000 * 3, fill=0x30) for i in range(3)]
    for p in [*speech, resumed, *after]:
        assert [c.sequence for c in jb.push(p)] == [p.sequence]
    assert (jb.stats.lost, jb.stats.concealed, jb.buffered) == (0, 0, 0)


def test_the_captured_silent_gaps_are_not_loss() -> None:
    """Real Asterisk 22's packets around its silent gaps (capture rtp-silence.json: each phase
    that sends after a phase that sent nothing, its last packet then the next one's first
    packets): the sequence continues, so nothing is lost, filled or concealed."""
    capture = json.loads(
        (Path(__file__).resolve().parents[1] / "data" / "captures" / "rtp-silence.json").read_text()
    )
    phases = capture["phases"]
    gaps = 0
    for before, after in itertools.pairwise([p for p in phases if p["packets"]]):
        last = before["last_packet"]
        jb = JitterBuffer("ulaw", depth=3, conceal=True)
        packets = [RtpPacket(0, last["seq"], last["ts"], 1, b"\x20" * 160)]
        packets += [
            RtpPacket(
                p["pt"], p["seq"], p["ts"], p["ssrc"], b"\x30" * 160, marker=bool(p["marker"])
            )
            for p in after["first_packets"]
        ]
        for p in packets:
            assert [c.sequence for c in jb.push(p)] == [p.sequence], after["phase"]
        assert (jb.stats.lost, jb.stats.concealed, jb.buffered) == (0, 0, 0)
        assert after["first_packets"][0]["ts"] - last["ts"] > 160  # the clock ran on
        gaps += 1
    assert gaps == 3


def test_a_packet_lost_at_the_start_of_a_talkspurt_is_silence_not_old_speech() -> None:
    jb = JitterBuffer("ulaw", depth=1, conceal=True)
    speech = [_pkt(i, 160 * i, fill=0x20) for i in range(4)]
    # seq 4 (the marker packet after a 3 s gap) is lost; seq 5 follows it.
    late = _pkt(5, 160 * 5 + 8000 * 3, fill=0x30)
    out = _run(jb, [*speech, late])
    assert [s for s, _, _ in out] == [0, 1, 2, 3, 4, 5]
    assert out[4][2] == b"\xff" * 160  # silence, not a repeat of the speech before the gap
    assert (jb.stats.lost, jb.stats.concealed) == (1, 0)
