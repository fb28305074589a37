"""The ARI websocket's protocol state, sans I/O: bytes in, messages and bytes out, no sockets.

:class:`WsProtocol` is one websocket connection on either side: ``client`` (voxflow connects to
Asterisk's ``/ari/events``) or ``server`` (Asterisk 22's outbound websocket connects to voxflow).
It makes every protocol decision and does no I/O, like ``websockets/protocol.py``; the asyncio
adapters (:mod:`voxflow.ari.wsconn`, :mod:`voxflow.ari.wsserver`) only move bytes and run timers.

- :meth:`receive_data` takes what arrived and returns the whole data messages it completes;
  :meth:`receive_eof` the end of the stream.
- :meth:`data_to_send` returns the bytes to write (handshake, pongs, pings, closes, messages).
- :meth:`tick` is the keepalive clock, called every half ``ping_interval``: after a whole interval
  with nothing received it queues a ping; if nothing at all arrives within half an interval more,
  it returns True: the peer is dead, drop the connection.
- :attr:`state` (``HANDSHAKE``, ``OPEN``, ``CLOSING``, ``CLOSED``); :attr:`close_transport` says
  the adapter should close its transport once the pending bytes are written.

The handshake is split: only the HTTP header block goes to the ``websockets`` library's Sans-IO
:class:`~websockets.client.ClientProtocol` / :class:`~websockets.server.ServerProtocol`; the bytes
after it are frames, kept in :attr:`leftover` until the owner feeds them (a client resyncs first).
Frames are decoded by :class:`~voxflow.ari.wsframes.FrameDecoder` (masked frames on the server).
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
from collections.abc import Callable
from http import HTTPStatus

from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from voxflow.ari.rest import error_for_status
from voxflow.ari.wsframes import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameDecoder,
    WsProtocolError,
    client_frame,
    parse_close,
    server_frame,
)
from voxflow.errors import AriConnectionError, AriError, AriHTTPError

__all__ = ["MAX_HEADERS", "Refusal", "RequestCheck", "WsProtocol", "WsState"]

log = logging.getLogger(__name__)

MAX_HEADERS = 64 * 1024


class WsState(enum.IntEnum):
    """Where a connection is in its life."""

    HANDSHAKE = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class Refusal:
    """A server's answer refusing an upgrade request: status, ARI ``message``, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


RequestCheck = Callable[[Request], "Refusal | None"]
_OPEN, _CLOSING = WsState.OPEN, WsState.CLOSING  # module globals: the hot path compares these


class WsProtocol:
    """One websocket connection's state. Build with :meth:`client` or :meth:`server`."""

    def __init__(
        self,
        handshake: ClientProtocol | ServerProtocol,
        *,
        ping_interval: float = 15.0,
        max_size: int = 16 * 1024 * 1024,
        check_request: RequestCheck | None = None,
    ) -> None:
        self.is_client = isinstance(handshake, ClientProtocol)
        self._handshake = handshake
        self._check_request = check_request
        self.ping_interval = ping_interval
        self.decoder = FrameDecoder(max_size, masked=not self.is_client)
        self._frame = client_frame if self.is_client else server_frame
        self.state = WsState.HANDSHAKE
        self._head = b""
        self._reading_body = False  # a refused handshake whose body is still arriving
        self.leftover = b""  # frames that came with the handshake
        self.outgoing: list[bytes] = []  # frames to write: read them with data_to_send()
        self._active = False  # something arrived since the last keepalive tick
        self._silent_ticks = 0
        self.close_transport = False
        self._peer_closed = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.handshake_error: AriError | None = None
        self.request: Request | None = None  # the upgrade request (server side)
        self.subprotocol: str | None = None

    # ------------------------------------------------------------------ construction

    @classmethod
    def client(
        cls,
        handshake: ClientProtocol,
        headers: dict[str, str],
        *,
        ping_interval: float = 15.0,
        max_size: int = 16 * 1024 * 1024,
    ) -> WsProtocol:
        """The client side: the upgrade request (with ``headers``) is queued at once."""
        proto = cls(handshake, ping_interval=ping_interval, max_size=max_size)
        request = handshake.connect()
        for name, value in headers.items():
            request.headers[name] = value
        handshake.send_request(request)
        proto.outgoing.extend(handshake.data_to_send())
        return proto

    @classmethod
    def server(
        cls,
        *,
        check_request: RequestCheck,
        subprotocols: tuple[str, ...] = ("ari",),
        ping_interval: float = 15.0,
        max_size: int = 16 * 1024 * 1024,
    ) -> WsProtocol:
        """The server side: ``check_request`` decides on each upgrade request (auth, path)."""
        handshake = ServerProtocol(
            subprotocols=[Subprotocol(p) for p in subprotocols], max_size=max_size
        )
        return cls(
            handshake, ping_interval=ping_interval, max_size=max_size, check_request=check_request
        )

    @property
    def is_open(self) -> bool:
        """True from the handshake until a close starts or the connection is lost."""
        return self.state == WsState.OPEN

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes) -> list[bytes]:
        """Take bytes from the peer; return the data messages they complete, in order."""
        state = self.state
        if state is _OPEN:
            return self._frames(data)
        if state is _CLOSING:
            self._frames(data)  # only the peer's close matters now
        elif self.state == WsState.HANDSHAKE:
            self._handshake_data(data)
        return []

    def receive_eof(self) -> None:
        """The peer closed its side of the stream."""
        if self.state == WsState.HANDSHAKE and self._reading_body:
            self._handshake.receive_eof()
            self._handshake_answer()
        self.close_transport = True

    def connection_lost(self) -> None:
        """The transport is gone (adapters call this from ``connection_lost``)."""
        if self.state == WsState.HANDSHAKE and self.handshake_error is None:
            self.handshake_error = AriConnectionError(
                "ARI websocket: connection closed during the websocket handshake"
            )
        self.state = WsState.CLOSED

    # ------------------------------------------------------------------ output

    def data_to_send(self) -> list[bytes]:
        """Bytes to write, in order (empties the queue)."""
        out, self.outgoing = self.outgoing, []
        return out

    def send_text(self, payload: bytes) -> None:
        """Queue one TEXT message (refused unless open)."""
        if self.state != WsState.OPEN:
            raise AriConnectionError("ARI websocket: the connection is not open")
        self.outgoing.append(self._frame(OP_TEXT, payload))

    def close(self, code: int = 1000) -> None:
        """Start the closing handshake (a close frame; the peer answers with its own)."""
        if self.state == WsState.OPEN:
            self.state = WsState.CLOSING
            self.outgoing.append(self._frame(OP_CLOSE, code.to_bytes(2, "big")))
        elif self.state == WsState.HANDSHAKE:
            self.close_transport = True

    # ------------------------------------------------------------------ keepalive

    def tick(self) -> bool:
        """One keepalive tick (every half ``ping_interval``); True: drop the connection."""
        if self.state != WsState.OPEN:
            return False
        if self._active:
            self._active = False
            self._silent_ticks = 0
            return False
        self._silent_ticks += 1
        if self._silent_ticks == 2:  # quiet for a whole interval: ask
            self.outgoing.append(self._frame(OP_PING, b"voxflow"))
        elif self._silent_ticks > 2:  # and no answer within half an interval
            log.warning("ARI websocket: no answer to a ping; dropping the connection")
            return True
        return False

    # ------------------------------------------------------------------ handshake

    def _handshake_data(self, data: bytes) -> None:
        if self._reading_body:
            self._handshake.receive_data(data)
            self._handshake_answer()
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_HEADERS:
                self._fail(AriConnectionError("ARI websocket: handshake too long"))
            return
        head, rest = self._head[: end + 4], self._head[end + 4 :]
        self._head = b""
        # Only the header block goes to websockets: what follows it is frames (ours).
        self._handshake.receive_data(head)
        if not self._handshake_answer():
            if self.is_client:
                self._reading_body = True  # a refusal with a body: let websockets read it
                self._handshake.receive_data(rest)
                self._handshake_answer()
        elif self.state == WsState.OPEN:
            self.leftover = rest

    def _handshake_answer(self) -> bool:
        """Act on the parsed request (server) or answer (client); False while incomplete."""
        if not self.is_client:
            return self._server_request()
        response = next(
            (e for e in self._handshake.events_received() if isinstance(e, Response)), None
        )
        if response is None:
            return False
        exc = self._handshake.handshake_exc
        if exc is None:
            self.state = WsState.OPEN
            self.subprotocol = self._handshake.subprotocol
        else:
            self._fail(_handshake_error(exc, response))
        return True

    def _server_request(self) -> bool:
        handshake = self._handshake
        assert isinstance(handshake, ServerProtocol)
        request = next((e for e in handshake.events_received() if isinstance(e, Request)), None)
        if request is None:
            if handshake.handshake_exc is not None:  # not HTTP at all
                self.outgoing.extend(handshake.data_to_send())
                self._fail(AriConnectionError("ARI websocket: malformed upgrade request"))
                return True
            return False
        self.request = request
        response = handshake.accept(request)
        refusal: Refusal | None = None
        if response.status_code != 101:  # not a websocket upgrade (a health check): 426...
            refusal = Refusal(response.status_code, response.reason_phrase)
        elif self._check_request is not None:
            refusal = self._check_request(request)
        if refusal is not None:
            response = _refusal_response(refusal)
            handshake.send_response(response)
            self.outgoing.extend(handshake.data_to_send())
            self._fail(AriConnectionError(f"ARI websocket: refused ({refusal.status})"))
            return True
        handshake.send_response(response)
        self.outgoing.extend(handshake.data_to_send())
        self.subprotocol = handshake.subprotocol
        self.state = WsState.OPEN
        return True

    def _fail(self, error: AriError) -> None:
        if self.handshake_error is None:
            self.handshake_error = error
        self.state = WsState.CLOSED
        self.close_transport = True

    # ------------------------------------------------------------------ frames

    def _frames(self, data: bytes) -> list[bytes]:
        self._active = True
        decoder = self.decoder
        try:
            messages = decoder.feed(data)
        except WsProtocolError as exc:
            log.warning("ARI websocket: %s; closing with %d", exc.reason, exc.code)
            self._send_close(exc.code)
            return []
        if decoder.control:
            control, decoder.control = decoder.control, []
            for opcode, payload in control:
                if opcode == OP_PING:
                    self.outgoing.append(self._frame(OP_PONG, payload))
                # a pong only proves the peer is alive: _active already says so
        if decoder.close_frame is not None and not self._peer_closed:
            self._peer_closed = True
            self.close_code, self.close_reason = parse_close(decoder.close_frame)
            if self.state == WsState.OPEN:
                log.info("ARI websocket closed by the peer (%d)", self.close_code)
                self._send_close(self.close_code if 1000 <= self.close_code < 1004 else 1000)
            else:  # the answer to our close: the closing handshake is complete
                self.close_transport = True
        return messages

    def _send_close(self, code: int) -> None:
        if self.state == WsState.OPEN:
            self.state = WsState.CLOSING
            self.outgoing.append(self._frame(OP_CLOSE, code.to_bytes(2, "big")))
        self.close_transport = True  # flush the close frame, then close


def _refusal_response(refusal: Refusal) -> Response:
    body = json.dumps({"message": refusal.message}).encode()
    headers = Headers()
    headers["Content-Type"] = "application/json"
    headers["Content-Length"] = str(len(body))
    headers["Connection"] = "close"
    for name, value in refusal.headers.items():
        headers[name] = value
    try:
        phrase = HTTPStatus(refusal.status).phrase
    except ValueError:
        phrase = "Error"
    return Response(refusal.status, phrase, headers, body)


def _handshake_error(exc: Exception, response: Response) -> AriError:
    if isinstance(exc, InvalidStatus):
        status = response.status_code
        error: AriHTTPError = error_for_status(
            status, _error_message(response), method="GET", path="/events"
        )
        return error
    return AriConnectionError(f"ARI events: invalid websocket handshake ({exc})")


def _error_message(response: Response) -> str:
    """The ARI ``message``/``error`` of a refused handshake, else the reason phrase."""
    body = response.body or b""
    with contextlib.suppress(ValueError):
        data = json.loads(body)
        if isinstance(data, dict):
            for key in ("message", "error"):
                if isinstance(data.get(key), str):
                    return str(data[key])
    return response.reason_phrase or "websocket handshake refused"
