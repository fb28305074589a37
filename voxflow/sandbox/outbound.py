"""Asterisk 22's outbound ARI websockets and StasisBroadcast, emulated.

:class:`OutboundWebsocket` is one ``ari.conf`` ``type=outbound_websocket`` section with its
``websocket_client.conf`` connection. The sandbox connects out to the worker as Asterisk does
(``captures/outbound-websocket.json``): ``GET <uri path>`` with HTTP Basic auth and
``Sec-WebSocket-Protocol: ari``; the first frame is ``ApplicationRegistered``; REST requests are
served on the socket. ``per_call_config``: one connection per call entering ``Stasis(app)``,
registered as ``<app>:<channel name>``, closed with 1000 three seconds after StasisEnd; if no
connection can be made after ``reconnect_attempts`` tries the call goes back to the dialplan with
``STASISSTATUS=FAILED``. ``persistent``: one connection for the app, made at start and remade
every ``reconnect_interval`` while it is down. A connection dropped mid-call is remade like the
first (per call: if that fails, the channel is hung up, as Asterisk's "Hanging up after exhausting
retries").

:class:`Broadcasts` is ``StasisBroadcast(timeout_ms, app_filter, args, notify_claimed)``
(``captures/stasis-broadcast.json``): ``CallBroadcast`` to every connected app the regex matches,
``POST /events/claim`` arbitration (204 the first, 409 the others, 404 late or unknown, 400
missing parameters), ``CallClaimed`` to the offered apps with notify_claimed, then StasisStart for
the winner with the args; unclaimed at the timeout: ``STASISSTATUS=TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from voxflow.errors import ConfigError

from .model import Channel, RestError
from .ws import EventSocket

if TYPE_CHECKING:
    from .server import Sandbox

__all__ = ["Broadcast", "Broadcasts", "OutboundWebsocket", "OutboundWebsockets"]

log = logging.getLogger(__name__)

CONNECTION_TYPES = ("per_call_config", "persistent")


@dataclass
class OutboundWebsocket:
    """``ari.conf`` [app] type=outbound_websocket + its websocket_client.conf (times in s)."""

    app: str
    uri: str
    username: str
    password: str
    connection_type: str = "per_call_config"
    connection_timeout: float = 0.5
    reconnect_interval: float = 0.5
    reconnect_attempts: int = 4
    close_after_end: float = 3.0

    def __post_init__(self) -> None:
        if self.connection_type not in CONNECTION_TYPES:
            raise ConfigError(f"connection_type must be one of {', '.join(CONNECTION_TYPES)}")
        if not self.uri.startswith(("ws://", "wss://")):
            raise ConfigError(f"uri must be a ws:// or wss:// URL, got {self.uri!r}")


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class OutboundWebsockets:
    """The sandbox's outbound connections (one config per app name)."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.configs: dict[str, OutboundWebsocket] = {}
        self.sockets: dict[str, EventSocket] = {}  # registered app name -> its connection
        self.connects = 0
        self.failures = 0
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, cfg: OutboundWebsocket) -> None:
        self.configs[cfg.app] = cfg
        if cfg.connection_type == "persistent":
            self._spawn(self._persistent(cfg))

    def per_call(self, app: str) -> OutboundWebsocket | None:
        cfg = self.configs.get(app)
        return cfg if cfg is not None and cfg.connection_type == "per_call_config" else None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for sock in list(self.sockets.values()):
            with contextlib.suppress(Exception):
                await sock.ws.close()
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("outbound websocket task failed", exc_info=task.exception())

    # --- connections -----------------------------------------------------------------------

    async def _connect_once(self, cfg: OutboundWebsocket) -> aiohttp.ClientWebSocketResponse | None:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(cfg.connection_timeout):
                return await self._http.ws_connect(
                    cfg.uri,
                    protocols=("ari",),
                    headers={"Authorization": _basic(cfg.username, cfg.password)},
                    autoping=True,
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            status = getattr(exc, "status", "")  # a refused handshake's HTTP status
            log.info(
                "websocket connection to %s failed: %s %s", cfg.uri, type(exc).__name__, status
            )
            return None

    async def connect(self, cfg: OutboundWebsocket, name: str, tries: int) -> EventSocket | None:
        """Connect (up to ``tries`` attempts, 0 = forever) and register ``name`` on it."""
        attempt = 0
        while True:
            ws = await self._connect_once(cfg)
            if ws is not None:
                return self._register(ws, name)
            attempt += 1
            if tries and attempt >= tries:
                self.failures += 1
                log.warning(
                    "%s: Websocket connection to %s failed after %d tries", name, cfg.uri, attempt
                )
                return None
            await asyncio.sleep(cfg.reconnect_interval)

    def _register(self, ws: aiohttp.ClientWebSocketResponse, name: str) -> EventSocket:
        sb = self.sb
        self.connects += 1
        sock = EventSocket(sb, ws, None, [name])
        registered = {
            "type": "ApplicationRegistered",
            "timestamp": sb.pbx.now_ts(),
            "application": name,
            "asterisk_id": sb.pbx.asterisk_id,
        }
        sock.push(json.dumps(registered))
        sb.register_socket(sock, False)
        sb.open_sockets.add(sock)
        self.sockets[name] = sock
        sock.task = asyncio.get_running_loop().create_task(sock.writer())
        return sock

    async def serve(self, sock: EventSocket) -> None:
        """Read the worker's frames (REST requests) until the connection ends."""
        ws = sock.ws
        assert isinstance(ws, aiohttp.ClientWebSocketResponse)
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await sock.serve_requests(msg.data)
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    break
        finally:
            self.sb.unregister_socket(sock)
            self.sb.open_sockets.discard(sock)
            if self.sockets.get(sock.apps[0]) is sock:
                del self.sockets[sock.apps[0]]
            if sock.task is not None:
                sock.task.cancel()

    async def _persistent(self, cfg: OutboundWebsocket) -> None:
        while True:
            sock = await self.connect(cfg, cfg.app, 0)
            if sock is not None:
                await self.serve(sock)
                log.warning("persistent websocket for %s dropped; reconnecting", cfg.app)
            await asyncio.sleep(cfg.reconnect_interval)

    # --- per call --------------------------------------------------------------------------

    def enter_per_call(self, cfg: OutboundWebsocket, ch: Channel, args: list[str]) -> None:
        """Stasis(app) on a per-call app: connect, then StasisStart (or FAILED)."""
        self._spawn(self._per_call(cfg, ch, args))

    async def _per_call(self, cfg: OutboundWebsocket, ch: Channel, args: list[str]) -> None:
        pbx = self.sb.pbx
        name = f"{cfg.app}:{ch.name}"
        sock = await self.connect(cfg, name, cfg.reconnect_attempts)
        if sock is None:
            if not ch.hungup:
                log.warning("Stasis app '%s' doesn't exist", cfg.app)
                self.sb.back_to_dialplan(ch, "FAILED")
            return
        if ch.hungup:
            await sock.ws.close()
            return
        pbx.enter_stasis(ch, name, args)
        while True:
            await self.serve(sock)
            newer = self.sockets.get(name)
            if ch.hungup or ch.app != name or (newer is not None and newer is not sock):
                return  # over, or replaced: the call re-entered Stasis over a newer socket
            log.warning("%s: websocket dropped mid-call; reconnecting", name)
            again = await self.connect(cfg, name, cfg.reconnect_attempts)
            if again is None:
                if not ch.hungup:  # "Hanging up after exhausting retries"
                    pbx.hangup(ch, 16)
                return
            sock = again

    def stasis_ended(self, name: str, channel_name: str) -> None:
        """StasisEnd went out on a per-call socket: when it is the call's own channel (its
        Stasis() returned), Asterisk closes the socket 3 s later; another channel of the app
        (an externalMedia or snoop channel) leaving does not close it."""
        sock = self.sockets.get(name)
        app, _, owner = name.partition(":")
        cfg = self.configs.get(app)
        if sock is None or cfg is None or cfg.connection_type != "per_call_config":
            return
        if owner != channel_name:
            return

        async def close_later() -> None:
            if cfg.close_after_end > 0:  # 0: at once (a test forcing the worst ordering)
                await asyncio.sleep(cfg.close_after_end)
            with contextlib.suppress(Exception):
                await sock.ws.close(code=1000)

        self._spawn(close_later())


@dataclass
class Broadcast:
    """One channel in StasisBroadcast()."""

    channel: Channel
    apps: list[str]
    args: list[str]
    notify_claimed: bool
    claimed_by: str | None = None
    timer: object = None
    claims: list[tuple[str, int]] = field(default_factory=list)


class Broadcasts:
    """StasisBroadcast() offers and ``POST /events/claim`` arbitration."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.active: dict[str, Broadcast] = {}
        self.claims: list[tuple[str, str, int]] = []  # (channel id, app, status), in order

    def offer(
        self, ch: Channel, timeout: float, app_filter: str, args: list[str], notify_claimed: bool
    ) -> Broadcast:
        pbx = self.sb.pbx
        try:
            pattern = re.compile(app_filter) if app_filter else None
        except re.error as exc:
            raise ConfigError(f"invalid StasisBroadcast app filter {app_filter!r}: {exc}") from None
        apps = [
            a.name
            for a in pbx.apps.values()
            if a.connected and (pattern is None or pattern.search(a.name))
        ]
        bc = Broadcast(ch, apps, list(args), notify_claimed)
        self.active[ch.id] = bc
        ch.app_name, ch.app_data = (
            "StasisBroadcast",
            ",".join(
                [
                    str(int(timeout * 1000)),
                    app_filter,
                    ":".join(args),
                    "yes" if notify_claimed else "",
                ]
            ).rstrip(","),
        )
        fields = {"channel": ch.json(), "caller": ch.caller[1], "called": ch.exten}
        pbx.emit("CallBroadcast", fields, apps=apps)
        bc.timer = self.sb.clock.call_later(timeout, lambda: self._timeout(ch.id))
        return bc

    def _timeout(self, cid: str) -> None:
        bc = self.active.get(cid)
        if bc is None or bc.claimed_by is not None:
            return
        del self.active[cid]
        if not bc.channel.hungup:
            self.sb.back_to_dialplan(bc.channel, "TIMEOUT")

    def left_stasis(self, cid: str) -> None:
        """The claimed channel left Stasis: later claims are 404."""
        self.active.pop(cid, None)

    def claim(self, cid: str, app: str) -> None:
        """``POST /events/claim``: returns for 204, raises RestError otherwise."""
        if not cid:
            raise RestError(400, "channelId parameter is required")
        if not app:
            raise RestError(400, "application parameter is required")
        bc = self.active.get(cid)
        if bc is None or bc.channel.hungup:
            self.claims.append((cid, app, 404))
            raise RestError(404, "Channel not found or not in broadcast state")
        if bc.claimed_by is not None:
            self.claims.append((cid, app, 409))
            raise RestError(409, "Channel has already been claimed by another application")
        bc.claimed_by = app
        self.claims.append((cid, app, 204))
        pbx = self.sb.pbx
        ch = bc.channel
        if bc.notify_claimed:
            pbx.emit("CallClaimed", {"channel": ch.json(), "winner_app": app}, apps=bc.apps)
        cancel = getattr(bc.timer, "cancel", None)
        if cancel is not None:
            cancel()
        if not pbx.enter_stasis(ch, app, bc.args):
            self.active.pop(cid, None)
            self.sb.back_to_dialplan(ch, "FAILED")
