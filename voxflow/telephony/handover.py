"""Handing a call over to another worker: this process forgets it without hanging it up.

In the classic mode Asterisk keeps a call in the Stasis application when the worker serving it
goes away; the worker that takes the application name over adopts it (:mod:`orphans`). A
draining worker (``voxflow run --drain handover``) calls :func:`release` for each call it hands
over, after its flow has stopped: the session ends here (its media path closes, ``on_hangup``
callbacks run, legs it dialled are hung up) while the caller's channel stays up.

In the outbound-websocket modes the worker refused new links first (``AriLinks.refuse``);
:func:`close_links` then closes the released calls' websockets once their sessions have closed
(their media teardown goes over those sockets): Asterisk re-connects each, through the load
balancer, to another worker, which adopts the calls (:func:`orphans.adopt_link_orphan`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voxflow.telephony.app import VoxtraApp
    from voxflow.telephony.session import CallSession

__all__ = ["close_links", "release"]

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


async def close_links(app: VoxtraApp, sessions: list[CallSession]) -> int:
    """Outbound modes: close the websockets of the released ``sessions`` (after their sessions
    closed, at most ``app.handler_grace`` s) so Asterisk re-connects them to another worker;
    returns how many links were closed. A ``persistent`` link carries every call of its app."""
    links = app.links
    if links is None or not sessions:
        return 0
    await asyncio.gather(
        *(s.wait_closed(app.handler_grace) for s in sessions), return_exceptions=True
    )
    names = {s.ari_app for s in sessions} & set(links.by_app)
    await links.close_apps(names)
    log.info("closed %d websocket(s) of handed-over calls: Asterisk re-connects them", len(names))
    return len(names)
