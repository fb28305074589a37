"""Reconciling a worker's sessions with what Asterisk holds, after a connection was down.

Classic mode (:func:`resync_after_reconnect`): the events socket came back; a call still up goes
on (its channel, answered state and bridge refreshed), one that ended meanwhile is completed.
Outbound websockets (:func:`resync_link_app`, :func:`release_lost_link`): a link re-registered
its ARI app with the channels it holds, or Asterisk did not reconnect it within the grace.
Calls no session owns are :mod:`voxflow.telephony.orphans`' business.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from voxflow.errors import AriHTTPError

if TYPE_CHECKING:
    from voxflow.telephony.app import VoxtraApp

__all__ = ["release_lost_link", "resync_after_reconnect", "resync_link_app"]

log = logging.getLogger("voxflow.telephony.app")  # the records the app logged before this split


async def resync_after_reconnect(app: VoxtraApp, deadline: float | None = None) -> None:
    """Reconcile ``app``'s sessions with Asterisk after a reconnect: calls still up keep going,
    calls that ended while disconnected are completed (callbacks fire once). ``deadline``: the
    listings' own, else the client's."""
    snapshot = [s for s in app._sessions.values() if not s.ended]
    if not snapshot:
        return
    rest = app.rest
    channels = {c.id: c for c in await rest.list_channels(timeout=deadline)}
    try:
        listed = await rest.get_application(app.app_name, timeout=deadline)
        in_app = set(listed.get("channel_ids", []))
    except AriHTTPError:
        in_app = set(channels)
    bridges = {b.id: b for b in await rest.list_bridges(timeout=deadline)}
    for session in snapshot:
        if session.ended:
            continue
        channel = channels.get(session.id)
        if channel is None or (session._in_stasis and session.id not in in_app):
            log.info("call %s ended while the events socket was down", session.id)
            session._gone()
            continue
        session.channel = channel
        if channel.state == "Up":
            session._set_answered()
        bid = session._bridge_id
        if bid is not None and (bid not in bridges or session.id not in bridges[bid].channels):
            session._bridge_id = None
            if session._shared_bridge == bid:
                session._unshare_bridge()
    log.info("resynced %d calls after reconnect", len(snapshot))


def resync_link_app(app: VoxtraApp, app_name: str, channel_ids: set[str]) -> list[str]:
    """A link registered ``app_name`` holding ``channel_ids``: sessions of that app whose
    channel is no longer there ended while it was down; returns the orphan channels."""
    for session in list(app._sessions.values()):
        if (
            session.ari_app == app_name
            and not session.ended
            and session._in_stasis
            and session.id not in channel_ids
        ):
            log.info("call %s ended while its websocket was down", session.id)
            session._gone()
    return [cid for cid in channel_ids if cid not in app._sessions]


def release_lost_link(app: VoxtraApp, app_name: str) -> None:
    """Asterisk did not reconnect ``app_name`` in time: its calls are no longer ``app``'s."""
    live = [
        s
        for s in app._sessions.values()
        if s.ari_app == app_name and not s.ended and s._trip is None  # away: comes back
    ]
    if live:
        log.error("websocket for app %s lost; releasing %d calls", app_name, len(live))
    if live and app.links_lost is not None:  # cluster mode: another worker may drive them
        app.links_lost(live)
        return
    for session in live:
        session._left_stasis = True  # the handler's finally must not hang it up
        session._gone()
