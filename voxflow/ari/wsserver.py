"""voxflow as the server of Asterisk 22's outbound ARI websockets (``res_websocket_client``).

Asterisk connects to us (``GET /path``, ``Sec-WebSocket-Protocol: ari``, HTTP Basic auth with the
``websocket_client.conf`` username/password). :class:`AriWebsocketServer` listens (127.0.0.1 by
default), checks the credentials (401 otherwise) and hands each open connection to
``on_connection``, which sets the connection's ``on_message``. The protocol is the same sans-I/O
:class:`~voxflow.ari.wsproto.WsProtocol` as the client's, in its server role; the connection is
the same thin :class:`~voxflow.ari.wsconn.WsConnection` adapter.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from collections.abc import Callable

from websockets.http11 import Request

from voxflow.ari.wsconn import WsConnection
from voxflow.ari.wsproto import Refusal, WsProtocol
from voxflow.errors import ConfigError

__all__ = ["AriWebsocketServer", "ServerConnection"]

log = logging.getLogger(__name__)

ConnectionHandler = Callable[["ServerConnection"], None]


class ServerConnection(WsConnection):
    """One connection from Asterisk; frames are read as soon as it is open."""

    def __init__(self, proto: WsProtocol, on_open: ConnectionHandler) -> None:
        super().__init__(proto)
        self._on_open = on_open

    @property
    def path(self) -> str:
        """The request path Asterisk connected to (``uri`` in websocket_client.conf)."""
        return self.proto.request.path if self.proto.request is not None else ""

    def _handshake_done(self) -> None:
        try:
            self._on_open(self)
        except Exception:
            log.exception("ARI websocket server: connection handler failed")
            self.abort()
            return
        self._schedule_keepalive()
        leftover, self.proto.leftover = self.proto.leftover, b""
        if leftover:
            self._deliver(self.proto.receive_data(leftover))


class AriWebsocketServer:
    """Listens for Asterisk's outbound ARI websockets. ``async with`` or start()/close()."""

    def __init__(
        self,
        username: str,
        password: str,
        on_connection: ConnectionHandler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ping_interval: float = 15.0,
    ) -> None:
        if not username or ":" in username:
            raise ConfigError("the outbound websocket username must be set and without ':'")
        self.host = host
        self.port = port
        self._expected = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._on_connection = on_connection
        self.ping_interval = ping_interval
        self._server: asyncio.Server | None = None
        self.connections: set[ServerConnection] = set()
        self.refused = 0

    def __repr__(self) -> str:
        return f"AriWebsocketServer({self.host}:{self.port})"

    def check_request(self, request: Request) -> Refusal | None:
        """Basic auth as ``websocket_client.conf`` sends it; anything else is a 401."""
        header = request.headers.get("Authorization", "")
        token = header[6:].strip() if header[:6].lower() == "basic " else ""
        try:
            ok = bool(token) and hmac.compare_digest(
                base64.b64decode(token, validate=True), base64.b64decode(self._expected)
            )
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            self.refused += 1
            log.warning("ARI websocket server: refused a connection (bad credentials)")
            return Refusal(
                401,
                "Authentication required",
                {"WWW-Authenticate": 'Basic realm="voxflow"'},
            )
        return None

    def _make(self) -> ServerConnection:
        proto = WsProtocol.server(
            check_request=self.check_request, ping_interval=self.ping_interval
        )
        conn = ServerConnection(proto, self._opened)
        conn.on_closed(lambda: self.connections.discard(conn))
        return conn

    def _opened(self, conn: ServerConnection) -> None:
        self.connections.add(conn)
        self._on_connection(conn)

    async def start(self) -> None:
        """Bind and listen (port 0 picks a free port, see :attr:`port`)."""
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(self._make, self.host, self.port)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("listening for Asterisk's ARI websockets on %s:%d", self.host, self.port)

    def stop_listening(self) -> None:
        """Accept no new connection (the open ones go on)."""
        if self._server is not None:
            self._server.close()
            self._server = None

    async def close(self) -> None:
        """Stop listening and close every connection (idempotent)."""
        self.stop_listening()
        conns = list(self.connections)
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)

    async def __aenter__(self) -> AriWebsocketServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
