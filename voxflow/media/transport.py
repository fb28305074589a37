"""The asyncio UDP edge of the media path: one socket per call, ports from a configurable range.

:class:`PortRange` hands out local ports (binding each to check it is free) and takes them back on
close. :class:`RtpSocket` wraps an asyncio datagram endpoint: datagrams are parsed (malformed ones
counted in ``stats`` and dropped), filtered to the expected remote (Asterisk's
``UNICASTRTP_LOCAL_ADDRESS:PORT``) and handed to a callback; ``send`` goes to that remote from the
very socket named as ``external_host``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable

from voxflow.errors import MediaError
from voxflow.media.rtp import RtpPacket, RtpStats

__all__ = ["PortRange", "RtpSocket", "default_port_range"]

log = logging.getLogger(__name__)


class PortRange:
    """Local UDP ports ``start..end`` (inclusive) for RTP. ``start=0`` means "any free port"."""

    def __init__(self, start: int = 0, end: int = 0) -> None:
        if start and not (1 <= start <= end <= 65535):
            raise MediaError(f"bad RTP port range {start}-{end}")
        self.start = start
        self.end = end
        self._in_use: set[int] = set()
        self._next = start

    @property
    def in_use(self) -> frozenset[int]:
        """Ports currently handed out."""
        return frozenset(self._in_use)

    def bind(self, host: str) -> socket.socket:
        """A UDP socket bound on ``host`` to a free port of the range."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if not self.start:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.bind((host, 0))
            self._in_use.add(sock.getsockname()[1])
            return sock
        span = self.end - self.start + 1
        for _ in range(span):
            port = self._next
            self._next = self.start + (self._next - self.start + 1) % span
            if port in self._in_use:
                continue
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            self._in_use.add(port)
            return sock
        raise MediaError(f"no free RTP port in {self.start}-{self.end} on {host}")

    def release(self, port: int) -> None:
        """Give ``port`` back."""
        self._in_use.discard(port)


_default_range = PortRange()


def default_port_range() -> PortRange:
    """The process-wide range used when none is configured (any free port)."""
    return _default_range


PacketHandler = Callable[[RtpPacket], None]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: RtpSocket) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.owner._received(data, addr)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._lost()

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the peer is not listening (yet); never fatal.
        self.owner.icmp_errors += 1
        log.debug("RTP socket error: %s", exc)


class RtpSocket:
    """One call's RTP socket. Create with :meth:`open`; ``close`` returns the port to its range."""

    def __init__(self) -> None:
        self.stats = RtpStats()
        self.foreign = 0
        self.icmp_errors = 0
        self.remote: tuple[str, int] | None = None
        self.local: tuple[str, int] = ("", 0)
        self.on_packet: PacketHandler | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._sock: socket.socket | None = None
        self._buffered: Callable[[], int] = lambda: 0
        self._range: PortRange | None = None
        self._remote_any_host = False
        self._connected = False
        self._spilled = False  # a packet went to the transport's buffer
        self._gone = asyncio.Event()

    @classmethod
    async def open(
        cls,
        host: str = "127.0.0.1",
        *,
        ports: PortRange | None = None,
        on_packet: PacketHandler | None = None,
    ) -> RtpSocket:
        """Bind a socket on ``host`` with a port from ``ports`` (default: any free port)."""
        self = cls()
        self._range = ports or default_port_range()
        sock = self._range.bind(host)
        addr = sock.getsockname()
        self.local = (addr[0], addr[1])
        self.on_packet = on_packet
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        except BaseException:
            sock.close()
            self._range.release(self.local[1])
            raise
        self._transport = transport
        self._sock = sock
        # Selector transports have it (typeshed's DatagramTransport does not declare it).
        self._buffered = getattr(transport, "get_write_buffer_size", lambda: 1)
        return self

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._transport is None

    def set_remote(self, host: str, port: int) -> None:
        """Where to send, and the only source accepted (any host when ``host`` is unspecified).

        A remote given as an IP address is ``connect``-ed: the kernel then drops datagrams from
        anyone else before they reach Python, and ``send`` skips parsing the address on every
        packet (a sixth of a send's cost). With an unspecified host or a host name the source is
        matched here on the port only; datagrams from elsewhere are dropped and counted in
        ``foreign``."""
        if not 0 < port < 65536:
            raise MediaError(f"bad RTP remote port {port!r}")
        try:
            any_host = ipaddress.ip_address(host).is_unspecified
        except ValueError:  # a host name: match the source on the port only
            any_host = True
        if self._connected and any_host:
            # A connected UDP socket cannot be un-connected from Python (AF_UNSPEC): say so.
            raise MediaError(
                f"RTP socket already sends to {self.remote}; cannot widen it to {host}:{port}"
            )
        self._remote_any_host = any_host
        self.remote = (host, port)
        self._connected = False
        sock = self._sock
        if not any_host and sock is not None:
            try:
                sock.connect(self.remote)
                self._connected = True
            except OSError as exc:  # e.g. an IPv4 remote on an IPv6 socket: send with sendto
                log.debug("RTP socket not connected to %s:%s: %s", host, port, exc)

    def send(self, data: bytes) -> None:
        """Send one datagram to the remote (dropped silently when closed or no remote yet).

        Straight from the socket while the transport has nothing buffered (cheaper than
        ``transport.sendto``, which matters at 25k packets/s); when the socket is full the
        transport buffers, and later packets queue behind it until it drains, so order is kept."""
        sock = self._sock
        remote = self.remote
        if sock is None or remote is None:
            return
        if not self._spilled or not self._buffered():
            self._spilled = False
            try:
                if self._connected:
                    sock.send(data)
                else:
                    sock.sendto(data, remote)
                return
            except (BlockingIOError, InterruptedError):
                pass  # let the transport buffer it
            except OSError as exc:  # ICMP unreachable from an earlier packet, and the like
                self.icmp_errors += 1
                log.debug("RTP send error: %s", exc)
                return
        transport = self._transport
        if transport is not None:
            self._spilled = True
            transport.sendto(data, remote)

    def _received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        remote = self.remote
        if remote is not None and (
            addr[1] != remote[1] or (not self._remote_any_host and addr[0] != remote[0])
        ):
            self.foreign += 1
            return
        packet = self.stats.parse(data)
        if packet is not None and self.on_packet is not None:
            self.on_packet(packet)

    def close(self) -> None:
        """Close the socket (idempotent); the port returns to its range once it is closed."""
        transport, self._transport = self._transport, None
        self._sock = None
        if transport is not None:
            transport.close()

    async def aclose(self) -> None:
        """Close and wait until the port is back in its range."""
        self.close()
        await self._gone.wait()

    def _lost(self) -> None:
        if not self._gone.is_set():
            self._gone.set()
            if self._range is not None:
                self._range.release(self.local[1])
