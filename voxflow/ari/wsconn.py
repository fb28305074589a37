"""The ARI websocket's asyncio adapter: moves bytes between a transport and a :class:`WsProtocol`.

Every protocol decision (handshake, frames, pings, closes, keepalive) is made by the sans-I/O
:class:`~voxflow.ari.wsproto.WsProtocol`; :class:`WsConnection` only feeds it what arrives, writes
what it returns, runs the keepalive timer and closes the transport when told to. Messages go to
``on_message`` synchronously from ``data_received``, in order: no queue, future or task switch per
event, which is most of what an awaited ``receive()`` costs per message.

:func:`open_events_socket` opens the client side (voxflow -> Asterisk's ``/ari/events``, ws or
wss): the socket stays paused after the handshake until :meth:`EventsSocket.start`, so the owner
can resync before the first event is read. The server side (Asterisk 22's outbound websocket ->
voxflow) is :mod:`voxflow.ari.wsserver`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssllib
from collections.abc import Callable, Mapping

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidURI
from websockets.uri import parse_uri

from voxflow.ari.wsproto import WsProtocol, WsState
from voxflow.errors import AriConnectionError, AriError, AriTimeoutError

__all__ = ["EventsSocket", "MessageHandler", "WsConnection", "open_events_socket"]

log = logging.getLogger(__name__)

MessageHandler = Callable[[bytes], None]

_CLOSE_TIMEOUT = 5.0
_OPEN = WsState.OPEN  # a module global: data_received compares it for every read


def _ignore(message: bytes) -> None:
    del message


class WsConnection(asyncio.Protocol):
    """One websocket connection over an asyncio transport (client or server side)."""

    def __init__(self, proto: WsProtocol, *, on_message: MessageHandler | None = None) -> None:
        self.proto = proto
        self.on_message: MessageHandler = on_message or _ignore
        self._timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None
        self._stopped = False  # closed or aborted by us: deliver nothing more
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._opened: asyncio.Future[None] = loop.create_future()
        self._closed: asyncio.Future[None] = loop.create_future()

    @property
    def ping_interval(self) -> float:
        return self.proto.ping_interval

    @property
    def is_open(self) -> bool:
        """True from the handshake until a close starts or the connection is lost."""
        return self.proto.is_open and self._transport is not None

    @property
    def close_code(self) -> int | None:
        return self.proto.close_code

    @property
    def close_reason(self) -> str:
        return self.proto.close_reason

    def send_text(self, payload: bytes) -> None:
        """Send one TEXT message (``AriConnectionError`` if the connection is not open)."""
        if self._transport is None or self._transport.is_closing():
            raise AriConnectionError("ARI websocket: the connection is closed")
        self.proto.send_text(payload)
        self._flush()

    async def close(self, code: int = 1000) -> None:
        """Close cleanly (close frame, then wait for the peer's) and wait until closed."""
        if self.proto.state == WsState.OPEN and self._transport is not None:
            self._stopped = True
            self.proto.close(code)
            self._flush()
            self._close_timer = self._loop.call_later(_CLOSE_TIMEOUT, self.abort)
        elif self.proto.state == WsState.HANDSHAKE:
            self.abort()
        await self.wait_closed()

    def abort(self) -> None:
        """Drop the connection at once (as a network failure would)."""
        self._stopped = True
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        """Return once the connection is gone."""
        await asyncio.shield(self._closed)

    def on_closed(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the connection is gone."""
        self._closed.add_done_callback(lambda _f: callback())

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._flush()

    def data_received(self, data: bytes) -> None:
        proto = self.proto
        if proto.state is _OPEN:
            self._deliver(proto.receive_data(data))
        elif proto.state == WsState.CLOSING:
            proto.receive_data(data)
            self._flush()
        elif proto.state == WsState.HANDSHAKE:
            proto.receive_data(data)
            self._flush()
            self._after_handshake_data()

    def eof_received(self) -> bool | None:
        self.proto.receive_eof()
        self._after_handshake_data()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._stopped = True
        self.proto.connection_lost()
        self._transport = None
        for timer in (self._timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._close_timer = None
        if not self._opened.done():
            error = self.proto.handshake_error or AriConnectionError("ARI websocket: closed")
            self._opened.set_exception(error)
            self._opened.exception()  # retrieved: the opener re-raises it
        if not self._closed.done():
            self._closed.set_result(None)

    # ------------------------------------------------------------------ internals

    def _after_handshake_data(self) -> None:
        if self._opened.done():
            return
        if self.proto.state == WsState.OPEN:
            self._opened.set_result(None)
            self._handshake_done()
        elif self.proto.handshake_error is not None:
            self._opened.set_exception(self.proto.handshake_error)
            self._opened.exception()
            self._flush()

    def _handshake_done(self) -> None:
        """The connection is open (subclasses decide when frames are read)."""

    def _deliver(self, messages: list[bytes]) -> None:
        on_message = self.on_message
        for message in messages:
            try:
                on_message(message)
            except Exception:
                log.exception("ARI websocket: message handler failed")
            if self._stopped:
                return  # the handler closed the socket: the rest is not ours to deliver
        proto = self.proto
        if proto.outgoing or proto.close_transport:
            self._flush()

    def _flush(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        out = self.proto.data_to_send()
        if out:
            transport.write(b"".join(out) if len(out) > 1 else out[0])
        if self.proto.close_transport:
            transport.close()  # flushes what was written, then closes

    def _schedule_keepalive(self) -> None:
        if self.proto.ping_interval > 0:
            self._timer = self._loop.call_later(self.proto.ping_interval / 2, self._keepalive)

    def _keepalive(self) -> None:
        self._timer = None
        if self._transport is None or self.proto.state != WsState.OPEN:
            return
        if self.proto.tick():
            self.abort()
            return
        self._flush()
        self._schedule_keepalive()


class EventsSocket(WsConnection):
    """The client side: one open events websocket. Made by :func:`open_events_socket`."""

    def start(self) -> None:
        """Deliver messages from now on (the socket is paused after the handshake)."""
        if self.proto.state != WsState.OPEN or self._transport is None:
            return
        self._schedule_keepalive()
        leftover, self.proto.leftover = self.proto.leftover, b""
        if leftover:
            self._deliver(self.proto.receive_data(leftover))
        if self._transport is not None and self.proto.state == WsState.OPEN:
            self._transport.resume_reading()

    def _handshake_done(self) -> None:
        assert self._transport is not None
        self._transport.pause_reading()


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
    proto = WsProtocol.client(
        ClientProtocol(uri, max_size=max_size),
        dict(headers),
        ping_interval=ping_interval,
        max_size=max_size,
    )
    sock = EventsSocket(proto, on_message=on_message)
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
    except asyncio.CancelledError:  # the app stopped mid-handshake: leave no connection open
        sock.abort()
        raise
    return sock
