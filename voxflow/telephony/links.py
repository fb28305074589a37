"""Asterisk's outbound ARI websockets as seen by a worker: one :class:`AriLink` per connection.

In ``persistent`` mode Asterisk keeps one connection for the app; in ``per_call`` mode it opens
one per call, registered as ``<app>:<channel name>``. Either way the events arrive on the link
and REST requests go back on it (:mod:`voxflow.ari.wsrest`). A call's session keeps one
:class:`~voxflow.ari.rest.AriRestClient` bound to its ARI app name, not to a connection: when
Asterisk reconnects a dropped link (to this worker) the session carries on over the new one. A
link that is not back within ``link_grace`` seconds ends its calls here (they are no longer ours
to drive). A new link whose app already holds channels this worker has no session for (the
worker that served them died) hangs them up: the caller hears the call end, not silence; in
cluster mode (``VoxtraApp.adopt_link_orphans``) it adopts them instead, and each resumes from
its checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any, Protocol

from voxflow.ari.cleanup import again_if_late
from voxflow.ari.models import ApplicationRegistered, AriEvent, Channel, EventParser, StasisStart
from voxflow.ari.rest import AriRestClient, RestReply
from voxflow.ari.wsrest import WsRestTransport, is_rest_response
from voxflow.ari.wsserver import AriWebsocketServer, ServerConnection
from voxflow.errors import (
    AriConnectionError,
    AriError,
    AriNotFound,
    AriTimeoutError,
    LinkClosedError,
    LinkGoneError,
)

__all__ = ["MODES", "AppTransport", "AriLink", "AriLinks", "LinkOwner"]

log = logging.getLogger(__name__)

MODES = ("classic", "persistent", "per_call")


class LinkOwner(Protocol):
    """What the links need from the app they serve (``VoxtraApp``)."""

    def on_link_event(self, link: AriLink, event: AriEvent) -> None:
        """An event arrived on ``link``."""

    def on_link_lost(self, app_name: str) -> None:
        """``app_name`` was not reconnected within the grace period."""

    def on_link_down(self, app_name: str) -> None:
        """``app_name``'s link closed while calls use it: the grace period starts."""

    def app_in_use(self, app_name: str) -> bool:
        """A live call is driven through ``app_name``."""

    def awaits_link(self, app_name: str) -> bool:
        """A live call here, not away in the dialplan, is driven through ``app_name``: its
        requests wait while the link is down (:meth:`AriLinks.link_back`)."""

    def resync_app(self, app_name: str, channel_ids: set[str]) -> list[str]:
        """A link (re)registered ``app_name`` holding ``channel_ids``: settle the sessions of
        that app that are gone; return the channels no session drives (orphans)."""

    adopt_link_orphans: bool
    """Orphans are adopted (:meth:`adopt_link_orphan`) rather than hung up."""

    def adopt_link_orphan(self, channel: Channel, app_name: str) -> bool:
        """Adopt an orphan of ``app_name``; False: hang it up."""

    async def remove_stale_bridges(
        self, rest: AriRestClient, app_name: str, bridge_ids: set[str]
    ) -> list[str]:
        """Remove voxflow's bridges of ``app_name`` no live session owns (a dead worker's)."""


class AriLink:
    """One connection from Asterisk: its events, its REST requests, the app it registered."""

    def __init__(self, links: AriLinks, conn: ServerConnection) -> None:
        self.links = links
        self.conn = conn
        self.transport = WsRestTransport(conn.send_text)
        self.app_name = ""
        self.parser = EventParser(lazy=True)
        self.events = 0
        conn.on_message = self.on_message

    def __repr__(self) -> str:
        return f"AriLink(app={self.app_name!r}, open={self.conn.is_open})"

    def on_message(self, raw: bytes) -> None:
        if is_rest_response(raw):
            self.transport.on_response(raw)
            return
        event = self.parser.parse(raw)
        if event is None:
            return
        self.events += 1
        if type(event) is ApplicationRegistered:
            self.links._registered(self, event.application)
            return
        if type(event) is StasisStart and self.links._resyncing:
            self.links._entered(self.app_name or event.application, event.channel.id)
        self.links.owner.on_link_event(self, event)


class AppTransport:
    """REST for one ARI app name, over whichever link currently serves that name.

    While that link is down and a call here is driven through it, a request waits
    (:meth:`AriLinks.link_back`) instead of failing at once: the link comes back (it goes
    through), or the call ends here (:class:`LinkGoneError`; in cluster mode: it moved to the
    worker Asterisk re-connected it to, which cancels the flow here). A request the link's
    drop cut off waits the same way, then fails as before (Asterisk may have acted on it)."""

    def __init__(self, links: AriLinks, app_name: str) -> None:
        self.links = links
        self.app_name = app_name

    async def send(
        self, method: str, path: str, params: dict[str, str], json: Any, timeout: float
    ) -> RestReply:
        what = f"ARI {method} {path}"
        link = self.links.by_app.get(self.app_name)
        if link is None:
            link = await self.links.link_back(self.app_name, what)
        try:
            return await link.transport.send(method, path, params, json, timeout)
        except AriConnectionError as exc:
            if isinstance(exc, AriTimeoutError) or link.conn.is_open:
                raise
            with contextlib.suppress(LinkClosedError):  # the cut-off request may have acted
                await self.links.link_back(self.app_name, what)  # moved or ended: not an error
            raise


class AriLinks:
    """The websocket server Asterisk connects to, and its links by app name."""

    def __init__(
        self,
        owner: LinkOwner,
        *,
        mode: str,
        listen_auth: tuple[str, str],
        http: tuple[str, str, str],
        listen: tuple[str, int] = ("127.0.0.1", 8765),
        ping_interval: float = 15.0,
        request_timeout: float = 10.0,
        link_grace: float = 10.0,
    ) -> None:
        """``listen_auth``: the (username, password) Asterisk presents (websocket_client.conf);
        ``http``: (ARI URL or "", ARI user, password) for what the socket refuses (406)."""
        self.mode = mode
        self.owner = owner
        self._http = http
        self.request_timeout = request_timeout
        self.link_grace = link_grace
        self.server = AriWebsocketServer(
            listen_auth[0],
            listen_auth[1],
            self._connected,
            host=listen[0],
            port=listen[1],
            ping_interval=ping_interval,
        )
        self.by_app: dict[str, AriLink] = {}
        self.links: set[AriLink] = set()
        self._clients: dict[str, AriRestClient] = {}
        self._grace: dict[str, asyncio.TimerHandle] = {}
        self._changed: dict[str, asyncio.Event] = {}  # app name -> set when its link is back
        # app name -> for each resync in flight, the channels that entered Stasis meanwhile
        self._resyncing: dict[str, list[set[str]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._retired: list[AriRestClient] = []
        self._closing = False
        self.refusing = False
        self.orphans_hung_up = 0
        self.orphans_adopted = 0

    @property
    def connected(self) -> bool:
        return any(link.conn.is_open for link in self.links)

    async def start(self) -> None:
        await self.server.start()

    async def close(self) -> None:
        """Close every link, then the REST clients (idempotent)."""
        self._closing = True
        await self.server.close()
        for timer in self._grace.values():
            timer.cancel()
        self._grace.clear()
        for name in list(self._changed):
            self.wake(name)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        clients = [*self._clients.values(), *self._retired]
        self._clients.clear()
        self._retired.clear()
        for client in clients:
            await client.close()

    def refuse(self) -> None:
        """A draining worker takes no new link: the listening socket closes (a connection
        attempt is refused, so the load balancer sends it to another worker) and a link that
        registers now is closed before anything is done with its calls (Asterisk retries)."""
        self.refusing = True
        self.server.stop_listening()

    async def close_apps(self, app_names: set[str]) -> None:
        """Close the links of ``app_names`` (1001, going away) without settling their calls:
        Asterisk re-connects each, through the load balancer, to another worker."""
        links = [link for name, link in self.by_app.items() if name in app_names]
        await asyncio.gather(*(link.conn.close(1001) for link in links), return_exceptions=True)

    def rest_for(self, app_name: str) -> AriRestClient:
        """The REST client for ``app_name`` (created once; follows reconnects)."""
        client = self._clients.get(app_name)
        if client is None:
            url, user, password = self._http
            client = AriRestClient(
                url or "http://127.0.0.1:8088/ari",
                user,
                password,
                timeout=self.request_timeout,
                transport=AppTransport(self, app_name),
                http_fallback=bool(url),
            )
            self._clients[app_name] = client
        return client

    def forget(self, app_name: str) -> None:
        """A per-call app's call is over: drop its client."""
        client = self._clients.pop(app_name, None)
        if client is None:
            return
        if self._closing:
            self._retired.append(client)  # close() closes it
        else:
            self._spawn(client.close())

    # ------------------------------------------------------------------ links

    def _connected(self, conn: ServerConnection) -> None:
        link = AriLink(self, conn)
        self.links.add(link)
        conn.on_closed(lambda: self._closed(link))

    def _registered(self, link: AriLink, app_name: str) -> None:
        per_call = ":" in app_name
        if (self.mode == "per_call") != per_call:
            log.warning(
                "Asterisk registered app %r on a %s-mode worker; check websocket_client.conf "
                "connection_type",
                app_name,
                self.mode,
            )
        if self.refusing:  # draining: the call's next attempt goes to another worker
            log.info("draining: closing the new link of app %s", app_name)
            link.conn.abort()
            return
        old = self.by_app.get(app_name)
        link.app_name = app_name
        self.by_app[app_name] = link
        timer = self._grace.pop(app_name, None)
        if timer is not None:
            timer.cancel()
            log.info("Asterisk reconnected app %s", app_name)
        if old is not None and old is not link:
            old.conn.abort()
        self.wake(app_name)
        self._spawn(self._resync(app_name))

    def _closed(self, link: AriLink) -> None:
        self.links.discard(link)
        link.transport.close()
        name = link.app_name
        if not name or self.by_app.get(name) is not link:
            return
        del self.by_app[name]
        if ":" in name and not self.owner.app_in_use(name):  # a per-call link after its call
            self.forget(name)
            return
        if self.link_grace <= 0:
            self._lost(name)
            return
        loop = asyncio.get_running_loop()
        self._grace[name] = loop.call_later(self.link_grace, self._lost, name)
        self.owner.on_link_down(name)

    def up(self, app_name: str) -> bool:
        """A link serves ``app_name`` now."""
        return app_name in self.by_app

    def wake(self, app_name: str) -> None:
        """``app_name``'s link came back, or one of its calls ended here: requests waiting in
        :meth:`link_back` look again."""
        changed = self._changed.pop(app_name, None)
        if changed is not None:
            changed.set()

    async def link_back(self, app_name: str, what: str) -> AriLink:
        """The link serving ``app_name``, waiting while it is down and a call here not away in
        the dialplan is driven through it: until Asterisk re-connects it (the link), or the
        call ends here (:class:`LinkGoneError`: not re-connected within the grace, or let go to
        another worker). The wait ends at the latest ``request_timeout`` s after the grace
        (:class:`AriConnectionError`, as when no call waits for the link)."""
        loop = asyncio.get_running_loop()
        timer = self._grace.get(app_name)
        deadline = (timer.when() if timer is not None else loop.time()) + self.request_timeout
        waited = False
        while True:
            link = self.by_app.get(app_name)
            if link is not None:
                return link
            if waited and not self.owner.awaits_link(app_name):
                raise LinkGoneError(f"{what} not sent: the call ended here while its link was down")
            left = deadline - loop.time()
            if ":" in app_name and not self.owner.app_in_use(app_name):
                raise LinkClosedError(
                    f"{what} not sent: the websocket of per-call app {app_name!r} closed after"
                    " its call"
                )
            if left <= 0 or self._closing or not self.owner.awaits_link(app_name):
                raise AriConnectionError(
                    f"{what} failed: no websocket from Asterisk for app {app_name!r}"
                )
            changed = self._changed.setdefault(app_name, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)
            waited = True

    def _lost(self, app_name: str) -> None:
        self._grace.pop(app_name, None)
        if app_name in self.by_app:
            return
        self.owner.on_link_lost(app_name)
        if ":" in app_name:
            self.forget(app_name)
        self.wake(app_name)

    async def _resync(self, app_name: str) -> None:
        """After a (re)registration: sessions whose channel left meanwhile are settled, and
        channels in the app that no session here drives (their worker died) are hung up."""
        rest = self.rest_for(app_name)
        entered: set[str] = set()
        self._resyncing.setdefault(app_name, []).append(entered)
        try:  # a GET answered late goes again with twice the deadline (an overloaded Asterisk)
            info = await again_if_late(
                lambda deadline: rest.get_application(app_name, timeout=deadline),
                f"listing app {app_name}",
                base=rest.timeout,
            )
        except AriError as exc:
            log.debug("could not list app %s: %s", app_name, exc)
            return
        finally:
            self._done_resyncing(app_name, entered)
        # a call that entered after Asterisk listed the channels is new, not gone
        channel_ids = {str(c) for c in info.get("channel_ids", [])} | entered
        orphans = self.owner.resync_app(app_name, channel_ids)
        if orphans:  # a dead worker's calls: its bridges go first (an adopted call makes its own)
            bridge_ids = {str(b) for b in info.get("bridge_ids", [])}
            try:
                await self.owner.remove_stale_bridges(rest, app_name, bridge_ids)
            except AriError as exc:
                log.debug("could not remove the stale bridges of app %s: %s", app_name, exc)
        # all at once: a persistent link brings every call of a dead worker, each caller waiting
        await asyncio.gather(*(self._settle(rest, app_name, cid) for cid in orphans))

    def _entered(self, app_name: str, channel_id: str) -> None:
        """A StasisStart for ``app_name`` arrived: note it for the resyncs in flight."""
        for entered in self._resyncing.get(app_name, ()):
            entered.add(channel_id)

    def _done_resyncing(self, app_name: str, entered: set[str]) -> None:
        """A resync of ``app_name`` has its channel list: stop noting calls for it."""
        pending = [s for s in self._resyncing.get(app_name, ()) if s is not entered]
        if pending:
            self._resyncing[app_name] = pending
        else:
            self._resyncing.pop(app_name, None)

    async def _settle(self, rest: AriRestClient, app_name: str, cid: str) -> None:
        """One orphan of ``app_name``: adopted (cluster mode), else hung up."""
        if self.owner.adopt_link_orphans and await self._adopt(rest, app_name, cid):
            return
        log.warning(
            "call %s is in app %s but no session here drives it (its worker is gone); "
            "hanging it up",
            cid,
            app_name,
        )
        self.orphans_hung_up += 1
        with contextlib.suppress(AriError):
            await rest.hangup(cid)

    async def _adopt(self, rest: AriRestClient, app_name: str, channel_id: str) -> bool:
        """Hand an orphan to the owner (cluster mode: it resumes from its checkpoint); True
        when adopted or already gone."""
        try:
            channel = await rest.get_channel(channel_id)
        except AriNotFound:
            return True  # hung up meanwhile
        except AriError as exc:
            log.debug("could not read orphan %s: %s", channel_id, exc)
            return False
        if not self.owner.adopt_link_orphan(channel, app_name):
            return False
        self.orphans_adopted += 1
        log.warning("call %s is in app %s with no session here: adopted", channel_id, app_name)
        return True

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
