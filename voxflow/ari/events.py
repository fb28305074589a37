"""The ARI events websocket: keepalive pings, reconnect with backoff + jitter, resync hook.

:class:`AriEventStream` connects to ``/ari/events?app=...`` (ws or wss, Basic auth header, never
credentials in the URL; the connection itself is :mod:`voxflow.ari.wsconn`), parses each message
with :class:`~voxflow.ari.models.EventParser` and hands events to ``on_event`` in order, from the
socket's read callback. When the socket drops it reconnects with exponential backoff and
full jitter (a socket dropped within :data:`STABLE_AFTER` of its connect continues the
backoff instead of starting it afresh), then awaits ``on_connect(True)`` before reading further
events so the owner can resync (``GET /channels``, ``/bridges``, ``/applications/{app}``).
``ApplicationReplaced`` stops the stream (reconnecting would steal the app back and forth) and is
surfaced by :meth:`wait_closed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl as ssllib
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

from voxflow.ari.models import AriEvent, EventParser
from voxflow.ari.rest import normalize_base_url
from voxflow.ari.wsconn import EventsSocket, open_events_socket
from voxflow.errors import ApplicationReplacedError, AriError, AriEventInvalid, AriTimeoutError

__all__ = [
    "HANDSHAKE_DEADLINE_MAX",
    "START_TRIES",
    "AriEventStream",
    "backoff_delay",
    "events_url",
]

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


STABLE_AFTER = 10.0
"""Seconds an events socket must stay up for its drop to start the reconnect backoff afresh;
one dropped sooner (a proxy or server that accepts and closes at once) continues it."""


HANDSHAKE_DEADLINE_MAX = 120.0
"""Seconds: the longest deadline a reconnect's handshake gets once earlier ones timed out (each
timeout doubles it from ``connect_timeout``). With a fixed deadline an Asterisk answering every
handshake later than it was never heard again, and calls entering Stasis rang for ever."""


START_TRIES = 3
"""Handshakes :meth:`AriEventStream.start` makes when each times out: ``connect_timeout``, twice
and four times it (7 times ``connect_timeout`` in all), then a clear ``AriTimeoutError``."""


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
        self._sock: EventsSocket | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._done = asyncio.Event()
        self._connected = asyncio.Event()

    def __repr__(self) -> str:
        return f"AriEventStream({self.url!r}, app={self.app!r}, connected={self.connected})"

    @property
    def rejected(self) -> dict[str, int]:
        """Events dropped so far: ``malformed`` (not JSON), ``invalid`` (a field or the shape
        failed validation), ``unknown`` (a type voxflow does not model)."""
        p = self.parser
        return {"malformed": p.malformed, "invalid": p.invalid, "unknown": p.unknown}

    @property
    def connected(self) -> bool:
        """True while the websocket is open."""
        return self._sock is not None and self._sock.is_open

    async def start(self) -> None:
        """Connect (raising on failure, e.g. ``AriUnauthorized``; a handshake that timed out goes
        again, :data:`START_TRIES` in all), then keep the stream up."""
        if self._task is not None:
            return
        sock = await self._first_connect()
        await self._connected_hook(sock, reconnected=False)
        self._task = asyncio.create_task(self._run(sock), name=f"ari-events-{self.app}")

    async def close(self) -> None:
        """Stop the stream and close the socket (idempotent)."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sock is not None:
            await self._sock.close()
            self._sock = None
        self._done.set()

    async def wait_closed(self) -> None:
        """Return when the stream stops; raise ``ApplicationReplacedError`` if that is why."""
        await self._done.wait()
        if self.replaced:
            raise ApplicationReplacedError(
                f"another client connected with application name {self.app!r}"
            )

    async def drop(self) -> None:
        """Cut the current connection as if the network dropped it (the stream reconnects)."""
        if self._sock is not None:
            self._sock.abort()
            await self._sock.wait_closed()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the socket is (re)connected."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    # ------------------------------------------------------------------ internals

    async def _first_connect(self) -> EventsSocket:
        """The first handshake. One that timed out goes again at once with twice the deadline,
        :data:`START_TRIES` in all: an overloaded Asterisk registers the app and sends the 101
        late (the calls that entered Stasis meanwhile are adopted by the start-up sweep). Other
        failures (401, refused) are raised at once."""
        deadline, tried = self.connect_timeout, []
        while True:
            try:
                return await self._connect(deadline)
            except AriTimeoutError as exc:
                tried.append(deadline)
                if len(tried) >= START_TRIES:
                    waits = " + ".join(f"{t:g}" for t in tried)
                    raise AriTimeoutError(
                        f"ARI events websocket handshake for app {self.app!r} at {self.url} "
                        f"not answered in time ({len(tried)} tries, {waits} s): Asterisk is "
                        "overloaded, or a proxy holds the upgrade"
                    ) from exc
                deadline = min(HANDSHAKE_DEADLINE_MAX, deadline * 2)
                log.warning(
                    "ARI events handshake for app %s: %s; trying again (%gs deadline)",
                    self.app, exc, deadline,
                )  # fmt: skip

    async def _connect(self, timeout: float | None = None) -> EventsSocket:
        """One handshake, with ``timeout`` as its deadline (else ``connect_timeout``)."""
        # A fresh connection per handshake: a failed Asterisk handshake leaves stale bytes on a
        # kept-alive connection (observed-behaviour item 10).
        query = urlencode(
            {"app": self.app, "subscribeAll": "true" if self.subscribe_all else "false"}
        )
        sock = await open_events_socket(
            f"{self.url}?{query}",
            self._headers,
            on_message=self._on_message,
            ssl=self.ssl,
            timeout=self.connect_timeout if timeout is None else timeout,
            ping_interval=self.ping_interval,
        )
        self.connects += 1
        return sock

    def _on_message(self, raw: bytes) -> None:
        """One websocket message: parse, hand on, stop on ``ApplicationReplaced``."""
        event = self.parser.parse(raw)
        if event is None:
            return
        self.events += 1
        try:
            self._on_event(event)
        except AriEventInvalid as exc:  # a lazy event's field failed validation when read
            self.parser.invalid += 1
            self.parser.warnings.log(
                logging.WARNING, "skipping invalid ARI event %s: %s", event.type, exc
            )
        except Exception:
            log.exception("ARI event handler failed on %s", event.type)
        if event.type == _REPLACED:  # (isinstance on pydantic classes is slower)
            log.error(
                "ARI application %r was replaced by another connection; "
                "this client stops receiving events",
                self.app,
            )
            self.replaced = True
            if self._sock is not None:
                self._sock.abort()  # Asterisk keeps the old socket open, silent (item 7)

    async def _connected_hook(self, sock: EventsSocket, *, reconnected: bool) -> None:
        self._sock = sock
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
        sock.start()  # events read from here on, after the resync

    async def _run(self, sock: EventsSocket) -> None:
        loop = asyncio.get_running_loop()
        quick = 0  # drops in a row, each within STABLE_AFTER of its connect
        try:
            while True:
                up = loop.time()
                await sock.wait_closed()
                self._sock = None
                self._connected.clear()
                if self.replaced or self._closing:
                    break
                lived = loop.time() - up
                quick = quick + 1 if lived < STABLE_AFTER else 0
                if quick > 1:
                    log.warning(
                        "ARI events socket for app %s dropped %.1f s after connecting (%d times "
                        "in a row); reconnecting in up to %.1fs", self.app, lived, quick,
                        min(self.backoff_max, self.backoff_initial * 2 ** min(quick - 1, 30)),
                    )  # fmt: skip
                else:
                    log.warning("ARI events socket for app %s dropped; reconnecting", self.app)
                if self._on_disconnect is not None:
                    self._on_disconnect()
                # a socket that keeps dropping as soon as it is up backs off as failed connects do
                sock = await self._reconnect(max(0, quick - 1))
                await self._connected_hook(sock, reconnected=True)
        finally:
            if self.replaced:
                self._done.set()

    async def _reconnect(self, attempt: int = 0) -> EventsSocket:
        """Connect again with backoff. A handshake that timed out goes again with twice the
        deadline (up to :data:`HANDSHAKE_DEADLINE_MAX`): an overloaded Asterisk that answers
        every handshake later than ``connect_timeout`` is still heard, and the calls that
        entered Stasis meanwhile are adopted by the owner's resync (``on_connect``)."""
        deadline = self.connect_timeout
        while True:
            delay = backoff_delay(
                attempt, initial=self.backoff_initial, maximum=self.backoff_max, rng=self._rng
            )
            await asyncio.sleep(delay)
            try:
                return await self._connect(deadline)
            except AriError as exc:
                attempt += 1
                if isinstance(exc, AriTimeoutError):
                    deadline = min(HANDSHAKE_DEADLINE_MAX, deadline * 2)
                log.warning(
                    "ARI events reconnect attempt %d failed: %s (next in up to %.1fs, "
                    "%gs deadline)",
                    attempt,
                    exc,
                    min(self.backoff_max, self.backoff_initial * 2 ** min(attempt, 30)),
                    deadline,
                )
