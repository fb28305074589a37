"""RFC 6455 frames of the ARI websocket: pure code, bytes in, messages out.

:class:`FrameDecoder` turns what the peer sends into whole messages: unmasked frames from a
server (RFC 6455 section 5; the client side, the hot path), or masked frames from a client
(``masked=True``: voxflow as the server of Asterisk's outbound websocket). Fragments are
joined, control frames (ping, pong, close) are set aside for the connection to answer. The
common frame, one complete TEXT or BINARY frame, costs one comparison and one slice; everything
else takes the careful path. Protocol violations raise :class:`WsProtocolError` with the close
code to send. Outgoing frames are serialized by the ``websockets`` library
(:func:`client_frame` masked, :func:`server_frame` not).
"""

from __future__ import annotations

from websockets.exceptions import ProtocolError
from websockets.frames import Close, Frame, Opcode
from websockets.utils import apply_mask

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "FrameDecoder",
    "WsProtocolError",
    "client_frame",
    "parse_close",
    "server_frame",
]

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
_DATA_OPS = (OP_TEXT, OP_BINARY)
_CONTROL_OPS = (OP_CLOSE, OP_PING, OP_PONG)
_FIN = 0x80
_RSV = 0x70
# Byte 0 of a complete, unfragmented, extension-free TEXT / BINARY frame.
_WHOLE_TEXT, _WHOLE_BINARY = _FIN | OP_TEXT, _FIN | OP_BINARY

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_TOO_BIG = 1009


class WsProtocolError(Exception):
    """The server broke RFC 6455; ``code`` is the close code to answer with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _extended_length(buf: bytes, pos: int, length: int) -> tuple[int, int] | None:
    """(payload length, where the mask key or payload starts) of the frame at ``pos`` whose
    7-bit length is 126 (a 16-bit length follows) or 127 (a 64-bit one); None while those
    bytes have not all arrived."""
    if length == 126:
        if len(buf) - pos < 4:
            return None
        return (buf[pos + 2] << 8) | buf[pos + 3], pos + 4
    if len(buf) - pos < 10:
        return None
    return int.from_bytes(buf[pos + 2 : pos + 10], "big"), pos + 10


class FrameDecoder:
    """Incremental decoder of server-to-client frames.

    :meth:`feed` returns the data messages completed by ``data``, in order. Control frames land in
    :attr:`control` as ``(opcode, payload)`` for the caller to answer; after a close frame nothing
    more is decoded (:attr:`close_frame` holds its payload).
    """

    def __init__(self, max_size: int = 16 * 1024 * 1024, *, masked: bool = False) -> None:
        self.max_size = max_size
        self.masked = masked
        self.control: list[tuple[int, bytes]] = []
        self.close_frame: bytes | None = None
        self._pending: list[bytes] = []  # an incomplete frame, kept as the chunks it came in
        self._pending_len = 0
        self._need = 0  # bytes the pending frame needs before it can be decoded
        self._fragments: list[bytes] = []
        self._fragment_len = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Decode ``data``; return the payloads of the messages it completes."""
        if self.close_frame is not None:
            return []
        if self._pending:
            self._pending.append(data)
            self._pending_len += len(data)
            if self._pending_len < self._need:
                return []  # a large frame still arriving: no copying until it is complete
            data = b"".join(self._pending)
            self._pending, self._pending_len = [], 0
        if self.masked:
            return self._feed_masked(data)
        out: list[bytes] = []
        append = out.append
        buf = data
        n = len(buf)
        pos = 0
        need = 0  # 0: the header is incomplete (a few bytes): decode again on the next feed
        while n - pos >= 2:
            length = buf[pos + 1]
            if length < 126:
                start = pos + 2
            elif length <= 127:
                extended = _extended_length(buf, pos, length)
                if extended is None:
                    break
                length, start = extended
            else:  # the MASK bit (0x80) is set: servers never mask (RFC 6455 5.1)
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "masked frame from the server")
            if length > self.max_size:
                raise WsProtocolError(CLOSE_TOO_BIG, f"frame of {length} bytes is too big")
            end = start + length
            if end > n:
                need = end - pos
                break
            head = buf[pos]
            if (head == _WHOLE_TEXT or head == _WHOLE_BINARY) and not self._fragments:
                append(buf[start:end])
            elif not self._other(head, buf[start:end], out):
                return out  # a close frame: the rest is not decoded
            pos = end
        if pos < n:
            rest = buf[pos:]
            self._pending, self._pending_len, self._need = [rest], len(rest), need
        return out

    def _feed_masked(self, buf: bytes) -> list[bytes]:
        """Frames from a client: each carries a 4-byte mask key (RFC 6455 5.3)."""
        out: list[bytes] = []
        n = len(buf)
        pos = 0
        need = 0
        while n - pos >= 2:
            length = buf[pos + 1]
            if not length & 0x80:
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "unmasked frame from the client")
            length &= 0x7F
            start = pos + 2
            if length >= 126:
                extended = _extended_length(buf, pos, length)
                if extended is None:
                    break
                length, start = extended
            if length > self.max_size:
                raise WsProtocolError(CLOSE_TOO_BIG, f"frame of {length} bytes is too big")
            end = start + 4 + length
            if end > n:
                need = end - pos
                break
            payload = apply_mask(buf[start + 4 : end], buf[start : start + 4])
            head = buf[pos]
            if (head == _WHOLE_TEXT or head == _WHOLE_BINARY) and not self._fragments:
                out.append(payload)
            elif not self._other(head, payload, out):
                return out
            pos = end
        if pos < n:
            rest = buf[pos:]
            self._pending, self._pending_len, self._need = [rest], len(rest), need
        return out

    def _other(self, head: int, payload: bytes, out: list[bytes]) -> bool:
        """Everything but a whole data frame; False after a close frame."""
        if head & _RSV:
            raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "reserved bits set (no extension agreed)")
        opcode = head & 0x0F
        fin = bool(head & _FIN)
        if opcode in _CONTROL_OPS:
            if not fin or len(payload) > 125:
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "fragmented or oversized control frame")
            if opcode == OP_CLOSE:
                self.close_frame = payload
                return False
            self.control.append((opcode, payload))
            return True
        if opcode in _DATA_OPS:
            if self._fragments:
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one")
            if fin:
                out.append(payload)
            else:
                self._fragments, self._fragment_len = [payload], len(payload)
            return True
        if opcode != OP_CONT:
            raise WsProtocolError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
        if not self._fragments:
            raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "continuation frame without a message")
        self._fragment_len += len(payload)
        if self._fragment_len > self.max_size:
            raise WsProtocolError(CLOSE_TOO_BIG, f"message over {self.max_size} bytes")
        self._fragments.append(payload)
        if fin:
            out.append(b"".join(self._fragments))
            self._fragments, self._fragment_len = [], 0
        return True


def client_frame(opcode: int, payload: bytes = b"") -> bytes:
    """One masked client-to-server frame (RFC 6455 5.3), serialized by ``websockets``."""
    return Frame(Opcode(opcode), payload).serialize(mask=True)


def server_frame(opcode: int, payload: bytes = b"") -> bytes:
    """One unmasked server-to-client frame (RFC 6455 5.2)."""
    return Frame(Opcode(opcode), payload).serialize(mask=False)


def parse_close(payload: bytes) -> tuple[int, str]:
    """``(code, reason)`` of a close frame's payload; 1005 when it carries none."""
    if not payload:
        return 1005, ""
    try:
        close = Close.parse(payload)
    except (ProtocolError, ValueError):  # a bad code or a reason that is not UTF-8
        return CLOSE_PROTOCOL_ERROR, "malformed close frame"
    return close.code, close.reason
