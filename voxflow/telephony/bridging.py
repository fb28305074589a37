"""Joining two calls in one mixing bridge (``CallSession.bridge_with``), and tearing it down.

The bridge is named ``vf-br-<hex>`` (orphan sweeps recognise it) after the app; a call already in
a bridge brings it along. Its creation and ``addChannel`` go again when answered late
(:mod:`voxflow.ari.late`). A bridge this code made is destroyed again, with retries, when joining
fails or is cancelled, once its creation is answered (Asterisk serves requests of different
connections in any order: a DELETE sent ahead of the POST found nothing, and the POST then made a
bridge nobody removed); either call leaving later tears it down (``CallSession._unshare_bridge``).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

from voxflow.ari.cleanup import Backoff, retry_until_done
from voxflow.ari.late import ForeignObject, LateRequests
from voxflow.eager import start_eagerly
from voxflow.errors import AriHTTPError, CallError

if TYPE_CHECKING:
    from voxflow.telephony.session import CallSession

__all__ = ["bridge_calls", "destroy_bridge"]


async def bridge_calls(a: CallSession, b: CallSession) -> str:
    """Put ``a`` and ``b`` in one mixing bridge; returns its id."""
    if b is a:
        raise ValueError("cannot bridge a call with itself")
    await a.wait_answered()
    await b.wait_answered()
    rest = a.rest
    existing = a._bridge_id or b._bridge_id
    bridge_id = existing or f"vf-br-{uuid.uuid4().hex[:16]}"
    joining = [s.id for s in (a, b) if s._bridge_id != bridge_id]
    # answered late: sent again, an id in use read back (voxflow.ari.late)
    requests = LateRequests(rest, rest.timeout, lambda: a.ended or b.ended)
    post: asyncio.Task[None] | None = None  # its own task: a cancelled join does not cut it
    try:
        if existing is None:
            post = start_eagerly(requests.bridge(bridge_id, a._app.app_name))
            await asyncio.shield(post)
        if joining:
            await requests.add_channels(bridge_id, joining)
    except BaseException as exc:  # failed or cancelled: a bridge we made must not stay
        if existing is None and not isinstance(exc, ForeignObject):  # another's is left alone
            undo = destroy_bridge(a, bridge_id, after=post)
            a._app._spawn(undo, f"bridge-undo-{bridge_id}")
        if not isinstance(exc, AriHTTPError | ForeignObject):
            raise
        for s in (a, b):
            s._check_live()
        raise CallError(f"could not bridge {a.id} with {b.id}: {exc}") from exc
    for s, peer in ((a, b), (b, a)):
        s._bridge_id = bridge_id
        s._shared_bridge = bridge_id
        s._bridge_owner = existing is None
        s._bridge_peer = peer
    for s in (a, b):
        if s.ended:  # it ended while joining: its cleanup may have run already
            s._unshare_bridge()
    return bridge_id


async def destroy_bridge(
    session: CallSession, bridge_id: str, *, after: asyncio.Future[None] | None = None
) -> None:
    """Destroy ``bridge_id`` through ``session``'s link, retrying transient failures; ``after``:
    its creation, answered first (none when it found another's bridge with that id)."""
    if after is not None:
        await asyncio.wait([after])
        if not after.cancelled() and isinstance(after.exception(), ForeignObject):
            return
    backoff = Backoff(session._app.retry_initial, session._app.retry_max)
    await retry_until_done(
        lambda: session.rest.destroy_bridge(bridge_id),
        f"destroy bridge {bridge_id}",
        backoff=backoff,
    )
