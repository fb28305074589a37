"""The ARI events websocket (/ari/events) and event delivery with fault injection.

One socket per app: a newer socket takes the app over and the older one receives
``ApplicationReplaced`` and stays open, silent. While an app has no socket its events
are dropped, not queued; its channels stay in Stasis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import WSMsgType, web

from .rest import check_auth, unauthorized
from .wsrest import rest_over_ws

if TYPE_CHECKING:
    from .server import Sandbox

__all__ = ["EventSocket", "Faults", "WsLike", "events_handler"]

log = logging.getLogger(__name__)


class WsLike(Protocol):
    """What an events socket writes to: aiohttp's server or client websocket."""

    @property
    def closed(self) -> bool: ...

    async def send_str(self, data: str, compress: int | None = None) -> None: ...

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool: ...


class EventSocket:
    """One events websocket (inbound, or an outbound connection to a worker); a writer task
    sends queued events and REST answers in order."""

    def __init__(
        self,
        sb: Sandbox,
        ws: WsLike,
        transport: asyncio.BaseTransport | None,
        apps: list[str],
    ) -> None:
        self.sb = sb
        self.ws = ws
        self.transport = transport
        self.apps = apps
        self.queue: deque[str] = deque()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def push(self, text: str) -> None:
        self.queue.append(text)
        self.wake.set()

    async def writer(self) -> None:
        faults = self.sb.faults
        while True:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            loop = asyncio.get_running_loop()
            stall = faults.stall_until - loop.time()
            if stall > 0:
                await asyncio.sleep(stall)
                continue
            if faults.delay_ms:
                await asyncio.sleep(faults.delay_ms / 1000)
            text = self.queue.popleft()
            if self.ws.closed:
                return
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    def abort(self) -> None:
        """Drop the TCP connection with no close frame (a network failure)."""
        transport = self.transport
        if transport is not None and isinstance(transport, asyncio.WriteTransport):
            transport.abort()

    async def serve_requests(self, text: str) -> None:
        """A frame from the client: REST over the websocket (answered in order with events)."""
        answer = await rest_over_ws(self.sb.rest_api, text, self.apps[0])
        if answer is not None:
            self.push(answer)


_MEDIA_SETUP = re.compile(
    r"^/channels/externalMedia$|^/channels/[^/]+/snoop(/[^/]+)?$"
    r"|^/bridges(/[^/]+)?$|^/bridges/[^/]+/addChannel$"
)
"""The paths of a call's media set-up requests (POST): :meth:`Faults.slow_media_setup`."""


class Faults:
    """Fault injection for the events socket, REST and RTP."""

    def __init__(self, sb: Sandbox) -> None:
        from .rtp import RtpFaults

        self._sb = sb
        self.rtp = RtpFaults()
        self.stall_until = 0.0
        self.delay_ms = 0.0
        self.drop_next = 0
        self._fail_count = 0
        self._fail_status = 500
        self._fail_method: str | None = None
        self._fail_path: re.Pattern[str] | None = None
        self._slow: _Slow | None = None
        self._late: _Slow | None = None
        self.held = 0  # requests late_requests holds now, not yet served
        self._slow_handshakes: tuple[int, float] = (0, 0.0)
        self._slow_setup: tuple[float, int | None] = (0.0, 0)

    def drop_events_socket(self, app: str) -> bool:
        """Cut the app's events websocket like a network failure; True if one was open."""
        sock = self._sb.app_sockets.get(app)
        if sock is None:
            return False
        sock.abort()
        return True

    def stall_events(self, seconds: float) -> None:
        """Hold every events socket's output for ``seconds`` (events are kept, then sent)."""
        self.stall_until = asyncio.get_running_loop().time() + seconds

    def delay_events(self, ms: float) -> None:
        """Delay each event by ``ms`` before sending (0 turns it off)."""
        self.delay_ms = max(0.0, ms)

    def drop_next_events(self, n: int) -> None:
        """Lose the next ``n`` events (whatever app they are for)."""
        self.drop_next = max(0, n)

    def fail_next_requests(
        self, n: int, status: int = 500, *, method: str | None = None, path: str | None = None
    ) -> None:
        """Answer the next ``n`` REST requests with ``status`` {"message": ...}; with ``method``
        and/or ``path`` (a regular expression searched in the path under /ari) only the requests
        that match count, the others are served."""
        self._fail_count = max(0, n)
        self._fail_status = status
        self._fail_method = method.upper() if method else None
        try:
            self._fail_path = re.compile(path) if path else None
        except re.error as exc:
            raise ValueError(f"bad path pattern {path!r}: {exc}") from None

    def slow_requests(
        self, seconds: float, *, method: str | None = None, path: str | None = None
    ) -> None:
        """Serve the matching REST requests (``method``, ``path`` as in
        :meth:`fail_next_requests`) as usual, but answer each ``seconds`` later, as an
        overloaded Asterisk does (0 turns it off)."""
        self._slow = _slow(seconds, method, path)

    def late_requests(
        self, seconds: float, *, method: str | None = None, path: str | None = None
    ) -> None:
        """Serve the matching REST requests (``method``, ``path`` as in
        :meth:`fail_next_requests`) ``seconds`` after they arrive, as a busy Asterisk does when
        a request waits for an HTTP thread or a lock: one sent later on another connection
        (a DELETE of what this one creates) may be served first. :attr:`held` counts the
        requests held meanwhile (0 turns it off)."""
        self._late = _slow(seconds, method, path)

    def slow_media_setup(self, seconds: float, *, times: int | None = None) -> None:
        """Serve a call's media set-up requests (POST ``/channels/externalMedia``,
        ``/channels/{id}/snoop``, ``/bridges``, ``/bridges/{id}``, ``/bridges/{id}/addChannel``)
        as usual, so their channels and bridges exist and their events are sent, but answer each
        ``seconds`` later, as a loaded Asterisk does; ``times``: only the next that many (None:
        all, until cleared; ``seconds`` 0 turns it off)."""
        self._slow_setup = (seconds, times) if seconds > 0 else (0.0, 0)

    def slow_handshakes(self, n: int, seconds: float) -> None:
        """Serve the next ``n`` events websocket handshakes late, as an overloaded Asterisk does:
        the app is registered at once (calls enter Stasis, their events are queued on that
        socket), the 101 is sent ``seconds`` later; a client that gave up meanwhile never gets
        those events, and the app is unregistered when its connection is seen closed."""
        self._slow_handshakes = (max(0, n), seconds) if seconds > 0 else (0, 0.0)

    @property
    def slow_handshakes_left(self) -> int:
        """Handshakes :meth:`slow_handshakes` still serves late."""
        return self._slow_handshakes[0]

    def take_slow_handshake(self) -> float:
        """Seconds this handshake's 101 is held back (:meth:`slow_handshakes`), 0 for none."""
        n, seconds = self._slow_handshakes
        if n <= 0:
            return 0.0
        self._slow_handshakes = (n - 1, seconds)
        return seconds

    def answer_delay(self, method: str = "", path: str = "") -> float:
        """Seconds the answer to this request is held back (:meth:`slow_requests`,
        :meth:`slow_media_setup`, which counts it)."""
        seconds, times = self._slow_setup
        if seconds > 0 and times != 0 and method.upper() == "POST" and _MEDIA_SETUP.match(path):
            self._slow_setup = (seconds, None if times is None else times - 1)
            return seconds
        return _delay(self._slow, method, path)

    async def hold(self, method: str = "", path: str = "") -> None:
        """Hold this request before it is served, if :meth:`late_requests` says so."""
        seconds = _delay(self._late, method, path)
        if not seconds:
            return
        self.held += 1
        try:
            await asyncio.sleep(seconds)
        finally:
            self.held -= 1

    def take_request_failure(self, method: str = "", path: str = "") -> int | None:
        if self._fail_count <= 0:
            return None
        if self._fail_method is not None and method.upper() != self._fail_method:
            return None
        if self._fail_path is not None and not self._fail_path.search(path):
            return None
        self._fail_count -= 1
        return self._fail_status

    def send_malformed_event(self, app: str, kind: str = "invalid_json") -> bool:
        """Send a broken message to the app: ``invalid_json``, ``no_type`` or
        ``unknown_type``. True if a socket was open."""
        sock = self._sb.app_sockets.get(app)
        if sock is None:
            return False
        texts = {
            "invalid_json": '{"type": "StasisStart", "channel": {',
            "no_type": json.dumps({"application": app, "foo": 1}),
            "unknown_type": json.dumps(
                {"type": "NoSuchEvent", "application": app, "asterisk_id": self._sb.pbx.asterisk_id}
            ),
        }
        sock.push(texts.get(kind, texts["invalid_json"]))
        return True

    def set_rtp(
        self,
        *,
        loss: float | None = None,
        reorder: float | None = None,
        jitter_ms: float | None = None,
        seed: int | None = None,
    ) -> None:
        """Impair RTP the sandbox sends: loss/reorder probabilities, jitter up to ``jitter_ms``."""
        import random

        if loss is not None:
            self.rtp.loss = loss
        if reorder is not None:
            self.rtp.reorder = reorder
        if jitter_ms is not None:
            self.rtp.jitter_ms = jitter_ms
        if seed is not None:
            self.rtp.rng = random.Random(seed)

    def clear(self) -> None:
        """Turn every fault off."""
        self.stall_until = 0.0
        self.delay_ms = 0.0
        self._slow = self._late = None
        self._slow_handshakes = (0, 0.0)
        self._slow_setup = (0.0, 0)
        self.drop_next = 0
        self._fail_count = 0
        self.set_rtp(loss=0.0, reorder=0.0, jitter_ms=0.0)


_Slow = tuple[float, str | None, re.Pattern[str] | None]
"""A request delay: seconds, the method it applies to (None: any), the path pattern."""


def _slow(seconds: float, method: str | None, path: str | None) -> _Slow | None:
    pattern = re.compile(path) if path else None
    return (seconds, method.upper() if method else None, pattern) if seconds > 0 else None


def _delay(rule: _Slow | None, method: str, path: str) -> float:
    if rule is None:
        return 0.0
    seconds, want, pattern = rule
    if want is not None and method.upper() != want:
        return 0.0
    if pattern is not None and not pattern.search(path):
        return 0.0
    return seconds


async def events_handler(sb: Sandbox, request: web.Request) -> web.StreamResponse:
    """GET /ari/events?app=...&api_key=...&subscribeAll=..."""
    if not check_auth(request, sb.user, sb.password):
        return unauthorized()
    apps = [a for a in request.query.get("app", "").split(",") if a]
    if not apps:
        return web.Response(
            status=400,
            text="<html><head><title>400 Bad Request</title></head><body>"
            "<h1>Bad Request</h1><p>HTTP request is missing param: [app]</p></body></html>",
            content_type="text/html",
        )
    ws = web.WebSocketResponse(autoping=True)
    if not ws.can_prepare(request).ok:
        return web.Response(
            status=426, text="Upgrade Required", headers={"Sec-WebSocket-Version": "7, 8, 13"}
        )
    late = sb.faults.take_slow_handshake()
    if not late:
        await ws.prepare(request)
    sock = EventSocket(sb, ws, request.transport, apps)
    sub_all = request.query.get("subscribeAll", "false").lower() in ("true", "1", "yes")
    sb.register_socket(sock, sub_all)
    sb.open_sockets.add(sock)
    try:
        if late:  # registered (calls enter Stasis, their events wait here), the 101 late
            await asyncio.sleep(late)
            await ws.prepare(request)
        sock.task = asyncio.get_running_loop().create_task(sock.writer())
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
            if msg.type == WSMsgType.TEXT:
                await sock.serve_requests(msg.data)
    except ConnectionError:
        pass  # the client gave up on a late handshake: what it was sent is lost
    finally:
        sb.unregister_socket(sock)
        sb.open_sockets.discard(sock)
        if sock.task is not None:
            sock.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sock.task
    return ws


def encode_event(event: dict[str, Any]) -> str:
    return json.dumps(event)
