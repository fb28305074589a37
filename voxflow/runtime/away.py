"""Calls that ended ``unknown``, kept in this process's memory for their return (no Redis).

A per-call queue or transfer trip that gets no word from Asterisk ends the call ``unknown``
(:mod:`voxflow.telephony.dialplan`); the caller may still be there (an agent has them) and come
back later (the queue's ``CONTINUE`` once the agent hangs up). :class:`LocalAwayCalls` is the
:class:`~voxflow.runtime.checkpoint.AwayCalls` of a ``voxflow run`` without ``--redis``: the
process that ended the call keeps its trip's checkpoint and flow version, and resumes the flow
at that step when the return reaches it. Entries expire ``ttl`` s after the end (as the
``away:<id>`` keys of a cluster do); at most ``limit`` are kept, the oldest dropped first
(logged). A return reaching another process (a restart) finds nothing and is hung up.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the settings (voxflow test) read the TTLs without them
    from voxflow.ir.models import Flow
    from voxflow.runtime.checkpoint import Checkpoint

__all__ = ["AWAY_LIMIT", "DEFAULT_AWAY_TTL", "MAX_AWAY_TTL", "LocalAwayCalls"]

log = logging.getLogger(__name__)

DEFAULT_AWAY_TTL = 3600.0
"""Seconds a call that ended ``unknown`` is kept for its return (``[run] away_ttl``): the
return comes when the agent hangs up, so this bounds the agent's talk with the caller (after
the queue's wait) that still leads back into the flow."""
MAX_AWAY_TTL = 86400.0
"""The longest ``away_ttl``: Asterisk does not bound a channel's life, but a day does."""
AWAY_LIMIT = 10_000
"""Calls :class:`LocalAwayCalls` keeps at most (the oldest are dropped first)."""


class LocalAwayCalls:
    """:class:`~voxflow.runtime.checkpoint.AwayCalls` in memory: call id -> (expiry, checkpoint,
    flow), insertion-ordered (the oldest first); ``ttl`` 0 keeps nothing."""

    def __init__(
        self,
        ttl: float = DEFAULT_AWAY_TTL,
        *,
        limit: int = AWAY_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.limit = limit
        self.clock = clock
        self._kept: OrderedDict[str, tuple[float, Checkpoint, Flow]] = OrderedDict()
        self.dropped = 0
        """Calls dropped before their expiry to stay within ``limit``."""

    def __len__(self) -> int:
        self._expire()
        return len(self._kept)

    def __contains__(self, call_id: object) -> bool:
        """True when ``call_id`` is kept (and not expired): its return goes on with its flow."""
        self._expire()
        return call_id in self._kept

    async def keep_away(self, call_id: str, at: Checkpoint, flow: Flow) -> None:
        """Keep ``at`` and ``flow`` for ``ttl`` s (see ``AwayCalls.keep_away``)."""
        if self.ttl <= 0:
            return
        self._expire()
        self._kept.pop(call_id, None)
        self._kept[call_id] = (self.clock() + self.ttl, at, flow)
        while len(self._kept) > self.limit:
            old, _ = self._kept.popitem(last=False)
            self.dropped += 1
            log.warning(
                "call %s is no longer kept for its return: %d calls that ended 'unknown' are "
                "kept at most (a return now is hung up)", old, self.limit,
            )  # fmt: skip

    async def come_back(self, call_id: str) -> tuple[Checkpoint, Flow] | None:
        """The kept checkpoint and flow version, taken (see ``AwayCalls.come_back``)."""
        self._expire()
        got = self._kept.pop(call_id, None)
        return None if got is None else (got[1], got[2])

    def _expire(self) -> None:
        """Drop the entries past their expiry (all kept with the same ``ttl``: the oldest)."""
        now = self.clock()
        while self._kept:
            call_id, (until, _, _) = next(iter(self._kept.items()))
            if until > now:
                return
            del self._kept[call_id]
            log.info("call %s is no longer kept for its return (away_ttl is over)", call_id)
