"""RTP packets (RFC 3550): parse, serialize, check. Pure code, no sockets.

Wire layout (12-byte fixed header, then CSRCs, optional extension, payload, optional padding)::

    V=2 | P | X | CC(4) || M | PT(7) || sequence(16) || timestamp(32) || SSRC(32)
    CSRC(32) * CC
    [extension: profile(16) | length in 32-bit words(16) | data]
    payload
    [padding; last byte = padding length, including itself]

``parse_rtp`` rejects malformed or truncated packets with :class:`RtpPacketError` (a
``MediaError`` and ``ValueError``); receivers count those in :class:`RtpStats` and carry on.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from voxflow.errors import RtpPacketError

__all__ = [
    "RTP_HEADER_SIZE",
    "RtpExtension",
    "RtpPacket",
    "RtpStats",
    "check_rtp",
    "parse_rtp",
    "seq_delta",
    "serialize_rtp",
    "ts_delta",
]

RTP_HEADER_SIZE = 12
_HEADER = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """A header extension: 16-bit profile-defined id and its data (a multiple of 4 bytes)."""

    profile: int
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet. ``padding`` is the number of padding bytes (0 = no P bit), count byte
    included; ``extension`` is None when the X bit is clear."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Same as :func:`parse_rtp`."""
        return parse_rtp(data)

    def serialize(self) -> bytes:
        """Same as :func:`serialize_rtp`."""
        return serialize_rtp(self)

    def check(self) -> None:
        """Same as :func:`check_rtp`."""
        check_rtp(self)


def check_rtp(packet: RtpPacket) -> None:
    """Raise :class:`RtpPacketError` when ``packet`` cannot be put on the wire as is."""
    if not 0 <= packet.payload_type <= 127:
        raise RtpPacketError(f"payload type {packet.payload_type} outside 0..127")
    if not 0 <= packet.sequence <= 0xFFFF:
        raise RtpPacketError(f"sequence {packet.sequence} outside 0..65535")
    if not 0 <= packet.timestamp <= 0xFFFFFFFF:
        raise RtpPacketError(f"timestamp {packet.timestamp} outside 32 bits")
    if not 0 <= packet.ssrc <= 0xFFFFFFFF:
        raise RtpPacketError(f"ssrc {packet.ssrc} outside 32 bits")
    if len(packet.csrcs) > 15:
        raise RtpPacketError(f"{len(packet.csrcs)} CSRCs, at most 15 allowed")
    for csrc in packet.csrcs:
        if not 0 <= csrc <= 0xFFFFFFFF:
            raise RtpPacketError(f"csrc {csrc} outside 32 bits")
    if not 0 <= packet.padding <= 255:
        raise RtpPacketError(f"padding {packet.padding} outside 0..255")
    ext = packet.extension
    if ext is not None:
        if not 0 <= ext.profile <= 0xFFFF:
            raise RtpPacketError(f"extension profile {ext.profile} outside 16 bits")
        if len(ext.data) % 4:
            raise RtpPacketError("extension data length is not a multiple of 4 bytes")
        if len(ext.data) // 4 > 0xFFFF:
            raise RtpPacketError("extension data too long")


def _plain_packet_maker() -> Callable[[int, int, int, int, bytes, bool], RtpPacket]:
    """A constructor for packets without CSRCs, extension or padding that fills the slots
    directly (the frozen dataclass ``__init__`` costs a ``object.__setattr__`` per field: half
    of a parse, at 25k packets/s)."""
    new = object.__new__
    names: tuple[str, ...] = ("payload_type", "sequence", "timestamp", "ssrc", "payload")
    names += ("marker", "csrcs", "extension", "padding")
    if set(names) != {f.name for f in fields(RtpPacket)}:  # pragma: no cover - a new field
        raise TypeError("RtpPacket fields changed: update _plain_packet_maker")
    s_pt, s_seq, s_ts, s_ssrc, s_payload, s_marker, s_csrcs, s_ext, s_pad = (
        getattr(RtpPacket, name).__set__ for name in names
    )

    def make(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool) -> RtpPacket:
        p: RtpPacket = new(RtpPacket)
        s_pt(p, pt)
        s_seq(p, seq)
        s_ts(p, ts)
        s_ssrc(p, ssrc)
        s_payload(p, payload)
        s_marker(p, marker)
        s_csrcs(p, ())
        s_ext(p, None)
        s_pad(p, 0)
        return p

    return make


_plain_packet = _plain_packet_maker()
_PLAIN = struct.Struct("!xBHII")


def parse_rtp(data: bytes | bytearray | memoryview) -> RtpPacket:
    """Decode one datagram. Raises :class:`RtpPacketError` saying what is wrong."""
    size = len(data)
    if size >= RTP_HEADER_SIZE and data[0] == 0x80:  # V=2, no padding/extension/CSRC: the usual
        b1, seq, ts, ssrc = _PLAIN.unpack_from(data, 0)
        return _plain_packet(b1 & 0x7F, seq, ts, ssrc, bytes(data[12:]), b1 > 0x7F)
    if size < RTP_HEADER_SIZE:
        raise RtpPacketError(
            f"truncated: {size} bytes, the RTP header needs 12", reason="truncated"
        )
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data, 0)
    version = b0 >> 6
    if version != 2:
        raise RtpPacketError(f"bad version {version}, expected 2", reason="version")
    csrcs, offset = _parse_csrcs(data, b0 & 0x0F)
    extension = None
    if b0 & 0x10:
        extension, offset = _parse_extension(data, offset)
    padding = _parse_padding(data, offset) if b0 & 0x20 else 0
    return RtpPacket(
        payload_type=b1 & 0x7F,
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[offset : size - padding]),
        marker=bool(b1 & 0x80),
        csrcs=csrcs,
        extension=extension,
        padding=padding,
    )


def _parse_csrcs(data: bytes | bytearray | memoryview, cc: int) -> tuple[tuple[int, ...], int]:
    """The ``cc`` CSRC identifiers after the fixed header, and the offset past them."""
    offset = RTP_HEADER_SIZE
    if not cc:
        return (), offset
    end = offset + 4 * cc
    if end > len(data):
        raise RtpPacketError(
            f"CSRC count {cc} runs past the end of a {len(data)}-byte packet", reason="csrc"
        )
    return struct.unpack_from(f"!{cc}I", data, offset), end


def _parse_extension(data: bytes | bytearray | memoryview, offset: int) -> tuple[RtpExtension, int]:
    """The header extension at ``offset``, and the offset past it."""
    size = len(data)
    if offset + 4 > size:
        raise RtpPacketError("extension header runs past the end of the packet", reason="extension")
    profile, words = _EXT_HEADER.unpack_from(data, offset)
    offset += 4
    end = offset + 4 * words
    if end > size:
        raise RtpPacketError(
            f"extension length {words} words runs past the end of a {size}-byte packet",
            reason="extension",
        )
    return RtpExtension(profile, bytes(data[offset:end])), end


def _parse_padding(data: bytes | bytearray | memoryview, offset: int) -> int:
    """The padding count (the last byte) of a packet whose body starts at ``offset``."""
    padding = data[len(data) - 1]
    if padding == 0:
        raise RtpPacketError("padding bit set with a zero padding count", reason="padding")
    if offset + padding > len(data):
        raise RtpPacketError(
            f"padding of {padding} bytes is longer than the packet body", reason="padding"
        )
    return padding


def serialize_rtp(packet: RtpPacket) -> bytes:
    """Encode ``packet`` (checked first); padding bytes are zeros ending with the count."""
    check_rtp(packet)
    b0 = 0x80 | len(packet.csrcs)
    if packet.padding:
        b0 |= 0x20
    if packet.extension is not None:
        b0 |= 0x10
    b1 = (0x80 if packet.marker else 0) | packet.payload_type
    parts = [_HEADER.pack(b0, b1, packet.sequence, packet.timestamp, packet.ssrc)]
    if packet.csrcs:
        parts.append(struct.pack(f"!{len(packet.csrcs)}I", *packet.csrcs))
    if packet.extension is not None:
        ext = packet.extension
        parts.append(_EXT_HEADER.pack(ext.profile, len(ext.data) // 4))
        parts.append(ext.data)
    parts.append(packet.payload)
    if packet.padding:
        parts.append(bytes(packet.padding - 1) + bytes((packet.padding,)))
    return b"".join(parts)


def seq_delta(a: int, b: int) -> int:
    """Signed distance from sequence ``b`` to ``a`` modulo 2**16, in -32768..32767."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def ts_delta(a: int, b: int) -> int:
    """Signed distance from timestamp ``b`` to ``a`` modulo 2**32."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000


@dataclass(slots=True)
class RtpStats:
    """Counters of one RTP receiver: packets accepted and rejected (by reason)."""

    received: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def parse(self, data: bytes | bytearray | memoryview) -> RtpPacket | None:
        """Parse ``data``; count and return None instead of raising when malformed."""
        try:
            packet = parse_rtp(data)
        except RtpPacketError as exc:
            self.rejected += 1
            self.reasons[exc.reason] += 1
            return None
        self.received += 1
        return packet
