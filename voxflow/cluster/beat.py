"""A worker's heartbeat in one script: registry entry, application-name hold, released flows,
dead workers' webhooks.

Every ``heartbeat`` s a worker used to send four to six commands through redis-py (~0.1-0.2
ms of worker CPU each, besides the script's own work): its registry entry (``SET``), the
refresh of the application name it holds (a compare-and-expire script, then ``SET NX`` when it
had expired), the cluster's released flows (``SCAN`` over the whole keyspace, which holds an
``end:<id>`` per call of the last hour, then ``MGET``) and, every other beat, the outbox
(``HGETALL``: every pending ``call.ended``, this worker's own in flight included). :data:`BEAT`
does all of it in one ``EVALSHA``, sent by the writer's connection
(:class:`~voxflow.cluster.resp.ScriptLink`): the released flows are read from one hash
(``<prefix>released``: flow name -> hash, written with ``current:<name>`` by
:data:`RELEASE`) and the outbox's entries come back only when they are another worker's.

A beat Redis does not answer changes nothing here (the state's retries, error count and
Redis-down rules apply as to any command): the entry and the hold are written again by the
next one, the released flows and the outbox are read again then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["BEAT", "RELEASE", "BeatReply", "parse_beat"]

BEAT = """
local entry, ttl, worker, due, mine = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local had = redis.call('exists', KEYS[1])
redis.call('set', KEYS[1], entry, 'PX', ttl)
local kept = -1
if KEYS[4] then
  if redis.call('get', KEYS[4]) == worker then
    redis.call('pexpire', KEYS[4], ttl)
    kept = 1
  elseif redis.call('set', KEYS[4], worker, 'NX', 'PX', ttl) then
    kept = 2
  else
    kept = 0
  end
end
local foreign = {}
if due == '1' then
  local all = redis.call('hgetall', KEYS[3])
  for i = 1, #all, 2 do
    if string.sub(all[i + 1], 1, #mine) ~= mine then
      foreign[#foreign + 1] = all[i]
      foreign[#foreign + 1] = all[i + 1]
    end
  end
end
return {kept, redis.call('hgetall', KEYS[2]), foreign, had}
"""
"""One heartbeat. KEYS: the worker's registry entry, the released-flows hash, the outbox, and
the application-name hold (absent when the worker holds none). ARGV: the entry's JSON, the
worker TTL (ms), the worker id, '1' when the outbox is due, the start every entry of this
worker's has in the outbox (:func:`voxflow.cluster.outbox.outbox_mark`). Returns {the hold:
-1 none, 1 refreshed, 2 taken back (it had expired), 0 another worker's; the released flows
as a flat name/hash list; the outbox entries of other workers as a flat call id/entry list
(none when not due); 1 when the worker's entry was there, 0 when Redis had lost it (restarted
empty, or the worker's beats did not reach it for its TTL)}."""

RELEASE = """
if ARGV[2] == '1' then
  local cur = redis.call('get', KEYS[1])
  if cur then
    redis.call('hset', KEYS[2], ARGV[3], cur)
    return 0
  end
end
redis.call('set', KEYS[1], ARGV[1])
redis.call('hset', KEYS[2], ARGV[3], ARGV[1])
return 1
"""
"""Make a flow version current. KEYS: ``current:<name>``, the released-flows hash. ARGV: the
hash, '1' to do it only when the flow has no current version yet (the existing one is then
listed in the hash: released by a worker that did not write it), the flow name. Returns 1 when
set."""


@dataclass(frozen=True, slots=True)
class BeatReply:
    """What a heartbeat read back."""

    kept: int
    """The hold: -1 none, 1 refreshed, 2 taken back, 0 another worker's."""
    released: dict[str, str]
    """Flow name -> the hash of its current version."""
    foreign: dict[str, str]
    """Call id -> outbox entry, of the entries other workers owe (read when due)."""
    had: bool = True
    """The worker's registry entry was in Redis before this beat (False: Redis lost it)."""


def parse_beat(reply: Any) -> BeatReply:
    """:data:`BEAT`'s reply (bytes from Redis) as a :class:`BeatReply`."""
    kept, released, foreign, had = reply
    return BeatReply(int(kept), _pairs(released), _pairs(foreign), bool(int(had)))


def _pairs(flat: list[bytes | str]) -> dict[str, str]:
    text = [v.decode() if isinstance(v, bytes) else str(v) for v in flat]
    return dict(zip(text[::2], text[1::2], strict=True))
