"""Webhooks pending in Redis until delivered (at least once across the cluster).

The hash ``<prefix>outbox`` holds one entry per webhook of
:data:`~voxflow.runtime.webhooks.OUTBOX_EVENTS` (``call.started``, ``recording.ready``,
``call.ended``) claimed but not yet delivered: the field is the call id for its ``call.ended``,
the event's ``Idempotency-Key`` for the others (a call that ended ``unknown`` and came back
ends again with the key ``<id>:call.ended:returned``: its own entry, so the first end's, maybe
still being retried, is neither replaced nor removed by the other's delivery:
:func:`~voxflow.runtime.webhooks.outbox_field`); the value JSON ``{worker, key, body, at,
event, call}`` (``body`` redacted as sent; ``event`` and ``call`` absent: ``call.ended`` of
the field's call). A ``call.ended`` entry is written with the end claim (in the same Lua script,
:data:`voxflow.cluster.tick.TICK`) and rewritten with the final body just before it is sent;
the others are written just before they are sent (with the writer's next tick,
:meth:`CallWrites.hold <voxflow.cluster.tick.CallWrites.hold>`). Each is removed once the
receiver answered 2xx or the delivery gave up (its retries,
:class:`~voxflow.runtime.webhook_retry.RetryPolicy`, are over). Every worker, every ``every``
seconds (its heartbeat reads them: :mod:`voxflow.cluster.beat`), takes over the entries of dead
workers (out of the registry and without a liveness connection) and sends them in the
background, with the same retries: the same ``Idempotency-Key`` lets receivers drop a repeat (a
worker killed after sending but before removing, or while retrying).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
import redis.asyncio as aioredis

from voxflow import faults
from voxflow.runtime.webhooks import WebhookSender, outbox_field

__all__ = ["Outbox", "entry_json", "outbox_mark"]

log = logging.getLogger(__name__)
_ENCODE = msgspec.json.Encoder().encode

_TAKE = """
if redis.call('hget', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('hset', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"""
_DONE = """
local raw = redis.call('hget', KEYS[1], ARGV[1])
if raw and cjson.decode(raw)['worker'] == ARGV[2] then
  return redis.call('hdel', KEYS[1], ARGV[1])
end
return 0
"""

Op = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]


def entry_json(
    worker: str, key: str, body: bytes, at: float, event: str = "call.ended", call_id: str = ""
) -> str:
    """One outbox entry (msgspec; the worker first: :func:`outbox_mark`); ``event`` and ``call``
    in it unless it is the call's ``call.ended`` (field: the call id)."""
    entry: dict[str, object] = {"worker": worker, "key": key, "body": body.decode(), "at": at}
    if event != "call.ended" or (call_id and outbox_field(event, call_id, key) != call_id):
        entry.update(event=event, call=call_id)
    return _ENCODE(entry).decode()


def outbox_mark(worker_id: str) -> str:
    """How every outbox entry of ``worker_id`` starts (:func:`entry_json`)."""
    return f'{{"worker":{_ENCODE(worker_id).decode()},'


class Outbox:
    """This worker's side of the outbox (``op``: the state's retried, counted Redis call;
    ``alive()``: the ids of the workers alive now, None when unknown)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        key: str,
        worker_id: str,
        op: Op,
        alive: Callable[[], Awaitable[set[str] | None]],
        *,
        every: float = 2.0,
    ) -> None:
        self.redis = redis
        self.key = key
        self.worker_id = worker_id
        self.op = op
        self.alive = alive
        self.every = every
        self.sender: WebhookSender | None = None
        self.resent = 0
        """Webhooks of dead workers this worker sent."""
        self.sweeps = 0
        """Times this worker looked for them (:meth:`resend`)."""
        self.batched: Callable[[str], Awaitable[None]] | None = None
        """Set by the cluster state: :meth:`done` goes with its writer's next tick."""
        self.held: Callable[[str, str], Awaitable[None]] | None = None
        """Set by the cluster state: :meth:`hold` writes with its writer's next tick."""
        self.claimed: dict[str, tuple[str, bytes]] = {}
        """Per call id: the ``call.ended`` (key, body) this worker put in the outbox with its
        end claim (:meth:`hold` does not rewrite it with a body that differs only in time)."""
        self._take = redis.register_script(_TAKE)
        self._done = redis.register_script(_DONE)
        self._last = -1e9

    async def hold(
        self, field: str, key: str, body: bytes, event: str = "call.ended", call_id: str = ""
    ) -> None:
        """Write (or rewrite) the pending webhook ``field`` for this worker (the call id of a
        ``call.ended``, the key of another event); nothing when the ``call.ended`` entry written
        with the end claim has the same key and body but the timestamp (the usual case: ``on
        hangup`` changed nothing sent)."""
        claimed = self.claimed.pop(field, None)
        if claimed is not None and claimed[0] == key and _same_but_time(claimed[1], body):
            return
        value = entry_json(self.worker_id, key, body, time.time(), event, call_id)
        if self.held is not None:
            await self.held(field, value)
            return
        await self.op("hold webhook", lambda: self.redis.hset(self.key, field, value))

    async def done(self, field: str) -> None:
        """Remove the pending webhook ``field`` while it is still this worker's."""
        self.claimed.pop(field, None)
        if self.batched is not None:
            await self.batched(field)
            return
        await self.op(
            "webhook done", lambda: self._done(keys=[self.key], args=[field, self.worker_id])
        )

    def due(self) -> bool:
        """True at most every ``every`` seconds (the heartbeat asks each beat)."""
        now = time.monotonic()
        if self.sender is None or not self.sender.enabled or now - self._last < self.every:
            return False
        self._last = now
        return True

    async def resend(self, foreign: Mapping[str, str] | None = None) -> int:
        """Take over the pending webhooks of dead workers and start sending them (in the
        sender's background tasks; each is removed once delivered or given up); returns how
        many were taken. ``foreign``: the entries of other workers, read by the heartbeat
        (:data:`voxflow.cluster.beat.BEAT`); None: read here."""
        sender = self.sender
        self.sweeps += 1
        raw: Mapping[Any, bytes | str] | None = foreign
        if raw is None:
            raw = await self.op("list webhooks", lambda: self.redis.hgetall(self.key))
        if not raw or sender is None or all(_ours(v, self.worker_id) for v in raw.values()):
            return 0  # only this worker's own, in flight: no need to ask who is alive
        alive = await self.alive()
        if alive is None:
            return 0
        faults.reached("after_outbox_read")
        sent = 0
        for field, value in raw.items():
            sent += await self._resend_one(sender, _text(field), _text(value), alive)
        self.resent += sent
        return sent

    async def _resend_one(
        self, sender: WebhookSender, field: str, old: str, alive: set[str]
    ) -> int:
        """Start sending the entry ``old`` (outbox field ``field``) if its worker is dead and
        this worker takes it over first (compare-and-set); 1 when taken."""
        try:
            entry = json.loads(old)
            worker, key, body = str(entry["worker"]), str(entry["key"]), str(entry["body"])
            event = str(entry.get("event", "call.ended"))
            call_id = str(entry.get("call") or field)
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("outbox: the entry %s is unreadable: dropped", field)
            await self.op("drop webhook", lambda: self.redis.hdel(self.key, field))
            return 0
        if worker in alive:
            return 0
        mine = entry_json(self.worker_id, key, body.encode(), time.time(), event, call_id)
        args = [field, old, mine]
        if not await self.op("take webhook", lambda: self._take(keys=[self.key], args=args)):
            return 0  # another worker took it first (or Redis did not answer)
        log.warning("call %s: sending the %s of dead worker %s", call_id, event, worker)
        sender.deliver_later(event, call_id, body.encode(), key, lambda: self.done(field))
        return 1


def _ours(value: bytes | str, worker_id: str) -> bool:
    """True when the outbox entry ``value`` is ``worker_id``'s (a cheap look at its start:
    :func:`entry_json` writes the worker first)."""
    return _text(value).startswith(outbox_mark(worker_id))


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


_STAMP = b',"timestamp":'


def _around_time(body: bytes) -> tuple[bytes, bytes] | None:
    """``body`` without its top-level ``timestamp`` (what comes before, what comes after);
    None when it is not as :func:`~voxflow.runtime.webhooks.build_payload` writes it. The
    first ``,"timestamp":`` is the top-level key: it follows ``event``, ``call_id`` and
    ``flow``, strings, in which a quote is escaped."""
    at = body.find(_STAMP)
    end = body.find(b",", at + len(_STAMP))
    if at < 0 or end < 0 or not body.startswith(b'{"event":'):
        return None
    return body[:at], body[end:]


def _same_but_time(a: bytes, b: bytes) -> bool:
    """True when the webhook bodies ``a`` and ``b`` differ at most in their ``timestamp``
    (compared as bytes around it; parsed only when one is not laid out as built)."""
    if a == b:
        return True
    cut_a, cut_b = _around_time(a), _around_time(b)
    if cut_a is not None and cut_b is not None:
        return cut_a == cut_b
    try:
        da, db = json.loads(a), json.loads(b)
    except ValueError:
        return False
    if not isinstance(da, dict) or not isinstance(db, dict):
        return False
    da.pop("timestamp", None)
    db.pop("timestamp", None)
    return bool(da == db)
