"""The cluster's flow versions as one worker sees them: stored, released, current.

``flow:<sha256>`` holds a compiled flow's JSON (content-addressed, no TTL); ``current:<name>``
the hash of the version new calls of that flow take on every worker; ``released`` (a hash: flow
name -> that same hash, written with it by :data:`~voxflow.cluster.beat.RELEASE`) lists them
for the heartbeat (:data:`~voxflow.cluster.beat.BEAT`), which reads them with the worker's other
background writes instead of a ``SCAN`` over the whole keyspace. :class:`Versions` is
``ClusterState.versions``; its Redis operations go through the state's ``op`` (retried,
counted, skipped while Redis is down).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from voxflow.cluster.beat import RELEASE
from voxflow.ir.models import Flow
from voxflow.runtime.checkpoint import flow_hash

__all__ = ["Versions"]

Op = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]


class Versions:
    """Published and released flow versions (``key(kind, name)``: the state's key names)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        key: Callable[[str, str], str],
        op: Op,
        failed: Callable[[str, Exception], None],
    ) -> None:
        self.redis = redis
        self._k = key
        self._op = op
        self._failed = failed
        self.key = key("released", "")[:-1]
        """The released-flows hash (flow name -> hash)."""
        self._release = redis.register_script(RELEASE)
        self._published: set[str] = set()
        self._flows: dict[str, Flow] = {}
        self._released: dict[str, tuple[str, Flow]] = {}
        self.current: dict[str, str] = {}
        """Flow name -> the current hash last read (used while Redis is unreachable)."""
        self._read_once = False
        self.refreshing: asyncio.Task[None] | None = None
        """The background fetch of new versions (cancelled by the state's close)."""

    async def publish(self, flow: Flow, fhash: str | None = None) -> str:
        """Store the compiled flow under its hash (once per process); returns the hash."""
        h = fhash or flow_hash(flow)
        if h not in self._published:
            text = flow.model_dump_json()
            done = await self._op("publish flow", lambda: self.redis.set(self._k("flow", h), text))
            if done is not None:
                self._published.add(h)
                self._flows[h] = flow
        return h

    async def release(self, flow: Flow, *, only_if_new: bool = False) -> str:
        """Publish ``flow`` and make it the cluster's current version of its name: new calls of
        that flow on every worker take it (calls in progress keep theirs). ``only_if_new``: only
        when the cluster has no current version yet (a worker starting up)."""
        h = await self.publish(flow)
        await self._make_current(flow.name, h, only_if_new)
        return h

    async def _make_current(self, name: str, h: str, only_if_new: bool) -> None:
        """:data:`~voxflow.cluster.beat.RELEASE` of version ``h`` of flow ``name``."""
        keys = [self._k("current", name), self.key]
        args: list[str | int] = [h, int(only_if_new), name]
        await self._op("release flow", lambda: self._release(keys=keys, args=args))

    async def restore(self) -> None:
        """Redis lost the cluster's state (restarted empty): store again every version this
        worker knows (a call pinned to one resumes on any worker) and release again the ones
        it read as current, where no version is current yet."""
        self._published.clear()
        for h, flow in list(self._flows.items()):
            await self.publish(flow, h)
        for name, h in list(self.current.items()):
            if h in self._published:
                await self._make_current(name, h, only_if_new=True)

    async def released(self) -> dict[str, tuple[str, Flow]]:
        """The cluster's current version of every released flow: name -> (hash, flow) (new
        calls are routed by it). Read from Redis by the first call (it waits), then by every
        heartbeat (:meth:`saw`; a call never waits for it); the last known set while Redis is
        unreachable."""
        if not self._read_once:
            if self.refreshing is None or self.refreshing.done():
                self.refreshing = asyncio.ensure_future(self._refresh())
            await asyncio.shield(self.refreshing)
        return self._released

    def saw(self, got: dict[str, str]) -> None:
        """The released flows a heartbeat read: new versions are fetched in the background."""
        if not self._read_once:
            return  # the first read (its SCAN included) is released()'s
        self.current.update(got)
        known = {name: h for name, (h, _) in self._released.items()}
        if got != known and (self.refreshing is None or self.refreshing.done()):
            self.refreshing = asyncio.ensure_future(self._refresh(got))

    async def _refresh(self, got: dict[str, str] | None = None) -> None:
        """Fetch the released flows ``got`` (name -> hash; None: read them first)."""
        if got is None:
            got = await self._op("list released flows", self._current_hashes)
            self._read_once = True  # only the first call waits, even with Redis down
        if got is None:
            return
        out: dict[str, tuple[str, Flow]] = {}
        for name, fhash in got.items():
            known = self._released.get(name)
            flow = known[1] if known and known[0] == fhash else await self.fetch(fhash)
            if flow is not None and flow.name == name:
                out[name] = (fhash, flow)
        self._released = out

    async def _current_hashes(self) -> dict[str, str]:
        """``current:<name>`` -> hash, for every released flow: one ``SCAN`` and one ``MGET``,
        on the first read only; a version a worker released without listing it in ``released``
        (an older voxflow) gets listed there, where the heartbeats read it."""
        keys = [k async for k in self.redis.scan_iter(match=self._k("current", "*"), count=500)]
        if not keys:
            return {}
        values = await self.redis.mget(keys)
        skip = len(self._k("current", ""))
        got = {
            (k.decode() if isinstance(k, bytes) else str(k))[skip:]: v.decode()
            for k, v in zip(keys, values, strict=True)
            if isinstance(v, bytes)
        }
        if got:
            await self.redis.hset(self.key, mapping=got)  # type: ignore[arg-type]  # str values
        return got

    async def fetch(self, fhash: str) -> Flow | None:
        """The compiled flow stored under ``fhash`` (None: unknown or unreachable)."""
        cached = self._flows.get(fhash)
        if cached is not None:
            return cached
        raw = await self._op("fetch flow", lambda: self.redis.get(self._k("flow", fhash)))
        if raw is None:
            return None
        try:
            flow = Flow.model_validate_json(raw)
        except ValueError as exc:  # pydantic's ValidationError: another schema version
            self._failed(f"fetch flow {fhash[:12]}", exc)
            return None
        if flow_hash(flow) != fhash:
            self._failed("fetch flow", ValueError(f"flow {fhash[:12]} does not match its hash"))
            return None
        self._flows[fhash] = flow  # content-addressed: never stale
        return flow
