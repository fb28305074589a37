"""Inbound calls: a channel entering :class:`~voxflow.telephony.app.VoxtraApp`'s application
becomes a :class:`CallSession` whose handler runs in its own task.

:func:`on_stasis_start` routes a StasisStart (a new call, one back from the dialplan, voxflow's
own media channels, which are not calls), :func:`adopt` takes a call found with no session (see
:mod:`voxflow.telephony.orphans`), :func:`on_broadcast` claims a call StasisBroadcast() offers.
A raising handler is logged with the call id and the call hung up; a handler that returns
without hanging up gets the call hung up in the ``finally`` of :func:`run_handler`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from typing import TYPE_CHECKING, Any

from voxflow.ari.models import CallBroadcast, Channel, StasisStart
from voxflow.errors import AriConflict, AriError, AriNotFound, CallEndedError, CallError
from voxflow.telephony.dialplan import RETURN_TAGS, dialplan_metadata
from voxflow.telephony.ending import hang_up_after_handler
from voxflow.telephony.legs import set_current_call
from voxflow.telephony.originate import OUTBOUND_ARG
from voxflow.telephony.session import CallSession
from voxflow.telephony.state import CallDirection

if TYPE_CHECKING:
    from voxflow.ari.rest import AriRestClient
    from voxflow.telephony.app import Handler, VoxtraApp

__all__ = [
    "INTERNAL_ARG",
    "INTERNAL_TECHS",
    "adopt",
    "on_broadcast",
    "on_stasis_start",
    "pick_handler",
    "run_handler",
    "start_call",
]

log = logging.getLogger("voxflow.telephony.app")  # the records the app logged before this split

# Channels our own media/recording machinery creates also enter Stasis: they are not calls.
INTERNAL_TECHS = frozenset(
    {"UnicastRTP", "AudioSocket", "WebSocket", "Snoop", "Announcer", "Recorder"}
)
INTERNAL_ARG = "voxflow-internal"


def on_broadcast(app: VoxtraApp, event: CallBroadcast, rest: AriRestClient, app_name: str) -> None:
    """StasisBroadcast() offers a call: claim it (the winner gets StasisStart)."""
    if not app.claim_broadcasts or app._closing:
        return
    app._spawn(_claim(app, event.channel.id, rest, app_name), f"claim-{event.channel.id}")


async def _claim(app: VoxtraApp, channel_id: str, rest: AriRestClient, app_name: str) -> None:
    try:
        await rest.request(
            "POST", "/events/claim", params={"channelId": channel_id, "application": app_name}
        )
    except (AriConflict, AriNotFound) as exc:  # another worker won, or too late
        log.debug("broadcast call %s not ours: %s", channel_id, exc.message)
        app.claims_lost += 1
        return
    except AriError as exc:
        log.warning("claiming broadcast call %s failed: %s", channel_id, exc)
        return
    app.claims_won += 1


def on_stasis_start(
    app: VoxtraApp,
    event: StasisStart,
    rest: AriRestClient | None = None,
    ari_app: str | None = None,
) -> None:
    """A channel entered the application (``rest``/``ari_app``: the outbound websocket's)."""
    channel = event.channel
    waiter = app._stasis_waiters.get(channel.id)
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
    existing = app._sessions.get(channel.id)
    if existing is not None:
        existing._on_event(event)
        return
    if event.args and event.args[0] in RETURN_TAGS:
        kept = app.takes_return is not None and app.takes_return(channel.id)
        if (app.adopt_returns or kept) and not app._closing:  # the handler goes on with it
            log.info("call %s came back (%s) from its %s", channel.id, ",".join(event.args),
                     "trip" if kept else "dead worker's trip")  # fmt: skip
            handler, _ = pick_handler(app, channel)
            start_call(app, channel, handler, {}, rest, ari_app, returned=tuple(event.args))
            return
        # sent back by the shipped dialplan, but no call waits for it (it ended here, or in a
        # process before a restart, and was not kept: without --redis nothing is shared)
        log.warning("call %s came back (%s) with no call waiting and nothing of it is kept "
                    "here (a call goes on only after it ended 'unknown' in this process within "
                    "[run] away_ttl, or on any worker in cluster mode: was this process "
                    "restarted?); hanging up", channel.id, ",".join(event.args))  # fmt: skip
        app._spawn(_reject(app, channel.id), f"reject-{channel.id}")
        return
    if (
        channel.technology in INTERNAL_TECHS
        or (event.args and event.args[0] in (INTERNAL_ARG, OUTBOUND_ARG))
        or app._closing
    ):
        if app._closing and channel.technology not in INTERNAL_TECHS:
            app._spawn(_reject(app, channel.id), f"reject-{channel.id}")
        return
    handler, metadata = pick_handler(app, channel)
    metadata = {**metadata, **dialplan_metadata(event.args, channel.channelvars)}
    start_call(app, channel, handler, metadata, rest, ari_app)


def adopt(
    app: VoxtraApp,
    channel: Channel,
    rest: AriRestClient | None = None,
    ari_app: str | None = None,
) -> None:
    """A call in our application with no session (see :mod:`voxflow.telephony.orphans`):
    run it from the start (policy ``restart``; a cluster's handler resumes it from its
    checkpoint) or apologise and hang up (``hangup``)."""
    if channel.id in app._sessions or channel.id in (app._seen or ()) or app._closing:
        return
    if app.orphans == "hangup":

        async def apologise(session: CallSession) -> None:
            await _apologise(app, session)

        start_call(app, channel, apologise, {}, rest, ari_app)
        return
    handler, metadata = pick_handler(app, channel)
    log.info("adopting call %s to %r: its flow starts again", channel.id, channel.dialplan)
    start_call(app, channel, handler, metadata, rest, ari_app)


async def _apologise(app: VoxtraApp, session: CallSession) -> None:
    if app.orphan_apology:
        with contextlib.suppress(CallError, AriError):
            await session.play_file(app.orphan_apology)
    await session.hangup()


def start_call(
    app: VoxtraApp,
    channel: Channel,
    handler: Handler | None,
    metadata: dict[str, Any],
    rest: AriRestClient | None = None,
    ari_app: str | None = None,
    returned: tuple[str, ...] = (),
) -> None:
    """Register ``channel``'s session and run ``handler`` on it in a task (none: hang up)."""
    session = CallSession(
        app, channel, CallDirection.INBOUND, metadata=metadata, rest=rest, ari_app=ari_app
    )
    session.returned = returned
    session._stasis_started.set()
    app._sessions[channel.id] = session
    if app._seen is not None:
        app._seen.add(channel.id)
    if handler is None:
        log.warning("no handler for call %s to %r; hanging up", channel.id, session.called_number)
        app._spawn(session.hangup(), f"no-handler-{channel.id}")
        return
    task = asyncio.get_running_loop().create_task(
        run_handler(app, session, handler), name=f"call-{channel.id}"
    )
    app._handler_tasks[channel.id] = task
    task.add_done_callback(app._handler_done)


def pick_handler(app: VoxtraApp, channel: Channel) -> tuple[Handler | None, dict[str, Any]]:
    """The handler of the first route taking ``channel``'s extension, else the default."""
    exten = channel.dialplan.exten if channel.dialplan else ""
    for numbers, metadata, handler in app._routes:
        if exten in numbers:
            return handler, metadata
    return app._default, {}


async def _reject(app: VoxtraApp, channel_id: str) -> None:
    with contextlib.suppress(AriError):
        await app.rest.hangup(channel_id)


async def run_handler(app: VoxtraApp, session: CallSession, handler: Handler) -> None:
    """Run ``handler`` on ``session``; hang the call up after it unless it ended or left."""
    set_current_call(session)  # legs it dials belong to it (this task's own context)
    try:
        result = handler(session)
        if inspect.isawaitable(result):
            await result
    except CallEndedError as exc:
        log.info("call %s: handler stopped, the call ended (%s)", session.id, exc)
    except Exception:
        log.exception("handler for call %s raised", session.id)
    finally:
        if not session.ended and not session._left_stasis:
            await hang_up_after_handler(app, session)  # bounded: never waits for ever
