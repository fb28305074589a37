"""Telling a dead worker from a live one faster than a TTL.

A worker killed with ``kill -9`` (or whose host's kernel sees it die) has its sockets closed by
the kernel at once, so Redis drops its connections at once. Each worker keeps one connection
open under a known name (``CLIENT SETNAME <prefix>live:<worker id>``, :class:`LivenessLink`:
a blocking ``BLPOP`` with no socket timeout, re-opened at once after an error). A standby asks
:class:`DeathWatch` whether the worker holding the application name is gone: its named
connection is missing from ``CLIENT LIST`` for ``confirm`` seconds in a row, while Redis has
been up for 2 s at least (after a Redis restart every worker is missing until its link
re-opens, ~50 ms after Redis answers again) and the worker's registry entry says it keeps such
a connection (``live``; a worker of an older version does not, and only its TTL counts).

Every other connection of a worker to Redis is named too (``<prefix>conn:<worker id>``,
:func:`conn_name`): a process that died closes all of them at once, while a live worker whose
liveness connection is being re-opened keeps the others. So a worker seen with named
connections before, whose liveness connection and every named one are missing together, is
gone at once; only when some remain does the ``confirm`` window apply (it cost ~0.1 s of every
failover: 2 polls at 50 ms).

The TTL stays the backstop for what closes no socket: a stalled process, a network partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["DeathWatch", "LivenessLink", "client_names", "conn_name", "live_name"]

log = logging.getLogger(__name__)
_REOPEN_AFTER = 0.05
_MIN_UPTIME = 2.0


def live_name(prefix: str, worker_id: str) -> str:
    """The client name of ``worker_id``'s liveness connection."""
    return f"{prefix}live:{worker_id}"


def conn_name(prefix: str, worker_id: str) -> str:
    """The client name of ``worker_id``'s other connections (its commands, its heartbeat)."""
    return f"{prefix}conn:{worker_id}"


def client_names(clients: list[dict[str, Any]]) -> set[str]:
    """The names of the connections a ``CLIENT LIST`` shows."""
    return {str(c.get("name", "")) for c in clients}


class LivenessLink:
    """This worker's named Redis connection, kept open while the process lives."""

    def __init__(self, url: str, prefix: str, worker_id: str, *, every: float = 1.0) -> None:
        self.name = live_name(prefix, worker_id)
        self.every = every
        self.redis: aioredis.Redis = aioredis.Redis.from_url(
            url,
            client_name=self.name,
            single_connection_client=True,
            socket_timeout=None,  # BLPOP blocks; a stalled Redis must not close the connection
            socket_connect_timeout=0.25,
            socket_keepalive=True,
        )
        self.up = False
        """True while the named connection is open (the last BLPOP returned)."""

    async def run(self, closing: Callable[[], bool]) -> None:
        """Block on a list nobody pushes to, ``every`` seconds at a time, until ``closing()``;
        an error re-opens the connection after 50 ms, the wait doubling (up to ``every``)
        only while re-opening fails (Redis unreachable): a connection that opened and was
        dropped again is re-opened after 50 ms."""
        wait = _REOPEN_AFTER
        opened = False
        while not closing():
            try:
                if not opened:
                    await self.redis.ping()  # (re-)opens the named connection
                    opened, wait = True, _REOPEN_AFTER
                await self.redis.blpop([self.name], timeout=self.every)
                self.up = True
            except (RedisError, OSError) as exc:
                if self.up:
                    log.debug("liveness connection lost (%s); re-opening", exc)
                self.up = opened = False
                await asyncio.sleep(wait)
                wait = min(2 * wait, max(_REOPEN_AFTER, self.every))

    async def aclose(self) -> None:
        """Close the connection (a clean stop: the registry entry goes too)."""
        with contextlib.suppress(RedisError, OSError):
            await self.redis.aclose()


class DeathWatch:
    """A standby's test: is a worker gone (its liveness connection closed)?"""

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        *,
        worker_ttl: float,
        confirm: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.worker_ttl = worker_ttl
        self.confirm = confirm
        self.clock = clock
        self._missing: dict[str, float] = {}
        self._named: set[str] = set()  # workers seen with named connections (conn_name)
        self.at_once = 0
        """Deaths decided at once (every connection of the worker closed together)."""

    def facts_of(self, pipe: Any, worker_id: str) -> None:
        """Queue on ``pipe`` what :meth:`gone` needs besides the client names: the worker's
        registry entry and ``INFO server`` (two replies, in that order)."""
        pipe.get(f"{self.prefix}worker:{worker_id}")
        pipe.info("server")

    def confirming(self) -> float | None:
        """Seconds until the next missing worker's ``confirm`` window ends (None: no worker is
        being confirmed gone): a standby polls again then, not a poll period later."""
        now = self.clock()
        left = [first + self.confirm - now for first in self._missing.values()]
        return min((t for t in left if t > 0), default=None)

    async def connected(self) -> set[str]:
        """The workers whose liveness connection is open now (draining ones included)."""
        marker = live_name(self.prefix, "")
        names = (str(c.get("name", "")) for c in await self.redis.client_list())
        return {n[len(marker) :] for n in names if n.startswith(marker)}

    async def gone(
        self,
        worker_id: str,
        names: set[str] | None = None,
        facts: tuple[bytes | None, dict[str, Any]] | None = None,
    ) -> bool:
        """True once ``worker_id``'s named connection has been missing for ``confirm`` s, or at
        once when its other named connections are all missing too (and it had some), and the
        test applies: Redis up long enough, the worker keeps such a connection. ``names``:
        the client names of a ``CLIENT LIST`` just read (:func:`client_names`); ``facts``: the
        worker's registry entry and ``INFO server`` read with it (:meth:`facts_of`); each read
        here when None. Redis errors propagate (the caller counts them)."""
        if names is None:
            names = client_names(await self.redis.client_list())
        others = conn_name(self.prefix, worker_id) in names
        if others:
            self._named.add(worker_id)
        if live_name(self.prefix, worker_id) in names:
            self._missing.pop(worker_id, None)
            return False
        if facts is None:
            pipe = self.redis.pipeline(transaction=False)  # one round trip
            self.facts_of(pipe, worker_id)
            raw, info = await pipe.execute()
        else:
            raw, info = facts
        if raw is None or not json.loads(raw).get("live"):
            return False  # no entry (left, or expired: its hold expires too) or an older worker
        if float(info.get("uptime_in_seconds", 0)) < min(self.worker_ttl, _MIN_UPTIME):
            return False  # Redis restarted: live workers have not all reconnected yet
        now = self.clock()
        first = self._missing.setdefault(worker_id, now)
        if worker_id in self._named and not others:  # all its connections closed together
            self.at_once += 1
            return True
        return now - first >= self.confirm
