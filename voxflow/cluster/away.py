"""Calls that ended ``unknown``, kept in Redis for their return on any worker.

``away:<channel id>`` holds the checkpoint (with its trip) of a call that ended ``unknown``
(sent to the dialplan's queue or transfer, no word from Asterisk since: per-call websockets),
for ``ttl`` s (``[run] away_ttl``). When the caller comes back (an agent hung up), the worker
the return reaches takes it: it is the call's ``checkpoint:<id>`` again, the call's end claim
and end record go (the resumed call ends again), and the flow goes on at the trip's step.
:class:`RedisAwayCalls` is ``ClusterState.away``; its Redis operations go through the state's
``op`` (retried, counted, skipped while Redis is down).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from voxflow.ir.models import Flow
from voxflow.runtime.away import DEFAULT_AWAY_TTL
from voxflow.runtime.checkpoint import Checkpoint

__all__ = ["RedisAwayCalls"]

log = logging.getLogger("voxflow.cluster.state")  # its messages, as operators know them
Op = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]
"""``ClusterState._op``: a Redis operation retried briefly; None when it failed."""


class RedisAwayCalls:
    """:class:`~voxflow.runtime.checkpoint.AwayCalls` in Redis (``key(kind, name)``: the
    state's key names; ``flow``: a flow version by hash; ``call_ttl``: a checkpoint's TTL)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        key: Callable[[str, str], str],
        op: Op,
        flow: Callable[[str], Awaitable[Flow | None]],
        *,
        call_ttl: float,
        ttl: float = DEFAULT_AWAY_TTL,
    ) -> None:
        self.redis = redis
        self._k = key
        self._op = op
        self._flow = flow
        self.call_ttl = call_ttl
        self.ttl = ttl

    async def keep_away(self, call_id: str, at: Checkpoint, flow: Flow) -> None:
        """``away:<id>`` is ``at`` for ``ttl`` s (``flow`` is in the flow store since the call
        began: ``flow:<hash>``); nothing with ``ttl`` 0."""
        if self.ttl <= 0:
            return
        try:
            raw = at.to_json()
        except TypeError as exc:  # a value JSON lacks: the checkpoint saves failed alike
            log.warning("call %s is not kept for its return: %s", call_id, exc)
            return
        key, ms = self._k("away", call_id), max(1, int(self.ttl * 1000))
        await self._op("keep an away call", lambda: self.redis.set(key, raw, px=ms))

    async def come_back(self, call_id: str) -> tuple[Checkpoint, Flow] | None:
        """``away:<id>`` is ``checkpoint:<id>`` again, and the call's end claim and end record
        go; its checkpoint and flow version. None when there is none, or it or its flow
        version is unreadable (the key then stays until it expires)."""
        away = self._k("away", call_id)
        raw = await self._op("read an away call", lambda: self.redis.get(away))
        if raw is None:
            return None
        try:
            cp = Checkpoint.from_json(raw)
        except ValueError as exc:
            log.warning("call %s came back: its kept checkpoint is unreadable: %s", call_id, exc)
            return None
        flow = await self._flow(cp.flow_hash)
        if flow is None:
            log.warning(
                "call %s came back: its flow version %s is unreadable", call_id, cp.flow_hash
            )
            return None

        async def restore() -> Any:
            async with self.redis.pipeline(transaction=True) as p:
                p.set(self._k("checkpoint", call_id), raw, px=max(1, int(self.call_ttl * 1000)))
                p.delete(away, self._k("end", call_id), self._k("ending", call_id))
                return await p.execute()

        done = await self._op("restore an away call", restore)
        return None if done is None else (cp, flow)
