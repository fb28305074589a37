"""The ends of calls that ended while no worker served them (their worker died, their channel
is gone): run from each call's last checkpoint by the worker that reaps them
(:meth:`voxflow.cluster.state.ClusterState.start_reaping`), under the call's end claim, so once
across the cluster (the rule: :mod:`voxflow.runtime.unserved`).

A call whose dead worker had claimed its end already (it died during the end: in its ``on
hangup`` body, or before the call left the registry) has its claim taken over (compare-and-set:
one reaper wins) and that end finished from the dead worker's end record
(:mod:`voxflow.cluster.ending`: its outcome, the state it started in, the ``on hangup`` HTTP
steps it completed, not sent again), but not its ``call.ended``: that one is in the outbox,
with the outcome the dead worker gave it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from voxflow.runtime.checkpoint import Checkpoint
from voxflow.runtime.events import End

if TYPE_CHECKING:
    from voxflow.cluster.state import CallEntry, ClusterState

__all__ = ["STEAL_CLAIM", "Ender", "end_unserved"]

log = logging.getLogger(__name__)

Ender = Callable[[str, str, Checkpoint | None, bool], Awaitable[End | None]]
"""Runs the end of a call that ended while no worker served it: (call id, flow hash, its last
checkpoint, whether to send its ``call.ended``) -> its End, None when it could not
(``FlowServer.end_unserved``)."""
STEAL_CLAIM = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('set', KEYS[1], ARGV[2], 'KEEPTTL')
end
return false
"""
"""Move the end claim ``KEYS[1]`` from worker ARGV[1] to ARGV[2] if ARGV[1] still holds it."""


async def end_unserved(state: ClusterState, gone: list[CallEntry], end: Ender | None) -> list[str]:
    """Run the ends of ``gone`` at once with ``end``; returns the ids done (one whose flow
    version is unreadable waits for a later round: the call's TTL is the backstop). Without
    ``end`` their registry entries and checkpoints only go."""
    if end is None:
        await state.forget([e.id for e in gone])
        return [e.id for e in gone]
    done = await asyncio.gather(*(_end_one(state, e, end) for e in gone))
    return [e.id for e, ok in zip(gone, done, strict=True) if ok]


async def _end_one(state: ClusterState, e: CallEntry, end: Ender) -> bool:
    """The end of call ``e`` from its last checkpoint (none: from its start); True when it ran
    (or another worker's claim had it) and the call left the registry."""
    try:
        cp = await state.checkpoint(e.id)
    except ValueError as exc:  # unreadable: the end without the state's on hangup body
        log.warning("call %s: its checkpoint is unreadable (%s); ending it without", e.id, exc)
        cp = None
    took = await state.take_dead_claim(e.id)  # it died during the end: the body runs again
    if took:
        log.warning("call %s: its worker died during its end: finishing it here", e.id)
    try:
        ended = await end(e.id, cp.flow_hash if cp else e.flow_hash, cp, not took)
    except Exception:  # a bug must not stop the reaper: the call leaves the registry
        log.exception("call %s: its end (no worker served it) failed", e.id)
        await state.forget([e.id])
        return True
    return ended is not None
