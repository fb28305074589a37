"""Which call each originated leg belongs to, so no leg outlives its call.

A leg dialled from inside a call's handler (``VoxtraApp.originate`` with ``owner=``, or by default
the call whose handler task is running: :func:`current_call`) belongs to that call. When the
owner ends, every leg it still has is hung up, whatever the order of events: ringing, answered,
bridged, or with its ``POST /channels`` still in flight (then :meth:`LegBook.settled` reports the
owner ended and the originate hangs the new leg up itself).
"""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voxflow.telephony.session import CallSession

__all__ = ["LegBook", "current_call", "set_current_call"]

_current: contextvars.ContextVar[weakref.ref[CallSession] | None] = contextvars.ContextVar(
    "voxflow_current_call", default=None
)


def set_current_call(session: CallSession) -> None:
    """Mark ``session`` as the call whose handler runs in this task's context. A weak
    reference: contexts copied into long-lived callbacks (a pooled connection's) must not keep
    ended calls alive."""
    _current.set(weakref.ref(session))


def current_call() -> CallSession | None:
    """The call whose handler is running in this task (or None)."""
    ref = _current.get()
    return ref() if ref is not None else None


class LegBook:
    """Owner -> legs. ``end_leg`` is called for each leg to hang up when its owner ends."""

    def __init__(self, end_leg: Callable[[CallSession], None]) -> None:
        self._end_leg = end_leg
        self._legs: dict[str, dict[str, CallSession]] = {}
        self._owner_of: dict[str, str] = {}
        self._originating: set[str] = set()
        self._ended_owners: set[str] = set()

    def __len__(self) -> int:
        return len(self._owner_of)

    def attach(self, owner: CallSession, leg: CallSession) -> None:
        """``leg`` is being originated for ``owner`` (its POST not yet answered)."""
        self._legs.setdefault(owner.id, {})[leg.id] = leg
        self._owner_of[leg.id] = owner.id
        self._originating.add(leg.id)

    def settled(self, leg: CallSession) -> bool:
        """The leg's originate request has completed; True if its owner has ended meanwhile
        (the caller must then hang the leg up)."""
        self._originating.discard(leg.id)
        owner = self._owner_of.get(leg.id)
        return owner is not None and owner in self._ended_owners

    def owner_ended(self, owner: CallSession) -> None:
        """``owner`` ended: hang up each of its legs whose originate has completed."""
        legs = self._legs.get(owner.id)
        if not legs:
            return
        self._ended_owners.add(owner.id)
        for leg in list(legs.values()):
            if leg.id not in self._originating and not leg.ended:
                self._end_leg(leg)

    def forget(self, session: CallSession) -> None:
        """``session`` is closed: drop it as a leg, and as an owner once it has no legs."""
        sid = session.id
        self._originating.discard(sid)
        owner = self._owner_of.pop(sid, None)
        if owner is not None:
            legs = self._legs.get(owner)
            if legs is not None:
                legs.pop(sid, None)
                if not legs:
                    del self._legs[owner]
                    self._ended_owners.discard(owner)
        if sid not in self._legs:
            self._ended_owners.discard(sid)
