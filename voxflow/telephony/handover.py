"""Handing a call over to another worker: this process forgets it without hanging it up.

In the classic mode Asterisk keeps a call in the Stasis application when the worker serving it
goes away; the worker that takes the application name over adopts it (:mod:`orphans`). A
draining worker (``voxflow run --drain handover``) calls :func:`release` for each call it hands
over, after its flow has stopped: the session ends here (its media path closes, ``on_hangup``
callbacks run, legs it dialled are hung up) while the caller's channel stays up.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voxflow.telephony.app import VoxtraApp

__all__ = ["release"]

log = logging.getLogger(__name__)


def release(app: VoxtraApp, call_id: str) -> bool:
    """Forget call ``call_id`` here without hanging it up; False when there is no live session
    for it. Stop the code driving the call first: the session's end runs its callbacks."""
    session = app._sessions.get(call_id)
    if session is None or session.ended:
        return False
    session._left_stasis = True  # for this process it is gone; for Asterisk it stays
    session._mark_ended()
    log.info("call %s handed over (left in Stasis for the next worker)", call_id)
    return True
