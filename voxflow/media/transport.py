"""The asyncio UDP edge of the media path: one socket per call, ports from a configurable range.

:class:`PortRange` hands out local ports (binding each to check it is free) and takes them back on
close. :class:`RtpSocket` is a non-blocking UDP socket on the event loop (a reader callback, no
asyncio transport): datagrams are parsed (malformed ones counted in ``stats`` and dropped),
filtered to the expected remote (Asterisk's ``UNICASTRTP_LOCAL_ADDRESS:PORT``) and handed to a
callback; ``send`` goes to that remote from the very socket named as ``external_host``.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import ipaddress
import logging
import socket
import threading
from collections import deque
from collections.abc import Callable

from voxflow.errors import MediaError
from voxflow.media.rtp import RtpPacket, RtpStats

__all__ = ["PortRange", "RtpSocket", "default_port_range"]

log = logging.getLogger(__name__)

# send(2) called with the GIL held (ctypes.PyDLL): the pacer's thread sends a tick's datagrams
# without handing the GIL to the loop thread between two of them (see send_from_thread).
_libc_send = ctypes.PyDLL(None, use_errno=True).send
_libc_send.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
_libc_send.restype = ctypes.c_ssize_t
_MSG_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)  # the socket is non-blocking anyway
_RETRY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ENOBUFS)
_PORT_TAKEN = (errno.EADDRINUSE, errno.EACCES)  # the next port of the range may be free


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
            except OSError as exc:
                sock.close()
                if exc.errno in _PORT_TAKEN:
                    continue
                # not a port in use (an address not of this machine, a bad name): no port will do
                raise MediaError(f"cannot bind RTP on {host}: {exc.strerror or exc}") from None
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

_RECV_BUFFER = 65536  # the largest UDP datagram: nothing is ever truncated
_BACKLOG_LIMIT = 500  # datagrams queued behind a full send buffer (10 s of a call), then dropped


_local = threading.local()


def _receive_buffer() -> tuple[bytearray, memoryview]:
    """This thread's receive buffer, shared by its sockets (a datagram is parsed, its payload
    copied, before the next is read: reader callbacks run one at a time on a loop's thread)."""
    pair: tuple[bytearray, memoryview] | None = getattr(_local, "buffer", None)
    if pair is None:
        buf = bytearray(_RECV_BUFFER)
        pair = _local.buffer = (buf, memoryview(buf))
    return pair


class RtpSocket:
    """One call's RTP socket. Create with :meth:`open`; ``close`` returns the port to its range.

    The socket is driven by the loop's reader callback directly (``loop.add_reader``), not by an
    asyncio datagram transport: the transport reads every datagram into a fresh 256 KiB bytes
    object (``recvfrom(256 * 1024)``), which costs 1.5-2 us a packet when glibc serves it from the
    heap and ~20 us when it maps and unmaps it (a process whose malloc has not raised its mmap
    threshold), and it builds the source address tuple even for a connected socket. Here a
    datagram is read into one preallocated buffer (``recv_into``; ``recvfrom_into`` only while
    not connected) and parsed from it; the payload is the only copy."""

    def __init__(self) -> None:
        self.stats = RtpStats()
        self.foreign = 0
        self.icmp_errors = 0
        self.send_dropped = 0  # datagrams dropped because the send backlog was full
        self.remote: tuple[str, int] | None = None
        self.local: tuple[str, int] = ("", 0)
        self.on_packet: PacketHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._fd = -1
        self._buf, self._view = _receive_buffer()
        self._backlog: deque[bytes] = deque()  # datagrams waiting for the send buffer, in order
        self._range: PortRange | None = None
        self._remote_any_host = False
        self._connected = False
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
            sock.setblocking(False)
            self._fd = sock.fileno()
            loop.add_reader(self._fd, self._readable)
        except BaseException:
            sock.close()
            self._range.release(self.local[1])
            raise
        self._loop = loop
        self._sock = sock
        return self

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._sock is None

    def set_remote(self, host: str, port: int) -> None:
        """Where to send, and the only source accepted (any host when ``host`` is unspecified).

        A remote given as an IP address is ``connect``-ed: the kernel then drops datagrams from
        anyone else before they reach Python, and ``send`` skips parsing the address on every
        packet (a sixth of a send's cost). With an unspecified host or a host name the source is
        matched here on the port only; datagrams from elsewhere are dropped and counted in
        ``foreign``. Before the first remote nothing is accepted (datagrams then are dropped
        and counted in ``foreign``): a socket bound to 0.0.0.0 hears no stranger while the
        externalMedia channel is being created."""
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
        sock = self._sock
        if self.remote is None and sock is not None:
            self._drop_queued(sock)
        self._remote_any_host = any_host
        self.remote = (host, port)
        self._connected = False
        if not any_host and sock is not None:
            try:
                sock.connect(self.remote)
                self._connected = True
            except OSError as exc:  # e.g. an IPv4 remote on an IPv6 socket: send with sendto
                log.debug("RTP socket not connected to %s:%s: %s", host, port, exc)

    def send(self, data: bytes) -> None:
        """Send one datagram to the remote (dropped silently when closed or no remote yet).

        Straight from the socket; when its send buffer is full the datagram waits in a backlog
        that the loop drains once the socket is writable, and later datagrams queue behind it,
        so order is kept (past ``_BACKLOG_LIMIT`` waiting, new ones are dropped and counted in
        ``send_dropped``: late audio is worth nothing)."""
        sock = self._sock
        if sock is None or self.remote is None:
            return
        if self._backlog:
            self._queue(data)
            return
        try:
            if self._connected:
                sock.send(data)
            else:
                sock.sendto(data, self.remote)
        except (BlockingIOError, InterruptedError):
            self._queue(data)
        except OSError as exc:  # ICMP unreachable from an earlier packet, and the like
            self.icmp_errors += 1
            log.debug("RTP send error: %s", exc)

    def send_from_thread(self, data: bytes) -> None:
        """:meth:`send` for a thread other than the loop's (``ThreadPacer``'s).

        On a connected socket with nothing waiting in the backlog, the datagram goes straight to
        the kernel through ``send(2)`` called with the GIL held, so the loop thread cannot run
        between two datagrams of a tick (``socket.send`` releases the GIL, and taking it back
        from a busy loop thread can take ``sys.getswitchinterval()``). Anything else (no
        connected remote, a backlog, a full send buffer) is handed to the loop thread's
        :meth:`send`, which keeps the order and the backlog's limits."""
        loop = self._loop
        if self._sock is None or loop is None:
            return
        if self._connected and not self._backlog:
            if _libc_send(self._fd, data, len(data), _MSG_DONTWAIT) >= 0:
                return
            err = ctypes.get_errno()
            if err not in _RETRY:  # ICMP unreachable from an earlier packet, a closed fd...
                self.icmp_errors += 1
                log.debug("RTP send error: %s", errno.errorcode.get(err, err))
                return
        try:
            loop.call_soon_threadsafe(self.send, data)
        except RuntimeError:  # the loop is closed: the call is over
            pass

    def _queue(self, data: bytes) -> None:
        if len(self._backlog) >= _BACKLOG_LIMIT:
            self.send_dropped += 1
            return
        if not self._backlog and self._loop is not None:
            self._loop.add_writer(self._fd, self._writable)
        self._backlog.append(data)

    def _writable(self) -> None:
        """Send the backlog, oldest first, until the buffer is full again or it is empty."""
        sock, backlog = self._sock, self._backlog
        while sock is not None and backlog and self.remote is not None:
            try:
                if self._connected:
                    sock.send(backlog[0])
                else:
                    sock.sendto(backlog[0], self.remote)
            except (BlockingIOError, InterruptedError):
                return  # still full: called again when writable
            except OSError as exc:
                self.icmp_errors += 1
                log.debug("RTP send error: %s", exc)
            backlog.popleft()
        backlog.clear()
        if self._loop is not None and self._fd >= 0:
            self._loop.remove_writer(self._fd)

    def _readable(self) -> None:
        """The loop's reader callback: one datagram, parsed from the shared buffer."""
        sock = self._sock
        if sock is None:
            return  # closed earlier in this loop iteration
        try:
            if self._connected:
                size = sock.recv_into(self._buf)
            else:
                size, addr = sock.recvfrom_into(self._buf)
                if not self._accepts(addr):
                    self.foreign += 1
                    return
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            # ICMP port unreachable and the like: the peer is not listening (yet); never fatal.
            self.icmp_errors += 1
            log.debug("RTP socket error: %s", exc)
            return
        packet = self.stats.parse(self._view[:size])
        if packet is not None and self.on_packet is not None:
            self.on_packet(packet)

    def _accepts(self, addr: tuple[str | object, ...]) -> bool:
        remote = self.remote  # None until set_remote: Asterisk sends nothing before that
        return remote is not None and (
            addr[1] == remote[1] and (self._remote_any_host or addr[0] == remote[0])
        )

    def _drop_queued(self, sock: socket.socket) -> None:
        """Drop the datagrams queued before the first remote was known (a stranger's: Asterisk
        sends no RTP before the externalMedia answer), counted in ``foreign``; ``connect``
        does not flush them and ``recv_into`` would take them."""
        while True:
            try:
                sock.recv_into(self._buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error queued on the socket: nothing else to drop
                return
            self.foreign += 1

    def close(self) -> None:
        """Close the socket (idempotent); its port goes back to its range at once."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        loop, fd = self._loop, self._fd
        if loop is not None and not loop.is_closed():
            loop.remove_reader(fd)
            if self._backlog:
                loop.remove_writer(fd)
        self._backlog.clear()
        self._fd = -1
        sock.close()
        self._lost()

    async def aclose(self) -> None:
        """Close and wait until the port is back in its range; the packet handler is dropped
        (often a bound method of the socket's owner: no reference cycle is left behind)."""
        self.close()
        self.on_packet = None
        await self._gone.wait()

    def _lost(self) -> None:
        if not self._gone.is_set():
            self._gone.set()
            if self._range is not None:
                self._range.release(self.local[1])
