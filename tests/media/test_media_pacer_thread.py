"""The pacer on a thread of its own (``ThreadPacer``): the grid, RTP stamping, a blocked event loop,
unregistering while a tick is in flight, and ``RtpSocket.send_from_thread`` (real RTP bytes)."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

from udp_receiver import ThreadClock, ThreadedReceiver

from voxflow.media.pacer import OutboundStream, Pacer
from voxflow.media.pacer_thread import ThreadPacer
from voxflow.media.rtp import RtpPacket, parse_rtp
from voxflow.media.transport import RtpSocket


async def _until(cond: object, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]  # a zero-argument predicate
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.001)


async def test_thread_pacer_sends_on_the_grid_from_its_thread_with_grid_timestamps() -> None:
    clock = ThreadClock()
    pacer = ThreadPacer(0.02, clock=clock, sleep=clock.sleep, block=clock.block)
    sent: list[tuple[float, str, bytes]] = []
    st = OutboundStream("ulaw", ssrc=77, sequence=65530, timestamp=2**32 - 480)
    st.enqueue(b"\x01" * 160 * 10)

    def send(data: bytes) -> None:
        sent.append((clock.now, threading.current_thread().name, data))

    pacer.register(st, send)
    await asyncio.wait_for(st.wait_idle(), 10)  # woken on the loop once the last frame went
    first_end = pacer.ticks
    await _until(lambda: pacer.ticks >= first_end + 7, "seven silent ticks")
    st.enqueue(b"\x02" * 160 * 5)  # a second talkspurt after a pause
    await asyncio.wait_for(st.wait_idle(), 10)
    await pacer.aclose()
    assert len(sent) == 15 and {name for _, name, _ in sent} == {"voxflow-pacer"}
    # Every send on a grid point (the lead is stamped ahead, then blocked to the deadline).
    assert all(abs((t - 1000.0) / 0.02 - round((t - 1000.0) / 0.02)) < 1e-6 for t, _, _ in sent)
    pkts = [parse_rtp(d) for _, _, d in sent]
    assert {p.ssrc for p in pkts} == {77}
    assert all((b.sequence - a.sequence) & 0xFFFF == 1 for a, b in itertools.pairwise(pkts))
    assert [p.marker for p in pkts] == [True] + [False] * 9 + [True] + [False] * 4
    # The timestamps follow the grid, across the wrap and across the pause: the RTP clock
    # advanced exactly as much as the send time did (8 kHz).
    for (t0, _, _), (t1, _, _), a, b in zip(sent, sent[1:], pkts, pkts[1:], strict=False):
        assert (b.timestamp - a.timestamp) & 0xFFFFFFFF == round((t1 - t0) * 8000)
    assert pkts[9].timestamp < pkts[0].timestamp  # wrapped
    assert pacer.streams == 0


async def _blocked_loop_arrivals(
    pacer: Pacer,
) -> tuple[int, float, float, list[tuple[float, RtpPacket]]]:
    """Queue 1.2 s of audio on a real RTP socket, block the event loop for 0.6 s (a long
    callback), and return the packets sent during the block (counted at the sender), the
    block's start and end, and what the receiver read, when."""
    rx = ThreadedReceiver()
    tx = await RtpSocket.open()
    tx.set_remote(*rx.sock.getsockname())
    st = OutboundStream("ulaw", ssrc=5)
    st.enqueue(b"\x03" * 160 * 60)
    pacer.register(st, tx.send_from_thread if pacer.threaded else tx.send)
    try:
        await _until(lambda: st.packets_sent >= 2, "the first packets")
        start, sent = time.monotonic(), st.packets_sent
        time.sleep(0.6)  # noqa: ASYNC251 - the point: a callback that holds the loop thread
        end, sent = time.monotonic(), st.packets_sent - sent
        await asyncio.wait_for(st.wait_idle(), 20)
        await _until(lambda: len(rx.got) == 60, "every packet read")
    finally:
        await pacer.aclose()
        await tx.aclose()
        rx.close()
    return sent, start, end, rx.got


async def test_a_blocked_event_loop_does_not_stop_the_thread_pacers_audio() -> None:
    sent, start, end, got = await _blocked_loop_arrivals(ThreadPacer())
    # ~30 ticks fall inside the block; a loaded machine may run the threads late, so only a few
    # are required (the asyncio pacer, below, sends none), and read meanwhile.
    assert sent >= 5 and len([p for t, p in got if start < t < end]) >= 3
    assert len(got) == 60
    assert all(
        (b.sequence - a.sequence) & 0xFFFF == 1 for (_, a), (_, b) in itertools.pairwise(got)
    )
    assert sum(p.marker for _, p in got) >= 1 and got[0][1].marker


async def test_a_blocked_event_loop_stops_the_asyncio_pacers_audio() -> None:
    sent, _, _, got = await _blocked_loop_arrivals(Pacer())
    assert sent == 0
    assert len(got) == 60


async def test_unregister_waits_for_the_tick_in_flight_then_the_stream_is_never_sent() -> None:
    clock = ThreadClock()
    in_tick, release = threading.Event(), threading.Event()

    def block(delay: float) -> None:  # between stamping and sending, under the pacer's lock
        in_tick.set()
        release.wait(10)
        clock.block(delay)

    pacer = ThreadPacer(0.02, clock=clock, sleep=clock.sleep, block=block)
    st = OutboundStream("ulaw")
    st.enqueue(b"\x00" * 160 * 50)
    sent: list[bytes] = []
    pacer.register(st, sent.append)
    assert await asyncio.to_thread(in_tick.wait, 10)
    before = len(sent)
    leaving = asyncio.ensure_future(asyncio.to_thread(pacer.unregister, st))
    await asyncio.sleep(0.05)
    assert not leaving.done() and len(sent) == before  # waits for the stamped frame to go
    release.set()
    await asyncio.wait_for(leaving, 10)
    count = len(sent)
    # (on the fake clock the thread may run more ticks before unregister takes the lock)
    assert count > before and pacer.streams == 0
    await pacer.aclose()
    assert len(sent) == count and st.idle


async def test_send_from_thread_hands_an_unconnected_sockets_datagram_to_the_loop() -> None:
    got: list[RtpPacket] = []
    rx = await RtpSocket.open(on_packet=got.append)
    tx = await RtpSocket.open()
    tx.set_remote("0.0.0.0", rx.local[1])  # any host: not connected, sent with sendto
    rx.set_remote("0.0.0.0", tx.local[1])
    st = OutboundStream("ulaw", ssrc=9)
    st.enqueue(b"\x04" * 160 * 3)
    datagrams = [st.packet_for_tick(k) for k in (1, 2, 3)]
    try:
        await asyncio.to_thread(lambda: [tx.send_from_thread(d) for d in datagrams if d])
        await _until(lambda: len(got) == 3, "three packets")
        tx.close()
        tx.send_from_thread(datagrams[0] or b"")  # closed: dropped, never raised
    finally:
        await rx.aclose()
        await tx.aclose()
    assert [p.sequence for p in got] == [parse_rtp(d or b"").sequence for d in datagrams]
    assert tx.icmp_errors == 0
