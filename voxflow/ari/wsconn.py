"""The ARI events websocket connection: handshake, messages, keepalive, close (the I/O edge).

:func:`open_events_socket` opens one connection (ws or wss). The opening handshake is the
``websockets`` library's Sans-IO :class:`~websockets.client.ClientProtocol` (request, key,
``Sec-WebSocket-Accept`` check, error responses with their body). Once open, frames are decoded
by :class:`~voxflow.ari.wsframes.FrameDecoder` inside ``data_received`` and each message goes to
``on_message`` synchronously, in order: no queue, future or task switch per event, which is most
of what an awaited ``receive()`` costs per message. The socket stays paused after the handshake
until :meth:`EventsSocket.start`, so the owner can resync before the first event is read.

Keepalive: when nothing has arrived for ``ping_interval`` a ping is sent; if nothing (not even
the pong) arrives within half an interval more, the connection is dropped as dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl as ssllib
from collections.abc import Callable, Mapping

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.http11 import Response
from websockets.uri import parse_uri

from voxflow.ari.rest import error_for_status
from voxflow.ari.wsframes import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    FrameDecoder,
    WsProtocolError,
    client_frame,
    parse_close,
)
from voxflow.errors import AriConnectionError, AriError, AriTimeoutError

__all__ = ["EventsSocket", "open_events_socket"]

log = logging.getLogger(__name__)

MessageHandler = Callable[[bytes], None]

_HANDSHAKE, _OPEN, _CLOSING, _CLOSED = range(4)
_MAX_HEADERS = 64 * 1024
_CLOSE_TIMEOUT = 5.0


class EventsSocket(asyncio.Protocol):
    """One open events websocket. Made by :func:`open_events_socket`."""

    def __init__(
        self,
        handshake: ClientProtocol,
        *,
        on_message: MessageHandler,
        ping_interval: float,
        max_size: int,
    ) -> None:
        self._handshake = handshake
        self._on_message = on_message
        self.ping_interval = ping_interval
        self._decoder = FrameDecoder(max_size)
        self._state = _HANDSHAKE
        self._head = b""  # handshake bytes received so far
        self._leftover = b""  # frames that came with the handshake answer
        self._reading_body = False  # a refused handshake whose body is still arriving
        self._active = False  # something arrived since the last keepalive tick
        self._silent_ticks = 0
        self._timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._opened: asyncio.Future[None] = loop.create_future()
        self._closed: asyncio.Future[None] = loop.create_future()
        self.close_code: int | None = None
        self.close_reason = ""

    @property
    def is_open(self) -> bool:
        """True from the handshake until a close starts or the connection is lost."""
        return self._state == _OPEN

    def start(self) -> None:
        """Deliver messages from now on (the socket is paused after the handshake)."""
        if self._state != _OPEN or self._transport is None:
            return
        self._schedule_keepalive()
        leftover, self._leftover = self._leftover, b""
        if leftover:
            self._frames(leftover)
        if self._transport is not None and self._state == _OPEN:
            self._transport.resume_reading()

    async def close(self, code: int = 1000) -> None:
        """Close cleanly (close frame, then wait for the server's) and wait until closed."""
        if self._state == _OPEN and self._transport is not None:
            self._state = _CLOSING
            self._transport.write(client_frame(OP_CLOSE, code.to_bytes(2, "big")))
            self._close_timer = self._loop.call_later(_CLOSE_TIMEOUT, self.abort)
        elif self._state == _HANDSHAKE:
            self.abort()
        await self.wait_closed()

    def abort(self) -> None:
        """Drop the connection at once (as a network failure would)."""
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        """Return once the connection is gone."""
        await asyncio.shield(self._closed)

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(b"".join(self._handshake.data_to_send()))

    def data_received(self, data: bytes) -> None:
        if self._state == _OPEN:
            self._frames(data)
        elif self._state == _HANDSHAKE:
            self._handshake_data(data)

    def eof_received(self) -> bool | None:
        if self._state == _HANDSHAKE and self._reading_body:
            self._handshake.receive_eof()
            self._handshake_answer()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = _CLOSED
        self._transport = None
        for timer in (self._timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._close_timer = None
        if not self._opened.done():
            self._opened.set_exception(
                AriConnectionError("ARI events: connection closed during the websocket handshake")
            )
            self._opened.exception()  # retrieved: the opener re-raises it
        if not self._closed.done():
            self._closed.set_result(None)

    # ------------------------------------------------------------------ handshake

    def _handshake_data(self, data: bytes) -> None:
        if self._reading_body:
            self._handshake.receive_data(data)
            self._handshake_answer()
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > _MAX_HEADERS:
                self._fail_handshake(AriConnectionError("ARI events: handshake answer too long"))
            return
        head, rest = self._head[: end + 4], self._head[end + 4 :]
        self._head = b""
        # Only the header block goes to websockets: what follows a 101 is ours (frames).
        self._handshake.receive_data(head)
        if not self._handshake_answer():
            self._reading_body = True  # a refusal with a body: let websockets read it
            self._handshake.receive_data(rest)
            self._handshake_answer()
        elif self._state == _OPEN:
            self._leftover = rest

    def _handshake_answer(self) -> bool:
        """Act on the parsed handshake answer; False while it is incomplete."""
        response = next(
            (e for e in self._handshake.events_received() if isinstance(e, Response)), None
        )
        if response is None:
            return False
        exc = self._handshake.handshake_exc
        if exc is None:
            self._state = _OPEN
            assert self._transport is not None
            self._transport.pause_reading()
            self._opened.set_result(None)
        else:
            self._fail_handshake(_handshake_error(exc, response))
        return True

    def _fail_handshake(self, error: AriError) -> None:
        if not self._opened.done():
            self._opened.set_exception(error)
        self._state = _CLOSED
        if self._transport is not None:
            self._transport.close()

    # ------------------------------------------------------------------ frames

    def _frames(self, data: bytes) -> None:
        self._active = True
        decoder = self._decoder
        try:
            messages = decoder.feed(data)
        except WsProtocolError as exc:
            log.warning("ARI events socket: %s; closing with %d", exc.reason, exc.code)
            self._send_close(exc.code)
            return
        on_message = self._on_message
        for message in messages:
            try:
                on_message(message)
            except Exception:
                log.exception("ARI events: message handler failed")
            if self._state != _OPEN:
                return  # the handler closed the socket: the rest is not ours to deliver
        if decoder.control:
            self._answer_control()
        if decoder.close_frame is not None:
            self.close_code, self.close_reason = parse_close(decoder.close_frame)
            log.info("ARI events socket closed by the server (%d)", self.close_code)
            self._send_close(self.close_code if 1000 <= self.close_code < 1004 else 1000)

    def _answer_control(self) -> None:
        control, self._decoder.control = self._decoder.control, []
        for opcode, payload in control:
            if opcode == OP_PING and self._transport is not None:
                self._transport.write(client_frame(OP_PONG, payload))
            # a pong only proves the peer is alive: _active already says so

    def _send_close(self, code: int) -> None:
        if self._state == _OPEN and self._transport is not None:
            self._state = _CLOSING
            self._transport.write(client_frame(OP_CLOSE, code.to_bytes(2, "big")))
            self._transport.close()  # flushes the close frame, then closes

    # ------------------------------------------------------------------ keepalive

    def _schedule_keepalive(self) -> None:
        if self.ping_interval > 0:
            self._timer = self._loop.call_later(self.ping_interval / 2, self._keepalive)

    def _keepalive(self) -> None:
        self._timer = None
        if self._state != _OPEN or self._transport is None:
            return
        if self._active:
            self._active = False
            self._silent_ticks = 0
        else:
            self._silent_ticks += 1
            if self._silent_ticks == 2:  # quiet for a whole interval: ask
                self._transport.write(client_frame(OP_PING, b"voxflow"))
            elif self._silent_ticks > 2:  # and no answer within half an interval
                log.warning("ARI events socket: no answer to a ping; dropping the connection")
                self.abort()
                return
        self._schedule_keepalive()


def _handshake_error(exc: Exception, response: Response) -> AriError:
    if isinstance(exc, InvalidStatus):
        status = response.status_code
        return error_for_status(status, _error_message(response), method="GET", path="/events")
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


def _ssl_context(ssl: ssllib.SSLContext | bool) -> ssllib.SSLContext:
    if isinstance(ssl, ssllib.SSLContext):
        return ssl
    ctx = ssllib.create_default_context()
    if not ssl:  # verification explicitly turned off (a self-signed test PBX)
        ctx.check_hostname = False
        ctx.verify_mode = ssllib.CERT_NONE
    return ctx


async def open_events_socket(
    url: str,
    headers: Mapping[str, str],
    *,
    on_message: MessageHandler,
    ssl: ssllib.SSLContext | bool = True,
    timeout: float = 10.0,
    ping_interval: float = 15.0,
    max_size: int = 16 * 1024 * 1024,
) -> EventsSocket:
    """Connect and complete the handshake; the socket is paused until ``start()``.

    Raises ``AriHTTPError`` subclasses for a refused handshake (401, 400...),
    ``AriTimeoutError`` and ``AriConnectionError``.
    """
    try:
        uri = parse_uri(url)
    except InvalidURI:
        raise AriConnectionError(f"ARI events: not a websocket URL: {url!r}") from None
    handshake = ClientProtocol(uri, max_size=max_size)
    request = handshake.connect()
    for name, value in headers.items():
        request.headers[name] = value
    handshake.send_request(request)
    sock = EventsSocket(
        handshake, on_message=on_message, ping_interval=ping_interval, max_size=max_size
    )
    loop = asyncio.get_running_loop()
    ctx = _ssl_context(ssl) if uri.secure else None
    try:
        async with asyncio.timeout(timeout):
            await loop.create_connection(
                lambda: sock, uri.host, uri.port, ssl=ctx, server_hostname=uri.host if ctx else None
            )
            await sock._opened
    except AriError:  # refused or invalid handshake
        sock.abort()
        raise
    except TimeoutError:
        sock.abort()
        raise AriTimeoutError(f"ARI events: connecting to {url} timed out") from None
    except (OSError, InvalidHandshake) as exc:
        sock.abort()
        raise AriConnectionError(
            f"ARI events: cannot connect to {url} ({type(exc).__name__})"
        ) from None
    return sock
