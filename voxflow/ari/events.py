"""The ARI events websocket: keepalive pings, reconnect with backoff + jitter, resync hook.

:class:`AriEventStream` connects to ``/ari/events?app=...`` (ws or wss, Basic auth header, never
credentials in the URL), parses each message with :class:`~voxflow.ari.models.EventParser` and hands
events to ``on_event`` in order. When the socket drops it reconnects with exponential backoff and
full jitter, then awaits ``on_connect(True)`` before reading further events so the owner can resync
(``GET /channels``, ``/bridges``, ``/applications/{app}``). ``ApplicationReplaced`` stops the
stream (reconnecting would steal the app back and forth) and is surfaced by :meth:`wait_closed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl as ssllib
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from voxflow.ari.models import AriEvent, EventParser
from voxflow.ari.rest import error_for_status, normalize_base_url
from voxflow.errors import ApplicationReplacedError, AriConnectionError, AriError, AriTimeoutError

__all__ = ["AriEventStream", "backoff_delay", "events_url"]

log = logging.getLogger(__name__)

_REPLACED = "ApplicationReplaced"

EventHandler = Callable[[AriEvent], None]
ConnectHandler = Callable[[bool], Awaitable[None]]
DisconnectHandler = Callable[[], None]


def events_url(base_url: str) -> str:
    """``http(s)://host:port/ari`` -> ``ws(s)://host:port/ari/events``."""
    parts = urlsplit(normalize_base_url(base_url))
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path + "/events", "", ""))


def backoff_delay(attempt: int, *, initial: float, maximum: float, rng: random.Random) -> float:
    """Delay before reconnect ``attempt`` (0-based): a ceiling doubling from ``initial`` up to
    ``maximum``, with equal jitter (uniform between half the ceiling and the ceiling)."""
    ceiling = min(maximum, initial * (2 ** min(attempt, 30)))
    return rng.uniform(ceiling / 2, ceiling)


class AriEventStream:
    """One application's events websocket, kept connected until :meth:`close`."""

    def __init__(
        self,
        base_url: str,
        auth_headers: dict[str, str],
        app: str,
        *,
        on_event: EventHandler,
        on_connect: ConnectHandler | None = None,
        on_disconnect: DisconnectHandler | None = None,
        ping_interval: float = 15.0,
        connect_timeout: float = 10.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        subscribe_all: bool = False,
        seed: int | None = None,
        ssl: ssllib.SSLContext | bool = True,
    ) -> None:
        self.url = events_url(base_url)
        self.ssl = ssl
        self.app = app
        self._headers = dict(auth_headers)
        self._on_event = on_event
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self.ping_interval = ping_interval
        self.connect_timeout = connect_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.subscribe_all = subscribe_all
        self.parser = EventParser(lazy=True)
        self.connects = 0
        self.events = 0
        self.replaced = False
        self._rng = random.Random(seed)
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._done = asyncio.Event()
        self._connected = asyncio.Event()

    def __repr__(self) -> str:
        return f"AriEventStream({self.url!r}, app={self.app!r}, connected={self.connected})"

    @property
    def connected(self) -> bool:
        """True while the websocket is open."""
        return self._ws is not None and not self._ws.closed

    async def start(self) -> None:
        """Connect once (raising on failure, e.g. ``AriUnauthorized``), then keep the stream up."""
        if self._task is not None:
            return
        # A fresh connection per handshake: a failed Asterisk handshake leaves stale bytes on a
        # pooled keep-alive connection (observed-behaviour item 10).
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True, ssl=self.ssl)
        )
        try:
            ws = await self._connect()
        except BaseException:
            await self._http.close()
            self._http = None
            raise
        await self._connected_hook(ws, reconnected=False)
        self._task = asyncio.create_task(self._run(ws), name=f"ari-events-{self.app}")

    async def close(self) -> None:
        """Stop the stream and close the socket (idempotent)."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        self._done.set()

    async def wait_closed(self) -> None:
        """Return when the stream stops; raise ``ApplicationReplacedError`` if that is why."""
        await self._done.wait()
        if self.replaced:
            raise ApplicationReplacedError(
                f"another client connected with application name {self.app!r}"
            )

    async def drop(self) -> None:
        """Close the current socket as if the network dropped it (the stream reconnects)."""
        if self._ws is not None:
            await self._ws.close()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the socket is (re)connected."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    # ------------------------------------------------------------------ internals

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        assert self._http is not None
        params = {"app": self.app, "subscribeAll": "true" if self.subscribe_all else "false"}
        try:
            async with asyncio.timeout(self.connect_timeout):
                ws = await self._http.ws_connect(
                    self.url,
                    params=params,
                    headers=self._headers,
                    heartbeat=self.ping_interval,
                    timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                    max_msg_size=16 * 1024 * 1024,
                )
        except aiohttp.WSServerHandshakeError as exc:
            raise error_for_status(
                exc.status,
                exc.message or "websocket handshake refused",
                method="GET",
                path="/events",
            ) from None
        except TimeoutError:
            raise AriTimeoutError(f"ARI events: connecting to {self.url} timed out") from None
        except aiohttp.ClientError as exc:
            raise AriConnectionError(
                f"ARI events: cannot connect to {self.url} ({type(exc).__name__})"
            ) from None
        self.connects += 1
        return ws

    async def _connected_hook(
        self, ws: aiohttp.ClientWebSocketResponse, *, reconnected: bool
    ) -> None:
        self._ws = ws
        log.info(
            "ARI events connected to %s (app %s)%s",
            self.url,
            self.app,
            " after reconnect" if reconnected else "",
        )
        if self._on_connect is not None:
            try:
                await self._on_connect(reconnected)
            except AriError as exc:
                log.warning("ARI resync after connect failed: %s", exc)
        self._connected.set()

    async def _run(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            while True:
                await self._read(ws)
                self._ws = None
                self._connected.clear()
                if self.replaced or self._closing:
                    break
                log.warning("ARI events socket for app %s dropped; reconnecting", self.app)
                if self._on_disconnect is not None:
                    self._on_disconnect()
                ws = await self._reconnect()
                await self._connected_hook(ws, reconnected=True)
        finally:
            if self.replaced:
                self._done.set()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        parse = self.parser.parse
        on_event = self._on_event
        try:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    event = parse(msg.data)
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    event = parse(msg.data)
                else:
                    break
                if event is None:
                    continue
                self.events += 1
                try:
                    on_event(event)
                except Exception:
                    log.exception("ARI event handler failed on %s", event.type)
                if event.type == _REPLACED:  # (isinstance on pydantic classes is slow)
                    log.error(
                        "ARI application %r was replaced by another connection; "
                        "this client stops receiving events",
                        self.app,
                    )
                    self.replaced = True
                    break
        except aiohttp.ClientError as exc:
            log.warning("ARI events read error: %s", type(exc).__name__)
        finally:
            await ws.close()

    async def _reconnect(self) -> aiohttp.ClientWebSocketResponse:
        attempt = 0
        while True:
            delay = backoff_delay(
                attempt, initial=self.backoff_initial, maximum=self.backoff_max, rng=self._rng
            )
            await asyncio.sleep(delay)
            try:
                return await self._connect()
            except AriError as exc:
                attempt += 1
                log.warning(
                    "ARI events reconnect attempt %d failed: %s (next in up to %.1fs)",
                    attempt,
                    exc,
                    min(self.backoff_max, self.backoff_initial * 2 ** min(attempt, 30)),
                )
