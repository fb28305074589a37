"""The cluster's shared state in Redis: workers, calls, flow versions and call checkpoints.

Keys (``prefix`` defaults to ``voxflow:``):

* ``worker:<id>``: JSON ``{id, calls, started, heartbeat}``, refreshed every ``heartbeat`` s
  with a TTL of ``worker_ttl`` s (a dead worker disappears by itself);
* ``call:<channel id>``: JSON ``{worker, flow, flow_hash, started, state}``, removed when the
  call ends (``call_ttl`` is the backstop);
* ``flow:<sha256>``: a compiled flow's JSON (content-addressed, no TTL);
* ``current:<flow name>``: the hash of the version new calls of that flow take, on every worker
  (:meth:`ClusterState.release`), and ``released``: a hash of them all (flow name -> hash),
  read by every heartbeat (:mod:`voxflow.cluster.versions`);
* ``checkpoint:<channel id>``: the call's :class:`~voxflow.runtime.checkpoint.Checkpoint`;
* ``end:<channel id>``: the worker that ended the call (``SET NX``, :meth:`ClusterState.claim_end`):
  a call's end (its ``on hangup`` body, end-of-call webhook, outcome) happens on one worker only,
  kept ``end_ttl`` s after the end; a call whose channel ended while no worker served it (its
  worker died before claiming) has its end run by the worker that reaps it
  (:meth:`ClusterState.start_reaping`), claimed the same way;
* ``ending:<channel id>``: what the end claim's holder recorded of the end (its outcome, the
  results of the ``on hangup`` HTTP steps it completed: :mod:`voxflow.cluster.ending`), with
  the claim's TTL: a worker taking a dead holder's claim over finishes that end from it;
* ``away:<channel id>``: the checkpoint (with its trip) of a call that ended ``unknown`` (sent
  to the dialplan's queue or transfer, no word from Asterisk since: per-call websockets), kept
  ``away_ttl`` s: when the caller comes back (an agent hung up), the worker the return reaches
  makes it the call's checkpoint again and resumes the flow (:mod:`voxflow.cluster.away`);
* ``outbox``: a hash of the end-of-call webhooks claimed but not yet delivered
  (:mod:`voxflow.cluster.outbox`: written with the end claim, sent by another worker when
  their worker dies);
* ``app:<host>:<port>/<ARI application>``: the worker id holding the classic-mode application
  name on that Asterisk node (:func:`node_app`; one socket per name on a node), with the
  worker TTL: a standby worker waits for it to expire (:meth:`ClusterState.hold_app`).

Redis errors never fail a call: each operation is retried briefly (once only while Redis is
down), then skipped; ``errors`` counts the skipped ones. While Redis is down, the loops that
poll it back off (0.2 s doubling up to 5 s, at most the heartbeat period:
:mod:`voxflow.cluster.down`); one warning when it goes down, one when it is back; other
failures are logged at most every ``log_every`` seconds.
Socket timeouts are short (``socket_timeout`` 0.5 s; connect half of it):
Redis is on the LAN.
A call's start, end claim, checkpoints (the latest per call winning) and end go through one
writer (:mod:`voxflow.cluster.tick`): one script per tick for everything every call of the
worker queued meanwhile; a heartbeat is one script too (:mod:`voxflow.cluster.beat`), over the
writer's connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from voxflow import faults
from voxflow.cluster.apphold import AppHold, node_app
from voxflow.cluster.away import RedisAwayCalls
from voxflow.cluster.beat import BEAT, parse_beat
from voxflow.cluster.cancelling import honour_cancel
from voxflow.cluster.down import DownGate
from voxflow.cluster.ending import EFFECT, end_json, parse_ending, result_json
from voxflow.cluster.liveness import DeathWatch, LivenessLink, conn_name
from voxflow.cluster.outbox import Outbox, entry_json, outbox_mark
from voxflow.cluster.reaper import STEAL_CLAIM, Ender, end_unserved
from voxflow.cluster.resp import ScriptLink, supported
from voxflow.cluster.tick import TICK, CallEntry, CallWrites, Script, call_json
from voxflow.cluster.versions import Versions
from voxflow.ir.models import Flow
from voxflow.runtime.away import DEFAULT_AWAY_TTL
from voxflow.runtime.checkpoint import Checkpoint, Ending
from voxflow.runtime.webhooks import WebhookSender, outbox_field

__all__ = ["CallEntry", "ClusterState", "WorkerEntry", "node_app"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_RETRY_DELAYS = (0.05, 0.2)
UNADOPTED_GRACE = 10.0
"""Seconds a call of a dead worker may wait for Asterisk to re-connect it (outbound modes;
``voxflow run``: ``[cluster] reconnect_window``)."""


@dataclass(frozen=True, slots=True)
class WorkerEntry:
    """One live worker as the registry shows it."""

    id: str
    calls: int
    started: float
    heartbeat: float
    live: bool = False
    """It keeps a named liveness connection (:mod:`voxflow.cluster.liveness`)."""


class ClusterState:
    """This worker's view of the cluster (``async with`` starts heartbeat and liveness link;
    the writes go through :class:`~voxflow.cluster.tick.CallWrites`, which sends as they come)."""

    def __init__(
        self,
        url: str,
        *,
        worker_id: str | None = None,
        prefix: str = "voxflow:",
        heartbeat: float = 1.0,
        worker_ttl: float = 3.0,
        call_ttl: float = 6 * 3600.0,
        end_ttl: float = 3600.0,
        log_every: float = 10.0,
        clock: Callable[[], float] = time.time,
        socket_timeout: float = 0.5,
        outbox_every: float | None = None,
        unadopted_grace: float = UNADOPTED_GRACE,
        away_ttl: float = DEFAULT_AWAY_TTL,
    ) -> None:
        """``outbox_every``: how often (s) this worker looks for dead workers' pending
        end-of-call webhooks (default twice the heartbeat); ``unadopted_grace``:
        :meth:`reap_unadopted`'s default; ``away_ttl``: s a call that ended ``unknown`` is
        kept for its return (:attr:`away`)."""
        self.url = url
        self.worker_id = worker_id or f"w-{uuid.uuid4().hex[:12]}"
        self.prefix = prefix
        self.heartbeat = heartbeat
        self.worker_ttl = worker_ttl
        self.call_ttl = call_ttl
        self.end_ttl = end_ttl
        self.log_every = log_every
        self.clock = clock
        self.redis: aioredis.Redis = aioredis.Redis.from_url(  # named: DeathWatch's test
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout / 2,
            client_name=conn_name(prefix, self.worker_id),
        )
        self.gate = DownGate(url, cap=min(5.0, heartbeat))  # the hold and entry kept once back
        self.liveness = LivenessLink(url, prefix, self.worker_id, every=heartbeat)
        self.deaths = DeathWatch(self.redis, prefix, worker_ttl=worker_ttl)
        self.outbox = Outbox(
            self.redis,
            self._k("outbox", "")[:-1],
            self.worker_id,
            self._op,
            self._alive_ids,
            every=2 * heartbeat if outbox_every is None else outbox_every,
        )
        self.unadopted_grace = unadopted_grace
        self.started = clock()
        self._init_bookkeeping()
        self._init_writes(url, socket_timeout)
        self.holds = AppHold(
            self.redis,
            f"{prefix}app:",
            self.worker_id,
            worker_ttl,
            self._op,
            self.deaths,
            poll=min(0.05, heartbeat / 2),
            retry_in=self.gate.retry_in,
        )
        self.away = RedisAwayCalls(
            self.redis, self._k, self._op, self.versions.fetch, call_ttl=call_ttl, ttl=away_ttl
        )
        """The calls that ended ``unknown``, kept for their return (``CallStore.away``)."""

    def _init_bookkeeping(self) -> None:
        """This worker's own records: its calls, error count, tasks and what it has seen."""
        self._resending: asyncio.Task[int] | None = None
        self._ender: Ender | None = None  # start_reaping's ``end``
        self.errors = 0
        """Redis operations skipped after their retries (metric ``voxflow_redis_errors``)."""
        self.calls: dict[str, CallEntry] = {}
        self._unadopted: dict[str, float] = {}  # call id -> when first seen with a dead worker
        self._busy: set[str] = set()  # other workers with calls at the last look (outbound)
        self._ended_unsaved: set[str] = set()  # calls whose end Redis did not get
        self._tasks: list[asyncio.Task[None]] = []
        self._last_log = -1e9
        self._beaten = False  # a heartbeat was answered (its entry is in Redis since)
        self._closing = False
        self.draining = False
        """Set by :meth:`leave`: the worker takes no new calls and stops beating."""
        self._prefetched: dict[str, Checkpoint] = {}  # call id -> checkpoint, for its begin
        self._claimed: dict[str, str] = {}  # prefetched call id -> the worker that claimed its end

    def _init_writes(self, url: str, socket_timeout: float) -> None:
        """The flow store, the scripts and the batched call writes (over their own
        connection where the server supports it)."""
        self.versions = Versions(self.redis, self._k, self._op, self._failed)
        self._tick_link = (
            ScriptLink(
                url,
                TICK,
                timeout=socket_timeout,
                connect_timeout=socket_timeout / 2,
                client_name=conn_name(self.prefix, self.worker_id),  # as redis-py's: DeathWatch's
            )
            if supported(url)
            else None
        )
        self._beat_script = self._script(BEAT)
        self.writes = CallWrites(
            self._script(TICK),
            key=self._k,
            head=lambda: [_ms(self.call_ttl), self.worker_id, _ms(self.end_ttl)],
            outbox=self.outbox.key,
            calls=self.calls,
            call_ttl=self.call_ttl,
            op=self._op,
            failed=self._failed,
        )
        self.outbox.batched = self.writes.delivered
        self.outbox.held = self.writes.hold

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> ClusterState:
        await self.beat()
        self._tasks = [
            asyncio.ensure_future(self._beating()),
            asyncio.ensure_future(self.liveness.run(lambda: self._closing)),
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop heartbeat and writes (pending checkpoints are written), leave the registry."""
        self._closing = True
        pending: set[asyncio.Task[Any]] = set(self._tasks)
        if self._resending is not None:
            pending.add(self._resending)
        if self.versions.refreshing is not None:
            pending.add(self.versions.refreshing)
        while pending:  # redis-py may swallow a cancellation mid-command: the flag ends the loops
            for t in pending:
                t.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.5)
        self._tasks = []
        await self.writes.flush()
        self.writes.close()
        await self._forget_ended()
        await self.leave()
        await self.release_app()
        await self.liveness.aclose()
        if self._tick_link is not None:
            await self._tick_link.aclose()
        await self.redis.aclose()

    async def leave(self) -> None:
        """Remove this worker from the registry (draining: no new calls for it)."""
        self.draining = True
        await self._op("leave", lambda: self.redis.delete(self._k("worker", self.worker_id)))

    async def release_app(self) -> None:
        """Let a standby take the application name (if this worker still holds it)."""
        await self.holds.release()

    @property
    def app(self) -> str | None:
        """The ARI application name this worker holds (:meth:`hold_app`)."""
        return self.holds.app

    @property
    def took_over_from(self) -> str | None:
        """The dead worker whose application name :meth:`hold_app` took (None: it was free)."""
        return self.holds.took_over_from

    async def hold_app(self, app: str, *, poll: float | None = None) -> None:
        """Wait until this worker holds ``app`` (:meth:`AppHold.hold_any
        <voxflow.cluster.apphold.AppHold.hold_any>`)."""
        await self.holds.hold_any([app], poll=poll)

    async def hold_any_app(self, apps: Sequence[str], *, poll: float | None = None) -> str:
        """Wait until this worker holds one of ``apps``, returned (one standby for several
        nodes: :meth:`AppHold.hold_any <voxflow.cluster.apphold.AppHold.hold_any>`)."""
        return await self.holds.hold_any(apps, poll=poll)

    async def beat(self) -> None:
        """One heartbeat, one script (:mod:`voxflow.cluster.beat`): this worker's registry
        entry (with its TTL), its application-name hold, the released flows read and, every
        ``outbox_every`` s, dead workers' pending webhooks taken; nothing once it drains."""
        if self.draining:
            return
        entry = {
            "id": self.worker_id,
            "calls": len(self.calls),
            "started": self.started,
            "heartbeat": self.clock(),
            "live": True,
        }
        busy = self._resending is not None and not self._resending.done()
        due = not busy and not self._closing and self.outbox.due()
        keys = [self._k("worker", self.worker_id), self.versions.key, self.outbox.key]
        if self.app is not None:
            keys.append(self.holds.key_prefix + self.app)
        args: list[str | int] = [json.dumps(entry), _ms(self.worker_ttl), self.worker_id]
        args += [int(due), outbox_mark(self.worker_id)]
        raw = await self._op("heartbeat", lambda: self._beat_script(keys, args))
        if raw is None:
            return
        got = parse_beat(raw)
        self.holds.kept(got.kept)
        if not got.had and self._beaten:  # Redis restarted empty, or missed us for a TTL
            self.writes.resync("lost this worker's calls")
            await self.versions.restore()
        elif self.writes.missed:
            self.writes.resync("answers again")
        self._beaten = True
        self.versions.saw(got.released)
        await self._forget_ended()
        if due:
            self._resending = asyncio.ensure_future(self.outbox.resend(got.foreign))

    async def _alive_ids(self) -> set[str] | None:
        """The workers alive now: in the registry or with a liveness connection (draining);
        None when Redis does not say."""
        connected = await self._op("list live workers", self.deaths.connected)
        if connected is None:
            return None
        return {w.id for w in await self.workers()} | connected | {self.worker_id}

    def attach_webhooks(self, sender: WebhookSender) -> None:
        """This worker's ``call.ended`` webhooks stay in the outbox until delivered; dead
        workers' ones are sent with ``sender`` (:mod:`voxflow.cluster.outbox`)."""
        self.outbox.sender = sender
        if sender.enabled:
            sender.outbox = self.outbox

    async def workers(self) -> list[WorkerEntry]:
        """The live workers (those whose heartbeat has not expired)."""
        raw = await self._values("worker")
        return sorted((WorkerEntry(**d) for d in raw), key=lambda w: w.id)

    async def _beating(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.heartbeat)
            if not self._closing:
                await self.beat()

    # ------------------------------------------------------------ calls

    async def begin(
        self, call_id: str, flow: Flow, fhash: str
    ) -> tuple[Checkpoint | None, str | None]:
        """Publish ``flow`` (once per process), register the call on this worker; return its
        checkpoint if it has one, and the cluster's current version (hash) of the flow (while
        Redis is unreachable, the last one this worker read: no rollback to its own file)."""
        await self.publish(flow, fhash)
        entry = CallEntry(
            call_id, self.worker_id, flow.name, fhash, self.clock(), "", self.app or ""
        )
        prefetched = self._prefetched.pop(call_id, None)
        if prefetched is not None:  # a dead worker's call: no round trip before it resumes
            return self._resumed(entry, prefetched), self.versions.current.get(flow.name)
        self.calls[call_id] = entry
        got = await self.writes.begin(entry)  # with the other calls' writes of that tick
        if got is None:  # Redis unreachable: the current version this worker saw last
            raw, current = None, self.versions.current.get(flow.name)
        else:
            raw, released = got
            current = released.decode() if isinstance(released, bytes) else None
            if current is not None:
                self.versions.current[flow.name] = current
        if raw is None:
            return None, current
        try:
            cp = Checkpoint.from_json(raw)
        except ValueError as exc:
            self._failed("read checkpoint", exc)
            return None, current
        moved = replace(entry, flow_hash=cp.flow_hash, state=cp.state)  # a resumed call
        self.calls[call_id] = moved
        await self._put_call(moved)
        return cp, current

    async def prefetch(self, call_ids: Sequence[str]) -> None:
        """Read the checkpoints and end claims of calls about to be adopted (a dead worker's,
        listed by the take-over's sweep) in one MGET: their :meth:`begin` and
        :meth:`end_claimed_elsewhere` then answer without waiting for Redis (their registry
        entries are written by the writer's next tick)."""
        if not call_ids:
            return
        keys = [self._k(kind, cid) for kind in ("checkpoint", "end") for cid in call_ids]
        got = await self._op("prefetch checkpoints", lambda: self.redis.mget(keys))
        self._prefetched, self._claimed = {}, {}  # those of an earlier sweep not adopted go
        if got is None:
            return
        n = len(call_ids)
        for cid, raw, claim in zip(call_ids, got[:n], got[n:], strict=True):
            if raw is None:
                continue
            try:
                self._prefetched[cid] = Checkpoint.from_json(raw)
            except ValueError as exc:
                self._failed("read checkpoint", exc)
                continue
            self._claimed[cid] = claim.decode() if isinstance(claim, bytes) else ""

    def _resumed(self, entry: CallEntry, cp: Checkpoint) -> Checkpoint:
        """Register a prefetched call on this worker: its entry (at its checkpoint's state)
        and checkpoint go with the writer's next tick."""
        self.calls[entry.id] = replace(entry, flow_hash=cp.flow_hash, state=cp.state)
        self.writes.forget(entry.id)  # its entry is stale: written with the checkpoint
        self.writes.save(entry.id, cp, now=True)  # a reaper must not see the dead worker's
        return cp

    def let_go(self, call_id: str, *, pending: bool = True) -> None:
        """This worker no longer drives the call (handed over, or its outbound link moved to
        another worker): forget it here; its registry entry and checkpoint stay in Redis.
        ``pending``: its queued checkpoint is still written (False: dropped)."""
        self.calls.pop(call_id, None)
        self.writes.let_go(call_id, pending=pending)

    async def moved(self, call_id: str) -> bool:
        """True when the registry names another worker for the call (it adopted it); False
        when it names this one, none, or Redis did not answer."""
        return call_id in await self.moved_among([call_id])

    async def moved_among(self, call_ids: Sequence[str]) -> set[str]:
        """The calls of ``call_ids`` whose registry entry names another worker (it adopted
        them), in one MGET; none when Redis did not answer."""
        if not call_ids:
            return set()
        keys = [self._k("call", cid) for cid in call_ids]
        got = await self._op("read call entries", lambda: self.redis.mget(keys))
        if got is None:
            return set()
        return {cid for cid, raw in zip(call_ids, got, strict=True) if self._names_other(raw)}

    def _names_other(self, raw: str | bytes | None) -> bool:
        """A registry entry naming a worker other than this one."""
        if raw is None:
            return False
        try:
            worker = json.loads(raw)["worker"]
        except (ValueError, KeyError, TypeError):
            return False
        return isinstance(worker, str) and worker != self.worker_id

    async def end(self, call_id: str, outcome: str) -> bool:
        """Remove the call's checkpoint and registry entry; True if this worker removed them."""
        self.calls.pop(call_id, None)
        self.outbox.claimed.pop(call_id, None)
        n = await self.writes.end(call_id)  # with the other calls' writes of that tick
        if n is None:  # Redis unreachable: the heartbeat deletes them once it answers again
            self._ended_unsaved.add(call_id)
        return bool(n)

    async def claim_end(
        self,
        call_id: str,
        webhook: tuple[str, bytes] | None = None,
        end: tuple[str, str] | None = None,
        at: Checkpoint | None = None,
    ) -> bool:
        """Claim the call's end for this worker (``SET NX`` on ``end:<id>``): True when this
        worker ends it (first to claim, or it claimed before); False when another worker did.
        ``webhook`` (Idempotency-Key, body): the call's ``call.ended``, added to the outbox in
        the same script as a first claim; ``end`` (outcome, reason) and ``at`` (where the call
        was): written to its end record (:mod:`voxflow.cluster.ending`) in that script too.
        With Redis unreachable the claim is granted (a call's end is never lost for want of
        Redis; two workers racing then may both end it)."""
        faults.reached("before_end_claim")
        entry, field = "", call_id
        if webhook is not None:  # a returned call's second end: its own field (its key)
            field = outbox_field("call.ended", call_id, webhook[0])
            entry = entry_json(self.worker_id, *webhook, self.clock(), "call.ended", call_id)
        got = await self.writes.claim(call_id, entry, end_json(end, at), field)  # with others'
        if got == 2 and webhook is not None:  # in the outbox now, as claimed
            self.outbox.claimed[field] = webhook
        return got is None or bool(got)

    async def record_effect(self, call_id: str, key: str, result: Mapping[str, Any]) -> None:
        """Record that the ``on hangup`` HTTP step ``key`` of call ``call_id`` completed with
        ``result`` (:mod:`voxflow.cluster.ending`); a result too big is not (logged)."""
        value = result_json(result)
        if value is None:
            log.warning("call %s: on hangup step %s: its result is not recorded", call_id, key)
            return
        rkey = self._k("ending", call_id)

        async def write() -> Any:
            async with self.redis.pipeline(transaction=True) as p:
                p.hset(rkey, EFFECT + key, value)
                p.pexpire(rkey, _ms(self.end_ttl))
                return await p.execute()

        await self._op("record end step", write)
        faults.reached("after_hangup_step")

    async def ending(self, call_id: str) -> Ending:
        """What the holder of call ``call_id``'s end claim recorded of its end."""
        key = self._k("ending", call_id)
        raw = await self._op("read end record", lambda: self.redis.hgetall(key))
        return parse_ending(raw) if raw else Ending()

    async def take_dead_claim(self, call_id: str) -> bool:
        """Take the end claim of call ``call_id`` over from a dead worker (compare-and-set:
        one worker wins); False when unclaimed, ours, held by a live worker, or unknown."""
        key = self._k("end", call_id)
        got = await self._op("read end claim", lambda: self.redis.get(key))
        holder = got.decode() if isinstance(got, bytes) else got
        if holder is None or holder == self.worker_id:
            return False
        alive = await self._alive_ids()
        if alive is None or holder in alive:
            return False
        steal = self.redis.register_script(STEAL_CLAIM)
        took = await self._op(
            "take end claim", lambda: steal(keys=[key], args=[holder, self.worker_id])
        )
        return bool(took)

    async def end_claimed_elsewhere(self, call_id: str) -> bool:
        """True when another worker claimed the call's end (False when Redis does not say)."""
        claimed = self._claimed.pop(call_id, None)
        if claimed is not None:  # read with its checkpoint (:meth:`prefetch`)
            return claimed not in ("", self.worker_id)
        got = await self._op("read end claim", lambda: self.redis.get(self._k("end", call_id)))
        holder = got.decode() if isinstance(got, bytes) else got
        return holder is not None and holder != self.worker_id

    async def _forget_ended(self) -> None:
        """Delete the entries and checkpoints of calls that ended while Redis was unreachable
        (a Redis that kept its data would otherwise list them until their TTL)."""
        if not self._ended_unsaved:
            return
        ids = list(self._ended_unsaved)
        keys = [self._k(kind, cid) for cid in ids for kind in ("checkpoint", "call")]
        async with self.writes.lock:
            if await self._op("end calls", lambda: self.redis.delete(*keys)) is not None:
                self._ended_unsaved.difference_update(ids)

    async def call_entries(self) -> list[CallEntry]:
        """Every call in the registry."""
        raw = await self._values("call")
        return sorted((CallEntry(**d) for d in raw), key=lambda c: c.id)

    async def checkpoint(self, call_id: str) -> Checkpoint | None:
        """The call's stored checkpoint (None: none, or Redis unreachable)."""
        key = self._k("checkpoint", call_id)
        raw = await self._op("get checkpoint", lambda: self.redis.get(key))
        return None if raw is None else Checkpoint.from_json(raw)

    def save(self, call_id: str, cp: Checkpoint) -> None:
        """Queue ``cp`` for the writer (the latest per call wins). Never raises."""
        if call_id not in self.calls:
            return
        self.writes.save(call_id, cp)

    @property
    def checkpoints(self) -> int:
        """Checkpoints written (metric ``voxflow_checkpoints_written``)."""
        return self.writes.checkpoints

    async def _put_call(self, entry: CallEntry) -> None:
        key = self._k("call", entry.id)
        data = call_json(entry)
        await self._op("register call", lambda: self.redis.set(key, data, px=_ms(self.call_ttl)))

    async def flush(self) -> None:
        """Write the checkpoints queued so far now (the writer would, a moment later)."""
        await self.writes.flush()

    async def reap(self, live_channels: set[str]) -> list[str]:
        """Calls of this worker's application that ended while no worker served them: their
        worker is dead (out of the registry, liveness connection closed) and their channel is
        no longer in ``live_channels`` (the application's channels on Asterisk). Their end runs
        here (:meth:`start_reaping`'s ``end``) and their registry entries and checkpoints go.
        Returns their ids."""
        if self.app is None:
            return []
        entries = await self.call_entries()
        alive = await self._alive_ids()
        if alive is None:
            return []
        gone = [
            e
            for e in entries
            if e.app == self.app
            and e.worker not in alive
            and e.id not in live_channels
            and e.id not in self.calls
        ]
        return await self._reaped(gone)

    async def reap_unadopted(self, grace: float | None = None) -> list[str]:
        """Outbound-websocket modes (no application name held): the calls whose worker has
        been dead (out of the registry and its liveness connection closed: a draining worker is
        alive) for ``grace`` s, as this worker saw it, with no worker adopting them. Asterisk
        re-connects a dead worker's websockets within seconds (``reconnect_attempts`` x
        ``reconnect_interval``) and the worker that gets them moves their entries, so such a
        call ended while nobody served it: its end runs as in :meth:`reap`. Returns their
        ids. ``grace``: default ``unadopted_grace``."""
        grace = self.unadopted_grace if grace is None else grace
        entries = {e.id: e for e in await self.call_entries()}
        alive = await self._alive_ids()
        if alive is None:
            return []
        orphaned = {
            cid
            for cid, e in entries.items()
            if not e.app and e.worker not in alive and cid not in self.calls
        }
        now = time.monotonic()
        self._unadopted = {c: t for c, t in self._unadopted.items() if c in orphaned}
        gone = [c for c in orphaned if now - self._unadopted.setdefault(c, now) >= grace]
        for cid in gone:
            del self._unadopted[cid]
        return await self._reaped([entries[c] for c in gone])

    async def _lost_busy(self) -> bool:
        """True when a worker that had calls at the last look is no longer alive (out of the
        registry, its liveness connection closed): its calls may have ended unserved."""
        entries = await self.workers()
        connected = await self._op("list live workers", self.deaths.connected)
        if connected is None:
            return False
        alive = {w.id for w in entries} | connected
        lost = self._busy - alive
        self._busy = {w.id for w in entries if w.calls and w.id != self.worker_id}
        return bool(lost)

    async def _reaped(self, gone: list[CallEntry]) -> list[str]:
        """Run the ends of ``gone`` (:func:`voxflow.cluster.reaper.end_unserved`); the ids
        done."""
        if not gone:
            return []
        log.warning("registry: %d call(s) ended while no worker served them", len(gone))
        return await end_unserved(self, gone, self._ender)

    async def forget(self, ids: list[str]) -> None:
        """Delete the registry entries and checkpoints of calls ``ids`` (ended elsewhere)."""
        keys = [self._k(kind, cid) for cid in ids for kind in ("checkpoint", "call")]
        await self._op("reap calls", lambda: self.redis.delete(*keys))

    def start_reaping(
        self,
        live_channels: Callable[[], Awaitable[set[str]]],
        every: float = 15.0,
        *,
        end: Ender | None = None,
    ) -> None:
        """Run :meth:`reap` every ``every`` seconds with ``live_channels()`` (Asterisk's
        channels) until :meth:`close`; :meth:`reap_unadopted` while no application name is
        held (outbound-websocket modes). The first round comes ``worker_ttl`` + ``heartbeat``
        s after the start (a standby starts reaping right after it took the application
        over: by then the dead holder has left the registry). ``end``: runs the end of each
        reaped call (``FlowServer.end_unserved``); without it their entries only go."""
        self._ender = end
        self._tasks.append(asyncio.ensure_future(self._reaping(live_channels, every)))

    async def _reaping(
        self, live_channels: Callable[[], Awaitable[set[str]]], every: float
    ) -> None:
        """The loop of :meth:`start_reaping`; a failed listing skips that round. Outbound
        modes look every heartbeat whether a worker that had calls died (:meth:`_lost_busy`):
        the registry is scanned then, and every heartbeat while its calls wait for Asterisk
        to re-connect them, else every ``every`` s."""
        wait = min(every, self.worker_ttl + self.heartbeat)
        scanned = time.monotonic()
        while not self._closing:
            await asyncio.sleep(wait if self.app is not None else self.heartbeat)
            wait = every
            if self.app is None:
                due = time.monotonic() - scanned >= every or bool(self._unadopted)
                if due or await self._lost_busy():
                    scanned = time.monotonic()
                    await self.reap_unadopted()
                continue
            try:
                live = await live_channels()
            except Exception as exc:  # ARI unreachable: the next round tries again
                log.debug("registry reap skipped: %s", exc)
                continue
            await self.reap(live)

    # ------------------------------------------------------------ flows

    async def publish(self, flow: Flow, fhash: str | None = None) -> str:
        """Store the compiled flow under its hash (:meth:`Versions.publish
        <voxflow.cluster.versions.Versions.publish>`); returns the hash."""
        return await self.versions.publish(flow, fhash)

    async def release(self, flow: Flow, *, only_if_new: bool = False) -> str:
        """Make ``flow`` the cluster's current version of its name (:meth:`Versions.release
        <voxflow.cluster.versions.Versions.release>`); returns its hash."""
        return await self.versions.release(flow, only_if_new=only_if_new)

    async def released(self) -> dict[str, tuple[str, Flow]]:
        """The cluster's current version of every released flow: name -> (hash, flow)
        (:meth:`Versions.released <voxflow.cluster.versions.Versions.released>`)."""
        return await self.versions.released()

    async def fetch(self, fhash: str) -> Flow | None:
        """The compiled flow stored under ``fhash`` (None: unknown or unreachable)."""
        return await self.versions.fetch(fhash)

    async def flow(self, fhash: str) -> Flow | None:
        """:class:`~voxflow.runtime.checkpoint.CallStore`'s name for :meth:`fetch`."""
        return await self.versions.fetch(fhash)

    # ------------------------------------------------------------ plumbing

    def _k(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    async def _values(self, kind: str) -> list[dict[str, Any]]:
        async def scan() -> list[dict[str, Any]]:
            keys = [k async for k in self.redis.scan_iter(match=self._k(kind, "*"), count=500)]
            values = await self.redis.mget(keys) if keys else []  # one round trip, not one per key
            return [json.loads(raw) for raw in values if raw is not None]

        return await self._op(f"list {kind}s", scan) or []

    async def _op(self, what: str, fn: Callable[[], Awaitable[T]]) -> T | None:
        """``fn()`` retried briefly on Redis errors; None (counted) when it fails. Tried once
        while Redis is known to be down (:class:`DownGate`: a call never waits for retries)."""
        delays = () if self.gate.down else _RETRY_DELAYS
        for delay in (*delays, None):
            try:
                result = await honour_cancel(fn())  # redis-py may swallow a cancellation
            except (RedisError, OSError) as exc:
                if delay is None:
                    self.errors += 1
                    self.gate.failed(what, exc)
                    return None
                await asyncio.sleep(delay)
            else:
                self.gate.ok()
                return result
        return None  # pragma: no cover - the loop returns

    def _script(self, lua: str) -> Script:
        """``lua`` through :class:`ScriptLink` (ticks and heartbeats share its connection), or
        redis-py for the URLs it does not take."""
        link = self._tick_link
        if link is None:
            return _script(self.redis, lua)

        async def linked(keys: list[str], args: list[str | int]) -> Any:
            """Its connection lost, the pool's idle ones (to the same Redis) are dropped too:
            after a restart, redis-py's next command would fail on one once more."""
            try:
                return await link(keys, args, lua)
            except RedisError:
                await self.redis.connection_pool.disconnect(inuse_connections=False)
                raise

        return linked

    def _failed(self, what: str, exc: Exception) -> None:
        self.errors += 1
        now = time.monotonic()
        if isinstance(exc, (RedisError, OSError)) and self.gate.down:
            return  # said once when it went down (DownGate)
        if now - self._last_log >= self.log_every:
            self._last_log = now
            log.warning("redis: %s skipped (%s; %d skipped so far)", what, exc, self.errors)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _script(redis: aioredis.Redis, lua: str) -> Script:
    """``lua`` through redis-py (URLs :class:`ScriptLink` does not take)."""
    registered = redis.register_script(lua)
    return lambda keys, args: registered(keys=keys, args=args)
