"""externalMedia over RTP/UDP: the sandbox's side of UnicastRTP channels, batched.

Like chan_rtp with strict RTP: each channel has its own UDP socket, always sends to
``external_host`` and accepts packets only from it. All sockets belong to one
:class:`RtpPlane`, which works in batches on the PBX's shared 20 ms tick instead of one
asyncio callback per packet:

- ``drain()`` reads every readable socket (one ``epoll`` poll) and decodes payloads into each
  channel's FIFO, which the tick reads as the far end's voice;
- the tick's ``hear()`` only stages each channel's frame; ``prepare()`` then encodes all staged
  frames of a codec in one numpy table lookup and builds the packets with ``struct.pack_into``
  into one preallocated buffer;
- ``send_slot()`` sends them with one ``sendto`` loop at the start of the next period, in slots
  of at most :data:`SLOT_SIZE` packets :data:`SLOT_GAP` seconds apart (each channel keeps its
  slot, so its own cadence stays 20 ms; compare Asterisk, where every bridge has its own timer
  phase). A packet's lateness is measured against its slot's absolute time.

Faults (loss, reorder, jitter) apply to what the sandbox sends.
"""

from __future__ import annotations

import logging
import math
import random
import select
import selectors
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from voxflow.errors import MediaError, RtpPacketError
from voxflow.media.codecs import CODECS
from voxflow.media.rtp import RTP_HEADER_SIZE, parse_rtp

from .audio import (
    DECODE_TABLES,
    ENCODE_TABLES,
    FRAME_SAMPLES,
    Frame,
    decode_payload,
    slin16_rows_to_8k,
    upsample_16k,
)

__all__ = [
    "PAYLOAD_TYPES",
    "SLOT_GAP",
    "SLOT_SIZE",
    "LatenessProbe",
    "RtpFar",
    "RtpFaults",
    "RtpPlane",
]

log = logging.getLogger(__name__)

PAYLOAD_TYPES = {name: CODECS[name].payload_type for name in ("ulaw", "alaw", "slin16")}
SLOT_SIZE = 64  # packets per send slot (~0.25 ms of sendto on loopback)
SLOT_GAP = 0.0005  # seconds between slots
MAX_SLOTS = 16  # beyond 16 * 64 packets the slots grow instead
_HDR = struct.Struct("!BBHII")
_MAX_READS = 16  # datagrams read per socket per tick (a flood cannot starve the tick)
_Out = tuple["RtpFar", "memoryview | bytes"]  # a packet ready to go and who sends it


class RtpFaults:
    """Impairments applied to packets the sandbox sends (seeded, so runs repeat)."""

    def __init__(self, seed: int = 1) -> None:
        self.loss = 0.0
        self.reorder = 0.0
        self.jitter_ms = 0.0
        self.rng = random.Random(seed)

    @property
    def active(self) -> bool:
        return bool(self.loss or self.reorder or self.jitter_ms)


class LatenessProbe:
    """How late each sent packet left, in seconds, against its slot's scheduled time."""

    def __init__(self, limit: int = 2_000_000) -> None:
        self.samples: list[float] = []
        self.limit = limit


class RtpFar:
    """The far end of one externalMedia channel: an RTP peer at ``remote``."""

    wants_tick = True

    def __init__(
        self, plane: RtpPlane, sock: socket.socket, codec: str, remote: tuple[str, int]
    ) -> None:
        self.plane = plane
        self.sock = sock
        self.codec = codec
        self.pt = PAYLOAD_TYPES[codec]
        self.step = CODECS[codec].frame_samples()
        self.fast_size = RTP_HEADER_SIZE + CODECS[codec].frame_bytes()
        self.remote = remote
        rng = random.Random()
        self.ssrc = rng.getrandbits(32)
        self.seq = rng.getrandbits(16)
        self.ts = rng.getrandbits(32)
        self.inbox: deque[Frame] = deque(maxlen=50)
        self.staged: Frame | None = None
        self.held: bytes | None = None  # a packet kept back by the reorder fault
        self.gap = False  # nothing was sent last period(s): the next packet carries the marker
        self.partial_waited = False  # the inbox's last part of a frame waited a tick already
        self.packets_in = 0
        self.packets_out = 0
        self.dropped_foreign = 0
        self.rejected = 0
        self.closed = False

    # --- receiving (called by RtpPlane.drain) ------------------------------------------------

    def receive(self, data: bytes) -> None:
        """A datagram of an unusual shape from the remote (the plane checked the source):
        full RTP parse, then decode into the inbox."""
        try:
            pkt = parse_rtp(data)
        except RtpPacketError:
            self.rejected += 1
            return
        if pkt.payload_type != self.pt or not pkt.payload:
            return
        try:
            frame = decode_payload(pkt.payload, self.codec)
        except (ValueError, MediaError):
            self.rejected += 1
            return
        self.packets_in += 1
        self.inbox.append(frame)

    # --- FarEnd --------------------------------------------------------------------------------

    def next_spoken(self) -> Frame | None:
        q = self.inbox
        if not q:
            return None
        if len(q[0]) != FRAME_SAMPLES:  # 10/30 ms packets: cut the stream into 20 ms frames
            joined = np.concatenate(list(q))
            q.clear()
            whole = len(joined) // FRAME_SAMPLES * FRAME_SAMPLES
            for i in range(0, whole, FRAME_SAMPLES):
                q.append(joined[i : i + FRAME_SAMPLES])
            if whole < len(joined):
                q.append(joined[whole:])
            if len(q[0]) != FRAME_SAMPLES:
                # A part of a frame waits one tick for the packet that continues it; then it
                # is the end of a talkspurt (as Asterisk, which forwards every frame it gets,
                # the caller hears it, padded with silence, not with the next talkspurt).
                self.partial_waited = not self.partial_waited
                if self.partial_waited:
                    return None
                part = q.popleft()
                return np.concatenate([part, np.zeros(FRAME_SAMPLES - len(part), np.int16)])
        self.partial_waited = False
        return q.popleft()

    def hear(self, frame: Frame | None, tick: int) -> None:
        """Stage ``frame`` for sending. No frame (nothing plays, a 2-channel bridge with nobody
        talking) sends no packet, as Asterisk: the sequence number then continues, the timestamp
        follows the elapsed time and the next packet has the marker bit (rtp-silence.json)."""
        if self.closed:
            return
        if frame is None:
            if self.packets_out:  # before the first packet the timestamp does not run
                self.gap = True
                self.ts = (self.ts + self.step) & 0xFFFFFFFF
            return
        self.staged = frame
        self.plane.staged.append(self)

    def far_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "hangup":
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.plane.unregister(self)


class RtpPlane:
    """Every externalMedia socket of one sandbox, drained, encoded and sent in batches."""

    def __init__(
        self,
        faults: RtpFaults,
        lateness: LatenessProbe | None,
        call_later: Callable[[float, Callable[[], None]], object],
    ) -> None:
        self.faults = faults
        self.lateness = lateness
        self._call_later = call_later
        self.fars: dict[int, RtpFar] = {}
        self.staged: list[RtpFar] = []
        # The poller is made with the first socket (a sandbox without RTP holds no extra fd).
        self._epoll: Any = None
        self._selector: selectors.BaseSelector | None = None
        self._bufs: dict[str, bytearray] = {}
        self.skipped_packets = 0  # packets never sent because their period was skipped
        # The next period's packets, in send order, cut into slots.
        self._slots: list[list[_Out]] = []

    # --- sockets -------------------------------------------------------------------------------

    def open(
        self, host: str, codec: str, remote: tuple[str, int]
    ) -> tuple[RtpFar, tuple[str, int]]:
        """Bind a UDP socket on ``host`` (ephemeral port) for one externalMedia channel."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((host, 0))
        except OSError:
            sock.close()
            raise
        if self._epoll is None and self._selector is None:
            if hasattr(select, "epoll"):
                self._epoll = select.epoll()
            else:
                self._selector = selectors.DefaultSelector()
        far = RtpFar(self, sock, codec, remote)
        fd = sock.fileno()
        self.fars[fd] = far
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLIN)
        elif self._selector is not None:
            self._selector.register(sock, selectors.EVENT_READ, far)
        local = sock.getsockname()
        return far, (local[0], local[1])

    def unregister(self, far: RtpFar) -> None:
        """Forget and close ``far``'s socket (packets already staged for it are dropped)."""
        fd = far.sock.fileno()
        if fd >= 0 and self.fars.get(fd) is far:
            del self.fars[fd]
            if self._epoll is not None:
                self._epoll.unregister(fd)
            elif self._selector is not None:
                self._selector.unregister(far.sock)
        far.sock.close()

    def close(self) -> None:
        """Close every socket and the poller."""
        for far in list(self.fars.values()):
            far.close()
        self._slots = []
        if self._epoll is not None:
            self._epoll.close()
        elif self._selector is not None:
            self._selector.close()
        self._epoll = self._selector = None

    # --- receiving -----------------------------------------------------------------------------

    def drain(self) -> None:
        """Read what every readable socket holds: one datagram per ready socket per poll
        round (a few rounds at most, so a flood cannot starve the tick), then decode each
        codec's payloads in one table lookup."""
        fars = self.fars
        if not fars:
            return
        got: dict[str, tuple[list[RtpFar], list[bytes]]] = {}
        for _ in range(_MAX_READS):
            if self._epoll is not None:
                ready = [fars[fd] for fd, _ in self._epoll.poll(0) if fd in fars]
            elif self._selector is not None:
                ready = [key.data for key, _ in self._selector.select(0)]
            else:
                ready = []
            if not ready:
                break
            for far in ready:
                try:
                    data, addr = far.sock.recvfrom(2048)
                except OSError:  # EAGAIN, or e.g. ICMP port unreachable reported on the socket
                    continue
                remote = far.remote
                if addr[0] != remote[0] or addr[1] != remote[1]:
                    far.dropped_foreign += 1
                elif len(data) == far.fast_size and data[0] == 0x80 and data[1] & 0x7F == far.pt:
                    # The common shape (no CSRC, extension or padding; a 20 ms payload).
                    entry = got.get(far.codec)
                    if entry is None:
                        entry = got[far.codec] = ([], [])
                    entry[0].append(far)
                    entry[1].append(data)
                else:
                    far.receive(data)
        for codec, (who, packets) in got.items():
            table = DECODE_TABLES.get(codec)
            size = who[0].fast_size
            raw = np.frombuffer(b"".join(packets), dtype=np.uint8).reshape(-1, size)
            if table is not None:
                frames = table[raw[:, RTP_HEADER_SIZE:]]
            else:
                frames = slin16_rows_to_8k(raw[:, RTP_HEADER_SIZE:])
            for i, far in enumerate(who):
                far.packets_in += 1
                far.inbox.append(frames[i])

    # --- sending -------------------------------------------------------------------------------

    def skip_periods(self, n: int) -> None:
        """``n`` 20 ms periods were skipped: advance every stream's RTP timestamp over them; the
        next packet has the marker bit, as after any gap (rtp-silence.json)."""
        for far in self.fars.values():
            far.ts = (far.ts + n * far.step) & 0xFFFFFFFF
            far.gap = far.gap or far.packets_out > 0
        self.skipped_packets += n * len(self.fars)

    @property
    def pending(self) -> bool:
        """Whether packets are prepared for the next period."""
        return bool(self._slots)

    @property
    def slot_count(self) -> int:
        """Slots the next period sends in (at least 1)."""
        return max(1, len(self._slots))

    def prepare(self) -> None:
        """Encode every staged frame (one table lookup per codec) and build the packets."""
        staged, self.staged = self.staged, []
        out: list[_Out] = []
        by_codec: dict[str, list[RtpFar]] = {}
        for far in staged:
            if not far.closed:
                by_codec.setdefault(far.codec, []).append(far)
        for codec, fars in by_codec.items():
            frames = np.stack([f.staged for f in fars])  # type: ignore[misc]  # staged: all set
            table = ENCODE_TABLES.get(codec)
            if table is not None:
                payloads = table[frames.view(np.uint16)]
            else:  # slin16: 16 kHz big-endian
                payloads = upsample_16k(frames).astype(">i2").view(np.uint8)
            size = RTP_HEADER_SIZE + payloads.shape[1]
            buf = self._buffer(codec, size * len(fars))
            grid = np.frombuffer(buf, dtype=np.uint8, count=size * len(fars)).reshape(-1, size)
            grid[:, RTP_HEADER_SIZE:] = payloads
            view = memoryview(buf)
            pack = _HDR.pack_into
            for i, far in enumerate(fars):
                off = i * size
                pack(
                    buf, off, 0x80, far.pt | 0x80 if far.gap else far.pt, far.seq, far.ts, far.ssrc
                )
                far.gap = False
                far.seq = (far.seq + 1) & 0xFFFF
                far.ts = (far.ts + far.step) & 0xFFFFFFFF
                far.staged = None
                far.packets_out += 1
                out.append((far, view[off : off + size]))
        if self.faults.active:
            out = self._impair(out)
        if not out:
            self._slots = []
            return
        nslots = min(MAX_SLOTS, math.ceil(len(out) / SLOT_SIZE))
        per = math.ceil(len(out) / nslots)
        self._slots = [out[i : i + per] for i in range(0, len(out), per)]

    def _buffer(self, codec: str, size: int) -> bytearray:
        buf = self._bufs.get(codec)
        if buf is None or len(buf) < size:
            buf = bytearray(max(size, 2 * len(buf) if buf else size))
            self._bufs[codec] = buf
        return buf

    def send_slot(self, index: int, scheduled: float) -> None:
        """Send slot ``index`` of the prepared packets; lateness is against ``scheduled``
        (monotonic seconds, the loop's clock)."""
        if index >= len(self._slots):
            return
        batch = self._slots[index]
        probe = self.lateness
        if probe is None or len(probe.samples) >= probe.limit:
            for far, pkt in batch:
                try:
                    far.sock.sendto(pkt, far.remote)
                except OSError:  # closed under us, or an ICMP error: Asterisk carries on
                    pass
            return
        samples = probe.samples
        now = time.monotonic
        for far, pkt in batch:
            try:
                far.sock.sendto(pkt, far.remote)
            except OSError:
                continue
            samples.append(now() - scheduled)

    def _impair(self, out: list[_Out]) -> list[_Out]:
        f = self.faults
        kept: list[_Out] = []
        for far, pkt in out:
            if f.loss and f.rng.random() < f.loss:
                continue
            if f.reorder and far.held is None and f.rng.random() < f.reorder:
                far.held = bytes(pkt)
                continue
            batch: list[bytes | memoryview] = [pkt]
            if far.held is not None:
                batch.append(far.held)
                far.held = None
            for p in batch:
                if f.jitter_ms:
                    delay = f.rng.uniform(0, f.jitter_ms) / 1000
                    self._call_later(delay, _sender(far, bytes(p)))
                else:
                    kept.append((far, p))
        return kept


def _sender(far: RtpFar, pkt: bytes) -> Callable[[], None]:
    def send() -> None:
        if not far.closed:
            try:
                far.sock.sendto(pkt, far.remote)
            except OSError:
                pass

    return send
