"""Holding a classic-mode ARI application name in Redis: one worker serves it, standbys wait.

Asterisk gives an application name one events socket per node, so one worker serves each
node's name (``app:<host>:<port>/<app>``, :func:`node_app`) and the others stand by. A hold is
the key ``<prefix><name>`` = the holder's worker id, with the worker TTL, refreshed by the
holder's heartbeat (:data:`voxflow.cluster.beat.BEAT`). A standby polls every 50 ms, one round
trip for all the names it watches (their holders, Redis's ``CLIENT LIST``, and the registry
entries of the holders it saw last time with ``INFO server``: a death is confirmed with no
round trip of its own; it looks again when the confirmation is due), and takes a name that is
free or whose holder's liveness connection closed (:class:`~voxflow.cluster.liveness.DeathWatch`:
a killed process, within ~0.3 s), compare-and-set. A standby for several nodes holds only the
name it took; it then serves that node.

A hold that expired while its holder's liveness connection is still open is not taken at once:
the holder is alive but missed its refreshes (Redis or the host too slow for a TTL: a false
failover would replace a live worker's events socket and move its calls mid-end). While that
connection keeps issuing its blocking reads (``CLIENT LIST`` idle under two TTLs) the process
runs: the name is left to it (its heartbeat takes it back: :data:`voxflow.cluster.beat.BEAT`);
a stalled process (or a partition) keeps its socket open but issues nothing: its name is
taken a TTL after it expired. A holder that stops releases its name explicitly
(``released:<id>``): a standby takes that at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis

from voxflow import observe
from voxflow.cluster.liveness import DeathWatch, client_names, live_name

__all__ = ["RELEASED", "AppHold", "node_app"]

log = logging.getLogger("voxflow.cluster.state")  # its messages, as operators know them
Op = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]
"""``ClusterState._op``: a Redis operation retried briefly; None when it failed."""

_TAKE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return false
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 0
"""
RELEASED = "released:"
"""The value of a hold its holder released (then its id): free for a standby at once."""


class AppHold:
    """This worker's hold on an application name (``ClusterState.holds``)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        key_prefix: str,
        worker_id: str,
        ttl: float,
        op: Op,
        deaths: DeathWatch,
        *,
        poll: float = 0.05,
        retry_in: Callable[[], float] = lambda: 0.0,
    ) -> None:
        """``retry_in``: seconds until Redis is tried again (0 while it answers:
        :meth:`DownGate.retry_in <voxflow.cluster.down.DownGate.retry_in>`)."""
        self.redis = redis
        self.key_prefix = key_prefix
        self.worker_id = worker_id
        self.ttl = ttl
        self.op = op
        self.deaths = deaths
        self.poll = poll
        self.retry_in = retry_in
        self._take = redis.register_script(_TAKE)
        self._release = redis.register_script(_RELEASE)
        self.app: str | None = None
        """The name held (None: none yet)."""
        self.took_over_from: str | None = None
        """The dead worker whose name :meth:`hold_any` took (None: it was free)."""
        self._seen: dict[str, str | None] = {}  # app -> its holder at the last poll
        self._last: dict[str, str] = {}  # app -> the last worker seen holding it
        self._free_since: dict[str, float] = {}  # app -> when first seen expired, holder alive
        self._idle: dict[str, float] = {}  # client name -> seconds since its last command

    async def hold_any(self, apps: Sequence[str], *, poll: float | None = None) -> str:
        """Wait until this worker holds one of ``apps`` (the first free, or whose holder is
        dead) and return it; only that one is held. Checks every ``poll`` s; while Redis is
        unreachable, when its next try is due (a backoff, not a poll every 50 ms). The
        heartbeat keeps it (:data:`voxflow.cluster.beat.BEAT`)."""
        if not apps:
            raise ValueError("hold_any needs at least one application name")
        announced: set[str] = set()
        while True:
            polled = await self.op("watch app holders", lambda: self._holders(apps))
            holders: dict[str, str | None] = {} if polled is None else polled[0]
            names: set[str] = set() if polled is None else polled[1]
            facts: dict[str, Any] = {} if polled is None else polled[2]
            for app, holder in holders.items():
                if await self._try(app, holder, names, facts.get(holder or "")):
                    self.app = app
                    return app
                if app not in announced:
                    announced.add(app)
                    log.warning(
                        "standby: app %s is served by worker %s; taking over when it stops",
                        app,
                        holder,
                    )
            delay = self.poll if poll is None else poll
            if polled is None:  # Redis down: wait for its next try
                await asyncio.sleep(max(delay, self.retry_in()))
                continue
            confirming = self.deaths.confirming()  # a holder seen gone: look again right then
            await asyncio.sleep(delay if confirming is None else min(delay, confirming))

    async def _holders(
        self, apps: Sequence[str]
    ) -> tuple[dict[str, str | None], set[str], dict[str, Any]]:
        """Each of ``apps``' holder (None: free), the client names of Redis's connections, and
        what :meth:`DeathWatch.gone` needs of the holders seen at the last poll (holders rarely
        change: a death is then confirmed with no round trip of its own): one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for app in apps:
            pipe.get(self.key_prefix + app)
        pipe.client_list()
        known = sorted({h for h in self._seen.values() if h is not None})
        for holder in known:
            self.deaths.facts_of(pipe, holder)
        replies = await pipe.execute()
        n = len(apps)
        got = {
            app: raw.decode() if isinstance(raw, bytes) else None
            for app, raw in zip(apps, replies[:n], strict=True)
        }
        self._seen = {a: h for a, h in got.items() if h is None or not h.startswith(RELEASED)}
        for app, h in self._seen.items():
            if h is not None:
                self._last[app] = h
                self._free_since.pop(app, None)
        rest = replies[n + 1 :]
        facts = {h: (rest[2 * i], rest[2 * i + 1]) for i, h in enumerate(known)}
        self._idle = {str(c.get("name", "")): _seconds(c.get("idle")) for c in replies[n]}
        return got, client_names(replies[n]), facts

    async def _try(self, app: str, holder: str | None, names: set[str], facts: Any = None) -> bool:
        """Hold ``app`` if it is free, or take it from a dead holder (compare-and-set: only if
        that holder still has it)."""
        key = self.key_prefix + app
        if holder is None:
            if self._holder_alive(app, names):
                return False
            got = await self.op(
                "hold app", lambda: self.redis.set(key, self.worker_id, nx=True, px=self._ms)
            )
            return bool(got)
        if holder.startswith(RELEASED):  # its holder stopped: free now (compare-and-set)
            free: list[str | int] = [holder, self.worker_id, self._ms]
            return bool(await self.op("take app", lambda: self._take(keys=[key], args=free)))
        if holder == self.worker_id or not await self.op(
            "watch holder", lambda: self.deaths.gone(holder, names, facts)
        ):
            return False
        observe.moment("dead")
        args: list[str | int] = [holder, self.worker_id, self._ms]
        took = await self.op("take app", lambda: self._take(keys=[key], args=args))
        if took:
            self.took_over_from = holder
            observe.moment("held")
            log.warning("worker %s is gone (its Redis connection closed): taking over", holder)
        return bool(took)

    def _holder_alive(self, app: str, names: set[str]) -> bool:
        """True while ``app``'s hold expired and its last holder may take it back: its
        liveness connection is open (``names``: Redis's client names) and either it still
        issues its blocking reads (idle under two TTLs: the process runs, only its refreshes
        do not get through) or the hold expired less than a TTL ago (a stalled process)."""
        last = self._last.get(app)
        if last is None or last == self.worker_id:
            return False
        name = live_name(self.deaths.prefix, last)
        if name not in names:
            self._free_since.pop(app, None)
            return False
        now = time.monotonic()
        since = self._free_since.get(app)
        if since is None:
            self._free_since[app] = since = now
            log.warning(
                "app %s: the hold of worker %s expired but its Redis connection is open: "
                "leaving the name to it while it runs",
                app, last,
            )  # fmt: skip
        if self._idle.get(name, math.inf) < 2 * self.ttl:
            return True
        return now - since < self.ttl

    def kept(self, got: int) -> None:
        """What the heartbeat's refresh of the hold found (:data:`voxflow.cluster.beat.BEAT`:
        compare-and-expire, then ``SET NX`` when it had expired): 0 is another worker's now."""
        if got == 0 and self.app is not None:
            log.warning("app %s is held by another worker now", self.app)

    async def release(self) -> None:
        """Let a standby take the name (if this worker still holds it)."""
        if self.app is not None:
            key, self.app = self.key_prefix + self.app, None
            args: list[str | int] = [self.worker_id, RELEASED + self.worker_id, self._ms]
            await self.op("release app", lambda: self._release(keys=[key], args=args))

    @property
    def _ms(self) -> int:
        return max(1, int(self.ttl * 1000))


def _seconds(raw: object) -> float:
    """A ``CLIENT LIST`` number of seconds (``inf`` when unreadable)."""
    try:
        return float(str(raw))
    except ValueError:
        return math.inf


def node_app(ari_url: str, app: str) -> str:
    """The name a classic-mode worker holds for ``app`` on the Asterisk node at ``ari_url``:
    ``<host>:<port>/<app>`` (each node gives its application name its own events socket, so
    the workers of two nodes with the same ``Stasis(app)`` do not stand by for each other).
    Never the URL's credentials."""
    parts = urlsplit(ari_url)
    port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    return f"{parts.hostname or ''}:{port}/{app}"
