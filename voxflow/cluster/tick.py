"""The cluster state's writes, one script per tick for every call of the worker (group commit).

A call's start (its checkpoint and its flow's current version read, its registry entry
written), its end claim (``SET NX`` on ``end:<id>``, with its pending ``call.ended`` added to
the outbox), a webhook held in the outbox before it is sent (``call.started``,
``recording.ready``, a rewritten ``call.ended``), its checkpoints (the latest per call; its
registry entry only when its state or version changed), its end (checkpoint and entry deleted)
and its delivered webhooks leaving the outbox are queued here. One sender task sends everything
queued, of every call, in one ``EVALSHA`` (:data:`TICK`), and goes on with what was queued
while that tick was in flight: a waiter only waits for its own answer (never for a lock, a task
or a timer of its own). Each waiter gets its own part of the answer, or None when Redis did not
answer (the caller decides what that means: a claim is granted, a start reads no checkpoint, a
held webhook is sent all the same). A start, a claim and a held webhook go at once (the call
waits for them); a checkpoint waits up to ``settle`` s (0.05) and an end or a delivered
webhook's drop up to ``linger`` s (0.2) for another call's tick to ride on (one timer for all
of them): nobody waits for those, and a checkpoint 50 ms late is at worst one state a failover
replays.

Each command through redis-py's asyncio client costs the worker ~0.1-0.2 ms of CPU (pool,
packing, a socket write and a wake-up for the reply), more than the script's work: a call that
started, claimed its end and was checkpointed in separate commands paid it each time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from voxflow.runtime.checkpoint import Checkpoint

log = logging.getLogger(__name__)

_ENCODE = msgspec.json.Encoder().encode

__all__ = ["TICK", "Begun", "CallEntry", "CallWrites", "Tick", "call_json"]

TICK = """
local ttl, worker, end_ttl = ARGV[1], ARGV[2], ARGV[3]
local nb, ns, nc, nd = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local nh = tonumber(ARGV[8])
local k, a = 2, 9
local begun, claimed, deleted = {}, {}, {}
for i = 1, nb do
  begun[2 * i - 1] = redis.call('get', KEYS[k])
  begun[2 * i] = redis.call('get', KEYS[k + 1])
  redis.call('set', KEYS[k + 2], ARGV[a], 'PX', ttl)
  k, a = k + 3, a + 1
end
for i = 1, ns do
  redis.call('set', KEYS[k], ARGV[a], 'PX', ttl)
  k, a = k + 1, a + 1
end
for i = 1, nc do
  local got = 0
  if redis.call('set', KEYS[k], worker, 'NX', 'PX', end_ttl) then
    got = 1
    if ARGV[a + 2] ~= '' then
      redis.call('hset', KEYS[k + 1], 'end', ARGV[a + 2])
      redis.call('pexpire', KEYS[k + 1], end_ttl)
    end
    if ARGV[a + 1] ~= '' then
      redis.call('hset', KEYS[1], ARGV[a], ARGV[a + 1])
      got = 2
    end
  elseif redis.call('get', KEYS[k]) == worker then
    got = 1
  end
  claimed[i] = got
  k, a = k + 2, a + 3
end
for i = 1, nd do
  deleted[i] = redis.call('del', KEYS[k], KEYS[k + 1])
  k = k + 2
end
for i = 1, nh do
  redis.call('hset', KEYS[1], ARGV[a], ARGV[a + 1])
  a = a + 2
end
for i = a, #ARGV do
  local raw = redis.call('hget', KEYS[1], ARGV[i])
  if raw and cjson.decode(raw)['worker'] == worker then
    redis.call('hdel', KEYS[1], ARGV[i])
  end
end
return {begun, claimed, deleted}
"""
"""One tick. KEYS: the outbox, then per start (checkpoint, current version, entry), per SET
(checkpoint or entry), per claim (``end:<id>``, ``ending:<id>``), per end (checkpoint, entry).
ARGV: call TTL (ms), worker id, end TTL (ms), the five counts (starts, SETs, claims, ends,
held webhooks), the starts' entries, the SET values, per claim (outbox field: the call id or,
for a returned call's second end, its key; outbox entry or ''; the end's outcome record or
''), per held webhook (outbox field, entry), then the outbox fields whose delivered webhook
leaves the outbox (while it is still this worker's). Returns {checkpoint and current per
start, per claim 2 (claimed, its webhook added) / 1 (claimed, or ours already) / 0 (another
worker's), per end the DEL count}."""

Begun = tuple[bytes | None, bytes | None]
"""A start's answer: the call's stored checkpoint (JSON) and its flow's current hash."""


@dataclass(frozen=True, slots=True)
class CallEntry:
    """One call in progress as the registry shows it."""

    id: str
    worker: str
    flow: str
    flow_hash: str
    started: float
    state: str
    app: str = ""
    """The ARI application the call is in (classic mode; "" otherwise)."""


def call_json(e: CallEntry) -> str:
    """The registry entry's JSON (``asdict`` deep-copies: ~10x slower for this flat record)."""
    return _ENCODE(
        {
            "id": e.id,
            "worker": e.worker,
            "flow": e.flow,
            "flow_hash": e.flow_hash,
            "started": e.started,
            "state": e.state,
            "app": e.app,
        }
    ).decode()


@dataclass(slots=True)
class Tick:
    """What one tick sends: keys, values, and the futures its answer settles."""

    begins: list[tuple[str, str, asyncio.Future[Begun | None]]] = field(default_factory=list)
    """Per start: call id, flow name, its waiter (the entry JSON is in ``begin_values``)."""
    begin_values: list[str] = field(default_factory=list)
    sets: list[tuple[str, str]] = field(default_factory=list)
    claims: list[tuple[str, str, str, str, asyncio.Future[int | None]]] = field(
        default_factory=list
    )
    """Per claim: call id, its outbox field (the call id, or a returned call's second end's
    key), outbox entry ('' for none), the end's outcome record (written to ``ending:<id>`` with
    a first claim, :mod:`voxflow.cluster.ending`; '' for none), its waiter."""
    ends: list[tuple[str, asyncio.Future[int | None]]] = field(default_factory=list)
    holds: list[tuple[str, str, asyncio.Future[None]]] = field(default_factory=list)
    """Per webhook held in the outbox before it is sent: its field, its entry, its waiter."""
    delivered: list[str] = field(default_factory=list)
    lingering: list[asyncio.Future[None]] = field(default_factory=list)
    """Waiters for the ``delivered`` drops."""
    checkpoints: list[str] = field(default_factory=list)
    """The calls whose checkpoint this tick writes."""

    def empty(self) -> bool:
        return not (
            self.begins or self.sets or self.claims or self.ends or self.holds or self.delivered
        )

    def urgent(self) -> bool:
        """True when a start, a claim or a held webhook waits (ends and delivered drops may
        linger)."""
        return bool(self.begins or self.claims or self.holds)

    def command(
        self, key: Callable[[str, str], str], outbox: str, head: list[str | int]
    ) -> tuple[list[str], list[str | int]]:
        """KEYS and ARGV of :data:`TICK` (``head``: call TTL, worker, end TTL)."""
        keys = [outbox]
        for cid, flow, _ in self.begins:
            keys += [key("checkpoint", cid), key("current", flow), key("call", cid)]
        keys += [k for k, _ in self.sets]
        keys += [key(kind, c[0]) for c in self.claims for kind in ("end", "ending")]
        keys += [key(kind, cid) for cid, _ in self.ends for kind in ("checkpoint", "call")]
        args: list[str | int] = [*head, len(self.begins), len(self.sets)]
        args += [len(self.claims), len(self.ends), len(self.holds), *self.begin_values]
        args += [v for _, v in self.sets]
        for _, name, entry, ending, _ in self.claims:
            args += [name, entry, ending]
        for name, value, _ in self.holds:
            args += [name, value]
        return keys, [*args, *self.delivered]

    def settle(self, reply: Any) -> None:
        """Give every waiter its answer (None for all when ``reply`` is None: not written)."""
        begun, claimed, deleted = reply if reply is not None else ([], [], [])
        for i, (_, _, fut) in enumerate(self.begins):
            got = (begun[2 * i], begun[2 * i + 1]) if reply is not None else None
            _resolve(fut, got)
        for i, (_, _, _, _, cfut) in enumerate(self.claims):
            _resolve(cfut, None if reply is None else int(claimed[i]))
        for i, (_, efut) in enumerate(self.ends):
            _resolve(efut, None if reply is None else int(deleted[i]))
        for _, _, hfut in self.holds:
            _resolve(hfut, None)
        for lfut in self.lingering:
            _resolve(lfut, None)


def _resolve(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


Op = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]
Script = Callable[[list[str], list[str | int]], Awaitable[Any]]


class CallWrites:
    """This worker's queued writes and the sender that ticks them out (one tick at a time)."""

    def __init__(
        self,
        script: Script,
        *,
        key: Callable[[str, str], str],
        head: Callable[[], list[str | int]],
        outbox: str,
        calls: dict[str, CallEntry],
        call_ttl: float,
        op: Op,
        failed: Callable[[str, Exception], None],
        linger: float = 0.2,
        settle: float = 0.05,
    ) -> None:
        """``head()``: the call TTL (ms), worker id and end TTL (ms) of :data:`TICK`; ``calls``:
        the worker's calls (their entries are rewritten here when their state changes);
        ``script(keys, args)`` runs :data:`TICK`; ``linger``: how long an end (or a delivered
        webhook's drop) waits for a tick another call sends before it sends its own;
        ``settle``: the same for a checkpoint (the steps of a state change, its next state's
        first steps, a start or an end claim coming after it ride one tick)."""
        self._script = script
        self._key = key
        self._head = head
        self._outbox = outbox
        self.calls = calls
        self._call_ttl = call_ttl
        self._op = op
        self._failed = failed
        self.linger = linger
        self.settle = settle
        self.lock = asyncio.Lock()
        """Held while a tick is in flight (others writing the same keys wait for it)."""
        self.checkpoints = 0
        """Checkpoints written."""
        self.ticks = 0
        """Ticks sent (answered or not)."""
        self._next = Tick()
        self._dirty: dict[str, Checkpoint] = {}
        self._last: dict[str, Checkpoint] = {}  # call id -> its latest checkpoint (resync)
        self._missed = False  # a tick was not answered: the next answered one resyncs
        self._entry_at: dict[str, float] = {}  # call id -> when its registry entry was written
        self._sender: asyncio.Task[None] | None = None  # sends ticks while anything is due
        self._lingering: asyncio.TimerHandle | None = None  # the ends' own tick, if none comes
        self._force = False  # the next tick goes even with only lingering writes queued
        self._closed = False

    def save(self, call_id: str, cp: Checkpoint, *, now: bool = False) -> None:
        """Queue ``cp`` (the latest per call wins); it goes with the next tick, at most
        ``settle`` s from now (``now``: at once, e.g. an adopted call's entry moving here)."""
        self._dirty[call_id] = cp
        self._last[call_id] = cp
        if now:
            self._kick(force=True)
        elif self._sender is None or self._sender.done():
            self._arm(self.settle)

    def forget(self, call_id: str) -> None:
        """The call ends here: its queued checkpoint is not written."""
        self._dirty.pop(call_id, None)
        self._last.pop(call_id, None)
        self._entry_at.pop(call_id, None)

    def let_go(self, call_id: str, *, pending: bool) -> None:
        """Another worker drives the call now: it is not written again by :meth:`resync`;
        ``pending``: its queued checkpoint still goes (a drain's handover), else dropped."""
        self._last.pop(call_id, None)
        self._entry_at.pop(call_id, None)
        if not pending:
            self._dirty.pop(call_id, None)

    @property
    def missed(self) -> bool:
        """True when a tick went unanswered since the last :meth:`resync`."""
        return self._missed

    def resync(self, why: str) -> None:
        """Redis lost or missed this worker's writes (``why``: restarted, unreachable): queue
        every call's latest checkpoint and registry entry again (a newer one queued meanwhile
        wins), with the next tick."""
        self._missed = False
        if not self._last:
            return
        log.info("redis %s: writing %d call(s)' checkpoints again", why, len(self._last))
        for cid, cp in self._last.items():
            self._dirty.setdefault(cid, cp)
            self._entry_at.pop(cid, None)
        self._kick(force=True)

    async def begin(self, entry: CallEntry) -> Begun | None:
        """Register the call (entry written) and read its checkpoint and its flow's current
        version, with the next tick; None when Redis did not answer."""
        fut: asyncio.Future[Begun | None] = asyncio.get_running_loop().create_future()
        self._next.begins.append((entry.id, entry.flow, fut))
        self._next.begin_values.append(call_json(entry))
        self._entry_at[entry.id] = time.monotonic()
        self._kick()
        return await fut

    async def claim(
        self, call_id: str, outbox_entry: str, ending: str = "", entry_field: str | None = None
    ) -> int | None:
        """The end claim of :data:`TICK` (2, 1, 0), with the next tick; None: no answer.
        ``entry_field``: the outbox entry's field (default: the call id)."""
        fut: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        name = call_id if entry_field is None else entry_field
        self._next.claims.append((call_id, name, outbox_entry, ending, fut))
        self._kick()
        return await fut

    async def end(self, call_id: str) -> int | None:
        """Delete the call's checkpoint and entry with the next tick, at most ``linger`` s
        from now: how many of the two were there (None: no answer)."""
        self.forget(call_id)
        fut: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._next.ends.append((call_id, fut))
        self._linger()
        return await fut

    async def hold(self, name: str, entry: str) -> None:
        """Write the outbox entry ``entry`` (field ``name``) with the next tick, at once (its
        webhook is sent once it is there; it is sent also when Redis did not answer)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._next.holds.append((name, entry, fut))
        self._kick()
        await fut

    async def delivered(self, call_id: str) -> None:
        """The call's pending webhook leaves the outbox with the next tick, at most
        ``linger`` s from now."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._next.delivered.append(call_id)
        self._next.lingering.append(fut)
        self._linger()
        await fut

    def pending(self) -> bool:
        """True when checkpoints wait for a tick."""
        return bool(self._dirty)

    def _kick(self, force: bool = False) -> None:
        """Start the sender unless it runs: it sends what is due when its tick in flight is
        answered, so a waiter never queues on the lock for a tick of its own. ``force``: the
        lingering writes go too. Closed: every waiter gets None at once (not written)."""
        self._force = self._force or force
        if self._closed:
            self._take().settle(None)
        elif self._sender is None or self._sender.done():
            self._sender = asyncio.ensure_future(self._send())

    def _due(self) -> bool:
        if self._next.urgent():
            return True
        return self._force and (bool(self._dirty) or not self._next.empty())

    def _linger(self) -> None:
        """One timer for every lingering end: the sender goes when it fires, unless a start,
        claim or checkpoint started it before (their tick carries the ends)."""
        if self._sender is None or self._sender.done():
            self._arm(self.linger)

    def _arm(self, delay: float) -> None:
        """The timer that sends what waits, in ``delay`` s at the latest."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        if self._lingering is not None:
            if self._lingering.when() <= loop.time() + delay:
                return
            self._lingering.cancel()
        self._lingering = loop.call_later(delay, self._kick, True)

    async def _send(self) -> None:
        """Send ticks while anything is due; what only lingers is left for the timer.
        Cancelled, the waiters of what it did not send get None (never left waiting)."""
        try:
            while self._due():
                self._force = False
                await self._tick()
        except asyncio.CancelledError:
            self._take().settle(None)
            raise
        if self._dirty:
            self._arm(self.settle)
        if not self._next.empty():
            self._arm(self.linger)

    async def flush(self) -> None:
        """Send everything queued, and return once it is answered (or failed)."""
        if not self._next.empty() or self._dirty:
            self._kick(force=True)
        while self._sender is not None and not self._sender.done():
            await asyncio.shield(self._sender)

    def close(self) -> None:
        """No tick after this one: what is queued later gets None at once."""
        self._closed = True
        if self._lingering is not None:
            self._lingering.cancel()
            self._lingering = None
        self._take().settle(None)

    async def _tick(self) -> None:
        """One tick: everything queued, in one script."""
        async with self.lock:
            tick = self._take()
            if tick.empty():
                return
            keys, args = tick.command(self._key, self._outbox, self._head())
            reply: Any = None
            self.ticks += 1
            try:
                reply = await self._op("write calls", lambda: self._script(keys, args))
            finally:  # cancelled (closing): the waiters get None, never left waiting
                tick.settle(reply)
            if reply is None:  # not written: the next answered tick writes them all again
                self._missed = True
                return
            self.checkpoints += len(tick.checkpoints)
        if self._missed:
            self.resync("answers again")

    def _take(self) -> Tick:
        """The queued tick with the checkpoints (and changed entries) added."""
        tick, self._next = self._next, Tick()
        if self._lingering is not None:  # the lingering writes go with this tick
            self._lingering.cancel()
            self._lingering = None
        batch, self._dirty = self._dirty, {}
        now = time.monotonic()
        for cid, cp in batch.items():
            try:
                tick.sets.append((self._key("checkpoint", cid), cp.to_json()))
            except (TypeError, ValueError) as exc:
                self._failed("checkpoint (a value JSON cannot hold)", exc)
                continue
            tick.checkpoints.append(cid)
            old = self.calls.get(cid)
            if old is not None and self._entry_stale(cid, old, cp):
                entry = replace(old, flow_hash=cp.flow_hash, state=cp.state)
                self.calls[cid] = entry
                self._entry_at[cid] = now
                tick.sets.append((self._key("call", cid), call_json(entry)))
        return tick

    def _entry_stale(self, cid: str, entry: CallEntry, cp: Checkpoint) -> bool:
        """True when the call's registry entry needs rewriting for ``cp``: its state or version
        changed, or its TTL is half gone (a step that only changed variables leaves it as is)."""
        if entry.state != cp.state or entry.flow_hash != cp.flow_hash:
            return True
        return time.monotonic() - self._entry_at.get(cid, -1e18) >= self._call_ttl / 2
