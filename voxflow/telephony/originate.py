"""Outbound legs: what ``VoxtraApp.originate`` does (the POST, the answer, every way it fails).

A leg is an OUTBOUND :class:`CallSession` registered with its app before the originate request
is sent (a placeholder channel with the id voxflow chose), and attached to its owner call in the
app's :class:`~voxflow.telephony.legs.LegBook`: it is hung up when the owner ends, and when the
originate is cancelled before it answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from voxflow.ari.models import Channel
from voxflow.ari.rest import AriRestClient
from voxflow.errors import (
    AriBadRequest,
    AriError,
    AriHTTPError,
    AriTimeoutError,
    CallEndedError,
    CallError,
)
from voxflow.telephony.legs import current_call
from voxflow.telephony.session import CallSession
from voxflow.telephony.state import CallDirection

if TYPE_CHECKING:
    from voxflow.telephony.app import VoxtraApp

__all__ = ["OUTBOUND_ARG", "abandon_leg", "originate_leg", "rest_for_originate"]

log = logging.getLogger(__name__)

OUTBOUND_ARG = "voxflow-outbound"
"""The Stasis argument of a leg voxflow originated (its StasisStart is not a new inbound call)."""


async def originate_leg(
    app: VoxtraApp,
    endpoint: str,
    *,
    caller_id: str | None,
    variables: Mapping[str, str] | None,
    timeout: int,
    metadata: Mapping[str, Any] | None,
    owner: CallSession | None,
) -> CallSession:
    """``app.originate``: dial ``endpoint`` for ``owner`` (default: the call whose handler is
    running) and wait until it answers or fails."""
    owner = owner if owner is not None else current_call()
    if owner is not None and owner.ended:
        raise CallEndedError(f"call {owner.id} has ended: not dialling {endpoint}")
    if not app._started:
        raise CallError("the app is not started (use 'async with app:' or app.run())")
    if "/" not in endpoint:
        raise ValueError(f"endpoint must look like TECH/resource, got {endpoint!r}")
    session = _new_leg(app, endpoint, owner, caller_id, metadata)
    cid = session.id
    post = asyncio.ensure_future(
        session.rest.originate(
            endpoint,
            app=session.ari_app,
            app_args=OUTBOUND_ARG,
            caller_id=caller_id,
            timeout=timeout,
            channel_id=cid,
            variables=variables,
        )
    )
    try:
        await asyncio.shield(post)
    except asyncio.CancelledError:
        app._spawn(abandon_leg(app, session, post), f"abandon-{cid}")
        raise
    except AriBadRequest as exc:
        session._mark_ended()
        await session.wait_closed()
        raise CallError(f"originate to {endpoint!r} refused: {exc.message}") from exc
    except AriHTTPError as exc:
        session._dialstatus = "CHANUNAVAIL"
        session._mark_ended()
        session.failure_reason = f"unavailable ({exc.message})"
        await session.wait_closed()
        return session
    except AriTimeoutError as exc:
        # Served late or not at all: only Asterisk knows. The leg is not dialled again (it would
        # ring twice); its events tell, as for any leg, and one that never shows is unavailable.
        log.warning("originate of %s to %s: %s; following the leg by its events", cid, endpoint,
                    exc)  # fmt: skip
        session._originate_late = True
    except AriError:
        session._mark_ended()
        await session.wait_closed()
        raise
    finally:
        if post.done() and app._legs.settled(session) and not session.ended:
            app._end_leg(session)  # the owner ended while the request was in flight
    await _wait_answered(app, session, timeout)
    return session


def _new_leg(
    app: VoxtraApp,
    endpoint: str,
    owner: CallSession | None,
    caller_id: str | None,
    metadata: Mapping[str, Any] | None,
) -> CallSession:
    """The leg's session on a placeholder channel, registered with ``app`` and ``owner``."""
    rest, ari_app = rest_for_originate(app, owner)
    cid = f"vf-out-{uuid.uuid4().hex}"
    placeholder = Channel(id=cid, name=endpoint, state="Down")
    session = CallSession(
        app,
        placeholder,
        CallDirection.OUTBOUND,
        metadata=metadata,
        called_number=endpoint.split("/", 1)[1],
        rest=rest,
        ari_app=ari_app,
    )
    session.caller_id = caller_id or ""
    app._sessions[cid] = session
    if app._seen is not None:
        app._seen.add(cid)
    if owner is not None:
        app._legs.attach(owner, session)
    return session


async def _wait_answered(app: VoxtraApp, session: CallSession, timeout: int) -> None:
    """Wait until the dialled leg answers and enters Stasis; a leg that does not answer within
    ``timeout`` is hung up as NOANSWER; either way an ended leg is closed on return."""
    try:
        await session.wait_answered(timeout + app.event_wait)
        await asyncio.wait_for(session._stasis_started.wait(), app.event_wait)
    except CallEndedError:
        pass
    except asyncio.CancelledError:
        app._end_leg(session)
        raise
    except TimeoutError:
        unheard = session._dialstatus is None and session._originate_late
        if session._dialstatus is None and not unheard:
            session._dialstatus = "NOANSWER"
        with contextlib.suppress(AriError):
            await session.hangup(reason="no_answer")
        session._mark_ended()
        if unheard:  # not "no answer": nothing says it ever rang
            session.failure_reason = "unavailable (the originate timed out; no word of the leg)"
    if session.ended:
        await session.wait_closed()


async def abandon_leg(app: VoxtraApp, leg: CallSession, post: asyncio.Future[Any]) -> None:
    """The originate was cancelled while its request was in flight: once it completes, the
    new channel (if any) is hung up, and the placeholder session ends."""
    with contextlib.suppress(Exception):
        await post
    app._legs.settled(leg)
    if post.cancelled() or post.exception() is not None:
        leg._mark_ended()
        return
    await app._hangup_quietly(leg, "normal")


def rest_for_originate(app: VoxtraApp, owner: CallSession | None) -> tuple[AriRestClient, str]:
    """The REST client and app a new leg is dialled with: its owner call's websocket."""
    if owner is not None:
        return owner.rest, owner.ari_app
    if app._links is None:
        return app.rest, app.app_name
    if app.mode == "persistent":
        return app._links.rest_for(app.app_name), app.app_name
    raise CallError("in per-call mode a new call can only be dialled for a call (owner=)")
