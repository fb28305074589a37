"""UDP edge: port range, remote filtering, malformed datagrams counted, paced sending."""

from __future__ import annotations

import asyncio
import itertools
import socket

import pytest

from voxflow.errors import MediaError
from voxflow.media.pacer import OutboundStream, Pacer
from voxflow.media.rtp import RtpPacket
from voxflow.media.transport import _BACKLOG_LIMIT, PortRange, RtpSocket


def _free_block(n: int) -> int:
    """A start port with n consecutive ports that are free right now."""
    for start in range(42000, 60000, 50):
        socks = []
        try:
            for p in range(start, start + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return start
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block")


async def test_port_range_allocates_and_returns_ports() -> None:
    start = _free_block(2)
    ports = PortRange(start, start + 1)
    a = await RtpSocket.open(ports=ports)
    b = await RtpSocket.open(ports=ports)
    try:
        assert {a.local[1], b.local[1]} == {start, start + 1}
        with pytest.raises(MediaError, match="no free RTP port"):
            await RtpSocket.open(ports=ports)
        await a.aclose()
        a.close()  # idempotent
        assert ports.in_use == {b.local[1]}
        c = await RtpSocket.open(ports=ports)
        assert c.local[1] == a.local[1]
        await c.aclose()
    finally:
        a.close()
        await b.aclose()
    assert ports.in_use == frozenset()
    with pytest.raises(MediaError):
        PortRange(10, 5)


async def test_exchange_filter_and_count_malformed() -> None:
    got: list[RtpPacket] = []
    a = await RtpSocket.open(on_packet=got.append)
    b = await RtpSocket.open()
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        a.set_remote(*b.local)
        b.set_remote(*a.local)
        b.send(RtpPacket(0, 1, 160, 5, b"\xff" * 160).serialize())
        b.send(b"\x00" * 6)  # truncated
        b.send(bytes([0x40]) + bytes(20))  # version 1
        stranger.sendto(RtpPacket(0, 9, 9, 9).serialize(), a.local)  # not from the remote
        b.send(RtpPacket(0, 2, 320, 5, b"\xff" * 160).serialize())
        for _ in range(200):
            if len(got) >= 2 and a.stats.rejected >= 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert [p.sequence for p in got] == [1, 2]
        assert a.stats.rejected == 2 and a.stats.reasons == {"truncated": 1, "version": 1}
        # The socket is connected to its remote: the kernel drops the stranger's datagram.
        assert a.stats.received == 2 and a.foreign == 0
    finally:
        stranger.close()
        await a.aclose()
        await b.aclose()
    a.send(b"ignored after close")


async def test_unspecified_remote_host_accepts_any_host_on_the_port_only() -> None:
    got: list[RtpPacket] = []
    a = await RtpSocket.open(on_packet=got.append)
    b = await RtpSocket.open()
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.1", 0))
    try:
        a.set_remote("0.0.0.0", b.local[1])  # not connected: filtered here, on the port
        b.set_remote(*a.local)
        stranger.sendto(RtpPacket(0, 9, 9, 9).serialize(), a.local)
        b.send(RtpPacket(0, 1, 160, 5, b"\xff" * 160).serialize())
        for _ in range(200):
            if got and a.foreign:
                break
            await asyncio.sleep(0.01)
        assert [p.sequence for p in got] == [1] and a.foreign == 1
    finally:
        stranger.close()
        await a.aclose()
        await b.aclose()


async def test_paced_stream_over_loopback() -> None:
    got: list[RtpPacket] = []
    rx = await RtpSocket.open(on_packet=got.append)
    tx = await RtpSocket.open()
    tx.set_remote(*rx.local)
    rx.set_remote(*tx.local)
    pacer = Pacer()
    stream = OutboundStream("ulaw", ssrc=1234)
    stream.enqueue(b"\x11" * 160 * 10)
    pacer.register(stream, tx.send)
    try:
        await asyncio.wait_for(stream.wait_idle(), 10)
        for _ in range(200):
            if len(got) >= 10:
                break
            await asyncio.sleep(0.01)
    finally:
        await pacer.aclose()
        await rx.aclose()
        await tx.aclose()
    assert len(got) == 10
    assert {p.ssrc for p in got} == {1234}
    # a talkspurt starts with the marker; a pacer more than 3 ticks late (a loaded machine)
    # skips ticks, and the packet after the jump in timestamps is marked again, nothing else
    jumps = [(b.timestamp - a.timestamp) & 0xFFFFFFFF != 160 for a, b in itertools.pairwise(got)]
    assert [p.marker for p in got] == [True, *jumps]
    assert [p.sequence for p in got] == [(got[0].sequence + i) & 0xFFFF for i in range(10)]
    assert all(len(p.payload) == 160 for p in got)


async def test_sending_to_a_closed_port_is_counted_never_raised() -> None:
    gone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gone.bind(("127.0.0.1", 0))
    port = gone.getsockname()[1]
    gone.close()  # nobody listens there now: the kernel answers ICMP port unreachable
    a = await RtpSocket.open()
    try:
        a.set_remote("127.0.0.1", port)
        for _ in range(200):
            a.send(RtpPacket(0, 1, 160, 5, b"\xff" * 160).serialize())
            if a.icmp_errors:
                break
            await asyncio.sleep(0.01)
        assert a.icmp_errors >= 1 and not a.closed
    finally:
        await a.aclose()


async def test_remote_can_move_between_addresses_but_not_widen_once_connected() -> None:
    got: list[RtpPacket] = []
    a = await RtpSocket.open(on_packet=got.append)
    b = await RtpSocket.open()
    c = await RtpSocket.open()
    try:
        a.set_remote(*b.local)
        a.set_remote(*c.local)  # moved: now only c is heard
        b.send(b"")  # b has no remote yet: dropped silently
        b.set_remote(*a.local)
        c.set_remote(*a.local)
        b.send(RtpPacket(0, 1, 160, 5).serialize())
        c.send(RtpPacket(0, 2, 320, 6).serialize())
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert [p.ssrc for p in got] == [6]
        with pytest.raises(MediaError, match="cannot widen"):
            a.set_remote("0.0.0.0", c.local[1])
        assert a.remote == c.local
    finally:
        for s in (a, b, c):
            await s.aclose()


class _FullFor:
    """The RTP socket's OS socket, reporting a full send buffer (EAGAIN) for some packets."""

    def __init__(self, sock: socket.socket, full: set[int] | None) -> None:
        self.sock = sock
        self.full = full  # the calls (counted from 1) that are refused; None: every call
        self.calls = 0

    def send(self, data: bytes) -> int:
        self.calls += 1
        if self.full is None or self.calls in self.full:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        return self.sock.send(data)

    def close(self) -> None:
        self.sock.close()


async def test_a_full_send_buffer_queues_packets_and_sends_them_in_order() -> None:
    got: list[RtpPacket] = []
    a = await RtpSocket.open(on_packet=got.append)
    b = await RtpSocket.open()
    try:
        a.set_remote(*b.local)
        b.set_remote(*a.local)
        real = b._sock
        assert real is not None
        b._sock = _FullFor(real, full={3, 4, 7})  # type: ignore[assignment]
        for seq in range(1, 11):
            b.send(RtpPacket(0, seq, seq * 160, 5, b"\xff" * 160).serialize())
        for _ in range(200):
            if len(got) >= 10:
                break
            await asyncio.sleep(0.01)
        # Nothing lost, nothing reordered: refused packets waited and went out once writable.
        assert [p.sequence for p in got] == list(range(1, 11))
        assert b.icmp_errors == 0 and b.send_dropped == 0 and not b._backlog
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_large_datagram_is_read_whole_and_sockets_share_one_buffer() -> None:
    # Datagrams are read into one preallocated buffer per thread: nothing is truncated, and a
    # packet's payload is its own copy (the next read does not change it).
    got: list[RtpPacket] = []
    a = await RtpSocket.open(on_packet=got.append)
    b = await RtpSocket.open(on_packet=got.append)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    try:
        assert a._buf is b._buf
        a.set_remote(*tx.getsockname())
        b.set_remote(*tx.getsockname())
        big = bytes(range(256)) * 40  # 10240 bytes: more than any MTU
        tx.sendto(RtpPacket(11, 1, 0, 7, big).serialize(), a.local)
        tx.sendto(RtpPacket(11, 2, 0, 8, b"\x01" * 160).serialize(), b.local)
        for _ in range(200):
            if len(got) >= 2:
                break
            await asyncio.sleep(0.01)
        by_ssrc = {p.ssrc: p for p in got}
        assert by_ssrc[7].payload == big and by_ssrc[8].payload == b"\x01" * 160
        assert a.stats.received == b.stats.received == 1
    finally:
        tx.close()
        await a.aclose()
        await b.aclose()


async def test_a_send_backlog_past_its_limit_drops_and_counts() -> None:
    a = await RtpSocket.open()
    b = await RtpSocket.open()
    try:
        a.set_remote(*b.local)
        real = a._sock
        assert real is not None
        # The buffer never drains. (A finite set of refusals ran out on a fast machine: the real
        # socket stays writable, so the writer callback retries on every loop pass.)
        never = _FullFor(real, full=None)
        a._sock = never  # type: ignore[assignment]
        limit = _BACKLOG_LIMIT
        for seq in range(limit + 5):
            a.send(RtpPacket(0, seq, 0, 5).serialize())
        assert len(a._backlog) == limit and a.send_dropped == 5
        await asyncio.sleep(0.05)  # the writer callback retries; still full, nothing lost
        assert len(a._backlog) == limit and never.calls > 1
        a._sock = real
    finally:
        await a.aclose()
        await b.aclose()
    assert not a._backlog and a.closed


@pytest.mark.parametrize("remote_host", ["127.0.0.1", "0.0.0.0"])
async def test_nothing_is_heard_before_the_remote_is_known(remote_host: str) -> None:
    """Between open and set_remote (the externalMedia POST answer) no datagram is taken: Asterisk
    sends no RTP before that answer (it is not bridged yet), so anything then is a stranger's,
    whether read by the loop or still queued in the kernel when set_remote runs."""
    got: list[RtpPacket] = []
    a = await RtpSocket.open(on_packet=got.append)
    b = await RtpSocket.open()
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.1", 0))
    try:
        stranger.sendto(RtpPacket(0, 7, 7, 7, b"\x00" * 160).serialize(), a.local)
        for _ in range(200):
            if got or a.foreign:
                break
            await asyncio.sleep(0.01)
        assert got == [] and a.foreign == 1  # read by the loop while no remote is known
        # Queued in the kernel, not yet read, when the remote becomes known: dropped too.
        stranger.sendto(RtpPacket(0, 8, 8, 8, b"\x00" * 160).serialize(), a.local)
        a.set_remote(remote_host, b.local[1])
        b.set_remote(*a.local)
        b.send(RtpPacket(0, 1, 160, 5, b"\xff" * 160).serialize())
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert [p.sequence for p in got] == [1] and a.foreign == 2
    finally:
        stranger.close()
        await a.aclose()
        await b.aclose()
