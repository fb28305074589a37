"""A talkspurt on an idle stream starts at once (``Pacer.enqueue``): its first packet is sent
when it is queued, holds the audio up to the first tick at least a frame away, and the stream's
packets then follow the shared grid with every send interval equal to its RTP timestamp interval
(both pacers; a fake clock, then real RTP over loopback while the pacer thread sends)."""

from __future__ import annotations

import asyncio
import itertools
import random
import shutil
import threading
from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from sandbox_rig import open_app_rig
from udp_receiver import ThreadClock, ThreadedReceiver

from voxflow.media.callmedia import CallMedia
from voxflow.media.codecs import silence
from voxflow.media.pacer import OutboundStream, Pacer
from voxflow.media.pacer_thread import ThreadPacer
from voxflow.media.rtp import RtpPacket, parse_rtp
from voxflow.media.transport import PortRange, RtpSocket
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.telephony.session import CallSession
from voxflow.voice.call import BargeIn

T0 = 1000.0


class _Parked:
    """A fake clock whose pacer sleeps until the test ends: the test runs the ticks itself
    (``_tick_until`` first waits for a pacer thread to be parked: one that got going late, after
    the test had moved the time on, ran a tick itself and held the lock the test's ``enqueue``
    tries, once in CI)."""

    def __init__(self) -> None:
        self.now = T0
        self.stop = threading.Event()
        self.parked = threading.Event()
        self.loop_stop = asyncio.Event()

    def __call__(self) -> float:
        return self.now

    def sleep_thread(self, delay: float) -> None:
        self.parked.set()
        self.stop.wait(60)

    async def release(self, pacer: Pacer) -> None:
        """The test's end: the pacer's sleeps return and it is closed."""
        self.stop.set()
        self.loop_stop.set()
        await pacer.aclose()

    async def sleep_loop(self, delay: float) -> None:
        await self.loop_stop.wait()

    def block(self, delay: float) -> None:
        self.now += delay


def _pacer(kind: str, clock: _Parked) -> Pacer:
    """A pacer on ``clock`` that starts talkspurts at once (``start_now``: not the default)."""
    if kind == "thread":
        made: Pacer = ThreadPacer(0.02, clock=clock, sleep=clock.sleep_thread, block=clock.block)
    else:
        made = Pacer(0.02, clock=clock, sleep=clock.sleep_loop, block=clock.block)
    made.start_now = True
    return made


def _tick_until(pacer: Pacer, clock: _Parked, t: float) -> None:
    """Move the fake time on to ``t``, running each tick at its deadline."""
    schedule = pacer.schedule
    assert schedule is not None
    assert not pacer.threaded or clock.parked.wait(30), "the pacer thread never parked"
    while schedule.deadline() <= t + 1e-9:
        clock.now = schedule.deadline()
        for tick in schedule.due(clock.now):
            pacer.run_tick(tick)
    clock.now = t


def _deadline(pacer: Pacer, ticks_on: int = 0) -> float:
    assert pacer.schedule is not None
    return pacer.schedule.deadline() + ticks_on * 0.02


@pytest.mark.parametrize("kind", ["loop", "thread"])
async def test_a_talkspurt_on_an_idle_stream_starts_at_once_then_follows_the_grid(
    kind: str,
) -> None:
    clock = _Parked()
    pacer = _pacer(kind, clock)
    sent: list[tuple[float, bytes]] = []
    st = OutboundStream("ulaw", ssrc=3, sequence=65534, timestamp=2**32 - 100)
    pacer.register(st, lambda d: sent.append((clock.now, d)))
    audio = bytes(random.Random(1).randrange(256) for _ in range(8000))  # 1 s
    try:
        _tick_until(pacer, clock, _deadline(pacer, 3) - 0.00625)  # idle, 6.25 ms before a tick
        start = clock.now
        pacer.enqueue(st, audio)
        st.end_of_audio()
        # Sent now, on this thread, holding the audio up to the tick after next (26.25 ms).
        assert len(sent) == 1 and sent[0][0] == start and pacer.started_now == 1
        first = parse_rtp(sent[0][1])
        assert first.marker and len(first.payload) == 210 and st.sent_ms == 26.25
        _tick_until(pacer, clock, start + 0.02)  # the tick 6.25 ms on sends nothing for it
        assert len(sent) == 1
        while not st.idle:
            _tick_until(pacer, clock, _deadline(pacer))
        spurt = len(sent)
        # Back to back: the next prompt continues at the next tick, no marker, no jump.
        pacer.enqueue(st, audio[:1600])
        assert len(sent) == spurt
        while not st.idle:
            _tick_until(pacer, clock, _deadline(pacer))
        # After a pause, 7.5 ms before a tick: at once again (27.5 ms of audio).
        _tick_until(pacer, clock, _deadline(pacer, 2) - 0.0075)
        second = len(sent)
        pacer.enqueue(st, audio[:1600])
        st.end_of_audio()
        assert len(sent) == second + 1 and len(parse_rtp(sent[-1][1]).payload) == 220
        while not st.idle:
            _tick_until(pacer, clock, _deadline(pacer))
    finally:
        await clock.release(pacer)
    pkts = [parse_rtp(d) for _, d in sent]
    assert all((b.sequence - a.sequence) & 0xFFFF == 1 for a, b in itertools.pairwise(pkts))
    assert [i for i, p in enumerate(pkts) if p.marker] == [0, second]
    # Every send interval equals its timestamp interval (RFC 3550's D is 0), within the
    # talkspurts, back to back and across the pause; no audio is lost, repeated or overlaps.
    for (t1, _), (t2, _), a, b in zip(sent, sent[1:], pkts, pkts[1:], strict=False):
        assert abs((t2 - t1) * 8000 - ((b.timestamp - a.timestamp) & 0xFFFFFFFF)) < 1e-6
        if not b.marker:
            assert (b.timestamp - a.timestamp) & 0xFFFFFFFF == len(a.payload)
    assert b"".join(p.payload for p in pkts[:spurt]) == audio + silence("ulaw", 50)
    assert b"".join(p.payload for p in pkts[spurt:second]) == audio[:1600]
    assert b"".join(p.payload for p in pkts[second:]) == audio[:1600] + silence("ulaw", 60)
    assert all(len(p.payload) == 160 for p in pkts[1:second] + pkts[second + 1 :])


@pytest.mark.parametrize("kind", ["loop", "thread"])
async def test_without_start_now_a_talkspurt_waits_for_the_next_tick(kind: str) -> None:
    clock = _Parked()
    pacer = _pacer(kind, clock)
    pacer.start_now = False
    sent: list[tuple[float, bytes]] = []
    st = OutboundStream("ulaw")
    pacer.register(st, lambda d: sent.append((clock.now, d)))
    try:
        _tick_until(pacer, clock, _deadline(pacer, 3) - 0.00625)
        pacer.enqueue(st, b"\x01" * 480)
        assert sent == []
        _tick_until(pacer, clock, _deadline(pacer))
        assert len(sent) == 1 and sent[0][0] == clock.now and parse_rtp(sent[0][1]).marker
    finally:
        await clock.release(pacer)
    assert pacer.started_now == 0


def _check_stream(pkts: list[RtpPacket], audio: bytes) -> None:
    """One stream as received: every packet once and in order, each talkspurt's audio
    contiguous in RTP time, the next one after it, and all of the audio."""
    assert all((b.sequence - a.sequence) & 0xFFFF == 1 for a, b in itertools.pairwise(pkts))
    for a, b in itertools.pairwise(pkts):
        step = (b.timestamp - a.timestamp) & 0xFFFFFFFF
        assert step == len(a.payload) if not b.marker else step >= len(a.payload)
    assert b"".join(p.payload for p in pkts) == audio


@pytest.mark.parametrize("kind", ["loop", "thread"])
async def test_talkspurts_started_from_the_loop_and_the_ticks_never_mix_up_a_streams_packets(
    kind: str,
) -> None:
    """Real RTP over loopback, real time: 12 streams start talkspurts from the loop thread
    (after pauses of 0-3 ticks, or right after the last) while the pacer sends the others'."""
    pacer: Pacer = ThreadPacer() if kind == "thread" else Pacer()
    pacer.start_now = True
    rx = ThreadedReceiver()
    rng = random.Random(7)
    socks = [await RtpSocket.open() for _ in range(12)]
    streams = [OutboundStream("ulaw", ssrc=100 + i) for i in range(12)]
    queued: dict[int, list[bytes]] = defaultdict(list)

    async def talk(i: int) -> None:
        st = streams[i]
        for _ in range(6):
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(200, 1600)))
            sent = st.sent_ms
            pacer.enqueue(st, data)
            cut = round((st.sent_ms - sent) * 8) % 160  # a first packet sent at once: its size
            queued[st.ssrc].append(data + silence("ulaw", -(len(data) - cut) % 160))
            st.end_of_audio()
            await asyncio.wait_for(st.wait_idle(), 20)
            await asyncio.sleep(rng.choice([0, 0.005, 0.02, 0.05]))

    try:
        for sock, st in zip(socks, streams, strict=True):
            sock.set_remote(*rx.sock.getsockname())
            pacer.register(st, sock.send_from_thread if pacer.threaded else sock.send)
        await asyncio.gather(*(talk(i) for i in range(12)))
        total = sum(st.packets_sent for st in streams)
        for _ in range(2000):
            if len(rx.got) >= total:
                break
            await asyncio.sleep(0.005)
    finally:
        await pacer.aclose()
        for sock in socks:
            await sock.aclose()
        rx.close()
    by_ssrc: dict[int, list[RtpPacket]] = defaultdict(list)
    for _, p in rx.got:
        by_ssrc[p.ssrc].append(p)
    assert len(rx.got) == total and pacer.started_now >= 12
    for st in streams:
        _check_stream(by_ssrc[st.ssrc], b"".join(queued[st.ssrc]))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
async def test_a_prompt_on_an_idle_call_is_sent_at_once_and_the_caller_hears_all_of_it() -> None:
    """Through the sandbox: one prompt three times, the last two from the cache on an idle
    line at two phases of the tick. Their first packet leaves within ``say()``'s first step,
    and the caller hears the same audio all three times."""
    async with open_app_rig(PortRange(), tts=EspeakTTS(sample_rate=8000)) as rig:

        async def body(call: CallSession) -> Any:
            heard = [(await call.say("yes", barge_in=BargeIn("none"))).heard_ms]
            voice = await call.call_voice()
            assert isinstance(voice, CallMedia)
            voice.pacer.start_now = True  # (not the default)
            at_once = []
            for pause in (0.1, 0.1137):
                await asyncio.sleep(pause)  # the line is idle: the talkspurt is over
                started, sent = voice.pacer.started_now, voice.outbound.packets_sent
                again = asyncio.ensure_future(voice.say("yes", barge_in=BargeIn("none")))
                await asyncio.sleep(0)  # one pass: say() runs to its first wait
                at_once.append(
                    (voice.pacer.started_now - started, voice.outbound.packets_sent - sent)
                )
                heard.append((await again).heard_ms)
            await asyncio.sleep(0.2)  # the caller hears the last packets before the hang-up
            return heard, at_once

        rig.bodies["1"] = body
        sim = await rig.sb.place_call(from_=rig.caller_id, to="1", app="voxflow")
        heard_ms, at_once = await rig.result()
    assert all(n == 1 and sent >= 1 for n, sent in at_once)
    assert heard_ms[0] >= 200 and max(heard_ms) - min(heard_ms) <= 20
    # The same samples three times, nothing lost or repeated (the sandbox cuts a longer first
    # packet into 20 ms frames: leave out exact zeros, framed apart in the three).
    heard = np.frombuffer(sim.heard_audio(), "<i2")
    sound = heard[heard != 0]
    third = len(sound) // 3
    assert third > 1000 and len(sound) == 3 * third
    assert np.array_equal(sound[:third], sound[third : 2 * third])
    assert np.array_equal(sound[:third], sound[2 * third :])


@pytest.mark.parametrize("kind", ["loop", "thread"])
async def test_the_first_packet_runs_to_where_its_stream_is_sent_in_a_tick(kind: str) -> None:
    """Each send takes 1 ms of (fake) time: with two streams ahead of it sending, the third
    stream's packets leave 2 ms after each deadline, and the first packet of its talkspurt holds
    the audio up to there (2 ms more): its next interval is still its timestamps'."""
    clock = _Parked()
    pacer = _pacer(kind, clock)
    sent: list[tuple[float, bytes]] = []

    def slow(data: bytes) -> None:
        clock.now += 0.001

    def slow_noted(data: bytes) -> None:
        sent.append((clock.now, data))
        clock.now += 0.001

    streams = [OutboundStream("ulaw") for _ in range(3)]
    pacer.register(streams[0], slow)
    pacer.register(streams[1], slow)
    pacer.register(streams[2], slow_noted)
    try:
        for st in streams[:2]:
            st.enqueue(b"\x01" * 160 * 30)
        _tick_until(pacer, clock, _deadline(pacer, 2) + 0.0025)
        assert pacer.send_span == pytest.approx(0.002) and pacer.send_count == 2
        pacer.enqueue(streams[2], b"\x03" * 160 * 10)
        assert len(parse_rtp(sent[0][1]).payload) == (37.5 + 2) * 8  # to the tick after next
        while not streams[2].idle:
            _tick_until(pacer, clock, _deadline(pacer))
    finally:
        await clock.release(pacer)
    pkts = [parse_rtp(d) for _, d in sent]
    (t1, _), (t2, _) = sent[:2]
    assert round((t2 - 1000.0) / 0.02 % 1 * 0.02, 6) == 0.002  # its place in the send loop
    for (t1, _), (t2, _), a, b in zip(sent, sent[1:], pkts, pkts[1:], strict=False):
        assert abs((t2 - t1) * 8000 - ((b.timestamp - a.timestamp) & 0xFFFFFFFF)) < 1e-6


async def test_a_talkspurt_queued_while_a_tick_is_in_flight_waits_for_the_next_one() -> None:
    """The pacer's thread holds its lock from stamping to the last send: the loop thread never
    waits for it; a prompt queued then goes with the next tick (counted in started_busy)."""
    clock = ThreadClock()
    in_tick, release = threading.Event(), threading.Event()

    def block(delay: float) -> None:  # between stamping and sending, lock held
        in_tick.set()
        release.wait(10)
        clock.block(delay)

    pacer = ThreadPacer(0.02, clock=clock, sleep=clock.sleep, block=block)
    pacer.start_now = True
    busy, idle = OutboundStream("ulaw"), OutboundStream("ulaw")
    busy.enqueue(b"\x01" * 160 * 20)
    sent: list[bytes] = []
    pacer.register(busy, lambda d: None)
    pacer.register(idle, sent.append)
    try:
        assert await asyncio.to_thread(in_tick.wait, 10)
        pacer.enqueue(idle, b"\x02" * 480)  # returns at once: the lock is taken
        assert sent == [] and pacer.started_busy == 1 and pacer.started_now == 0
        release.set()
        await asyncio.wait_for(idle.wait_idle(), 10)
    finally:
        release.set()
        await pacer.aclose()
    pkts = [parse_rtp(d) for d in sent]
    assert [len(p.payload) for p in pkts] == [160] * 3 and pkts[0].marker
