"""A call's trip out of Stasis into the shipped dialplan contexts, and back.

``docs/asterisk/extensions.conf`` ships ``[voxflow-transfer]`` and ``[voxflow-queue]``. Both send
a call they are done with back into the app with ``Stasis(${VOXFLOW_APP},<tag>,STATUS,...)``:
the new StasisStart on the same channel id resumes the call's existing :class:`CallSession`
(the app never starts a new call for it). What real Asterisk 22 does on the way is in
``captures/continue-outcomes.json`` (``i`` extension: StasisStart ``["returned","invalid",exten]``
within a millisecond of the ``continue``) and ``captures/queue-return.json`` (``Queue()`` returns
with ``QUEUESTATUS``; with the ``c`` option after the agent hung up). Without an explicit
subscription the app sees nothing but StasisEnd once the channel left Stasis, so a trip
subscribes to the channel first: a caller hanging up in the queue still reaches the session
(ChannelDestroyed).

Variables a trip sets (the shipped contexts read them): ``VOXFLOW_APP`` (where to come back),
``VOXFLOW_TRANSFER_TARGET`` (``TECH/resource`` for the ``endpoint`` extension),
``VOXFLOW_QUEUE``, ``VOXFLOW_QUEUE_OPTIONS`` (``c`` plus ``m(class)`` for music),
``VOXFLOW_QUEUE_TIMEOUT`` (seconds), ``VOXFLOW_QUEUE_POSITION`` (``Queue()``'s position
argument: a caller queued again after a key the step does not list goes back to its place;
empty: at the back), ``QUEUE_PRIO`` (Asterisk's own queue priority: a step's ``priority``;
a step without one sets back the value the channel had before voxflow first set it, so an
earlier step's priority does not stay, while a ``QUEUE_PRIO`` of the dialplan still applies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from voxflow.errors import (
    AriError,
    AriHTTPError,
    AriNotFound,
    CallDroppedError,
    CallEndedError,
    RecordingError,
    TransferFailedError,
)

if TYPE_CHECKING:
    from voxflow.ari.rest import AriRestClient
    from voxflow.telephony.session import CallSession

__all__ = [
    "METADATA_PREFIX",
    "PER_CALL_QUEUE_SLACK",
    "PER_CALL_TRANSFER_WAIT",
    "QUEUE_EXIT_CONTEXT",
    "QUEUE_EXTENSION",
    "QUEUE_RETURN",
    "RETURN_TAGS",
    "TRANSFER_ENDPOINT_EXTENSION",
    "TRANSFER_RETURN",
    "DialplanTrip",
    "QueueReturn",
    "TripResult",
    "dialplan_metadata",
    "leave_for_good",
    "queue",
    "queue_variables",
    "run_trip",
    "set_call_data",
    "set_variable",
    "stop_media_before_leaving",
    "transfer",
    "transfer_route",
]

log = logging.getLogger(__name__)

QUEUE_RETURN = "queue-return"
TRANSFER_RETURN = "transfer-return"
RETURN_TAGS = frozenset({QUEUE_RETURN, TRANSFER_RETURN})
"""First Stasis argument of a call the shipped contexts send back (never a new call)."""
QUEUE_EXIT_CONTEXT = "voxflow-queue-exit"
"""The context a queue's queues.conf ``context`` names for its callers to leave with a key."""
QUEUE_EXTENSION = "queue"
"""The ``[voxflow-queue]`` extension (a fixed name: no pattern that could match ``h``)."""
TRANSFER_ENDPOINT_EXTENSION = "endpoint"
"""The ``[voxflow-transfer]`` extension that dials ``${VOXFLOW_TRANSFER_TARGET}``."""
_DIAL_TARGET = re.compile(r"^[A-Za-z0-9+*#_.-]{1,64}$")
_ENDPOINT = re.compile(r"^[A-Za-z0-9]{1,16}/[A-Za-z0-9+*#_.@-]{1,64}$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MUSIC_CLASS = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_META_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
METADATA_PREFIX = "VOXFLOW_META_"
"""Channel variables ``VOXFLOW_META_<KEY>`` listed in ari.conf ``channelvars`` become
``call.metadata.<key>`` (lower case)."""


def dialplan_metadata(args: Sequence[str], channelvars: Mapping[str, Any] | None) -> dict[str, str]:
    """``call.metadata`` from the dialplan: Stasis arguments ``key=value``
    (``Stasis(voxflow,amount_due=${BALANCE})``), then channel variables ``VOXFLOW_META_<KEY>``
    in the StasisStart channel (ari.conf ``channelvars``). Empty values and keys that are not
    identifiers are ignored."""
    out: dict[str, str] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and value and _META_KEY.match(key):
            out[key] = value
    for name, value in (channelvars or {}).items():
        key = name[len(METADATA_PREFIX) :].lower()
        if name.startswith(METADATA_PREFIX) and value not in (None, "") and _META_KEY.match(key):
            out[key] = str(value)
    return out


@dataclass(frozen=True, slots=True)
class TripResult:
    """How a trip ended: back in the app with ``args`` (after the tag), ``left`` (the call
    belongs to the dialplan now: redirected, or its ``Dial()`` answered), ``ended``,
    ``dropped`` (the dialplan had nothing there and hung it up: ChannelDestroyed cause 0), or
    ``unknown`` (per-call websockets: not back within the wait, and Asterisk said nothing more:
    answered, or the caller hung up, or still queued; this worker cannot tell)."""

    kind: Literal["returned", "left", "ended", "dropped", "unknown"]
    args: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """The first argument after the tag (QUEUESTATUS, DIALSTATUS or INVALID), or ""."""
        return self.args[0] if self.args else ""


def _count(text: str) -> int | None:
    """A whole number Asterisk set (``QUEUEPOSITION``, ``QUEUEWAIT``), None if unset."""
    return int(text) if text.strip().isdigit() else None


@dataclass(frozen=True, slots=True)
class QueueReturn:
    """How ``Queue()`` let the call go, from the shipped contexts' Stasis arguments
    (``queue-return,${QUEUESTATUS},${ANSWEREDTIME},${QUEUEPOSITION},${QUEUEWAIT}``, or from
    ``[voxflow-queue-exit]`` ``queue-return,EXITWITHKEY,,${QUEUEPOSITION},${QUEUEWAIT},${EXTEN}``):
    ``status``, ``position`` (the caller's place when it left, 1 = next), ``wait`` (seconds
    queued), ``key`` (the digit that left the queue); None where Asterisk set nothing."""

    status: str
    position: int | None = None
    wait: int | None = None
    key: str = ""

    @classmethod
    def from_args(cls, args: Sequence[str]) -> QueueReturn:
        """From the Stasis arguments after the ``queue-return`` tag."""
        part = [*args, "", "", "", "", ""]
        return cls(part[0], _count(part[2]), _count(part[3]), part[4].strip()[:1])


class DialplanTrip:
    """One trip in progress; the session's event handlers resolve it."""

    def __init__(self, tag: str, *, left_on_stasis_end: bool = False) -> None:
        self.tag = tag
        self.left_on_stasis_end = left_on_stasis_end
        self.result: asyncio.Future[TripResult] = asyncio.get_running_loop().create_future()

    def resolve(self, result: TripResult) -> None:
        """Settle the trip (the first result wins)."""
        if not self.result.done():
            self.result.set_result(result)

    def stasis_start(self, args: list[str]) -> bool:
        """A StasisStart on the call's channel: True if it is this trip's return."""
        if args and args[0] == self.tag:
            self.resolve(TripResult("returned", tuple(args[1:])))
            return True
        return False

    def stasis_end(self) -> None:
        """The channel left Stasis (the ``continue``/``redirect`` took effect)."""
        if self.left_on_stasis_end:
            self.resolve(TripResult("left"))

    def dial(self, caller_id: str | None, me: str, status: str) -> None:
        """A Dial event: a transfer's ``Dial()`` answering hands the call over."""
        if self.tag == TRANSFER_RETURN and caller_id == me and status == "ANSWER":
            self.resolve(TripResult("left"))


def transfer_route(number: str) -> tuple[str, dict[str, str]]:
    """The ``[voxflow-transfer]`` extension and variables for a transfer target: ``TECH/res``
    goes to extension ``endpoint``, a number to itself (``ValueError`` if malformed)."""
    if "/" in number:
        if not _ENDPOINT.match(number):
            raise ValueError(f"invalid transfer target {number!r}")
        return TRANSFER_ENDPOINT_EXTENSION, {"VOXFLOW_TRANSFER_TARGET": number}
    if not _DIAL_TARGET.match(number):
        raise ValueError(f"invalid transfer target {number!r}")
    return number, {}


def queue_variables(
    name: str,
    *,
    timeout: float | None,
    music: str | None,
    priority: int | None,
    position: int | None = None,
) -> dict[str, str]:
    """The channel variables ``[voxflow-queue]`` reads for one queue step (``ValueError`` for
    a malformed queue name or music class). ``position``: the place to join at (1 = next in
    line), always set so that a value of an earlier queue step does not stay on the channel."""
    if not _QUEUE_NAME.match(name):
        raise ValueError(f"invalid queue name {name!r}")
    if music is not None and not _MUSIC_CLASS.match(music):
        raise ValueError(f"invalid music class {music!r}")
    options = "c" + (f"m({music})" if music else "")
    out = {
        "VOXFLOW_QUEUE": name,
        "VOXFLOW_QUEUE_OPTIONS": options,
        "VOXFLOW_QUEUE_TIMEOUT": str(max(1, round(timeout))) if timeout else "",
        "VOXFLOW_QUEUE_POSITION": str(position) if position and position > 0 else "",
    }
    if priority is not None:
        out["QUEUE_PRIO"] = str(priority)
    return out


async def queue_prio_before(session: CallSession) -> str:
    """The channel's ``QUEUE_PRIO`` ("" when unset: Asterisk answers 404 "Provided variable
    was not found"); ``CallEndedError`` when the channel is gone."""
    try:
        return await session.rest.get_variable(session.id, "QUEUE_PRIO")
    except AriNotFound as exc:
        if "variable" in exc.message.lower():  # not "Channel not found"
            return ""
        session._gone()
        raise CallEndedError(f"call {session.id} has ended") from None


async def set_variable(rest: AriRestClient, channel_id: str, name: str, value: str) -> None:
    """Set a channel variable; one whose answer came after the deadline goes again with twice
    the deadline (setting a variable to the same value again changes nothing): an overloaded
    Asterisk answers late, and the step failed although the variable was set."""

    # here, not at the top: voxflow.ari loads aiohttp, which `voxflow test` (virtual time, this
    # module through runtime.port) must not (tests/cli/test_cli_startup.py)
    from voxflow.ari.cleanup import again_if_late

    async def op(deadline: float | None) -> None:
        await rest.set_variable(channel_id, name, value, timeout=deadline)

    await again_if_late(op, f"setting {name} on {channel_id}", base=rest.timeout)


async def leave_for_good(
    session: CallSession, context: str, extension: str, variables: Mapping[str, str]
) -> None:
    """Send the call into ``context``/``extension`` with no way back (a per-call outbound
    websocket closes 3 s after the call leaves Stasis, capture outbound-websocket.json)."""
    rest = session.rest
    try:
        for name, value in variables.items():
            await set_variable(rest, session.id, name, value)
        await stop_media_before_leaving(session)
        await rest.continue_in_dialplan(
            session.id, context=context, extension=extension, priority=1
        )
    except AriNotFound:
        session._gone()
        return
    await session._left_stasis_wait()


async def run_trip(
    session: CallSession,
    tag: str,
    context: str,
    extension: str,
    variables: Mapping[str, str],
    *,
    away: float | None = None,
) -> TripResult:
    """Send the call into ``context``/``extension`` and wait until it is back (``returned``),
    handed over (``left``) or gone (raises ``CallEndedError``). ``away``: a per-call socket
    closes 3 s after the call left Stasis, and Asterisk tells nothing more about the call until
    a ``Stasis()`` connects out again: not back within ``away`` seconds is ``unknown``."""
    rest = session.rest  # the call's own link (an outbound websocket's, or the app's)
    app = session.ari_app
    source = f"channel:{session.id}"
    await stop_media_before_leaving(session)  # else Asterisk queues the continue behind it
    voice, session._voice = session._voice, None  # its bridge does not survive leaving Stasis
    if voice is not None:  # (rebuilt on next use once the call is back)
        try:
            await voice.aclose()
        except Exception:
            log.exception("closing the media path of %s failed", session.id)
    try:
        # Back into the app's own name: per call, Stasis(<app>) opens a new websocket for the
        # return ('<app>:<channel>' exists only while the call's socket does).
        home = session._app.app_name
        for name, value in {"VOXFLOW_APP": home, **variables}.items():
            await set_variable(rest, session.id, name, value)
        await rest.subscribe(app, source)  # else a hang-up in the dialplan is never seen
    except AriNotFound:
        session._gone()
        raise CallEndedError(f"call {session.id} ended before it left for {context}") from None
    trip = DialplanTrip(tag)
    session._trip = trip
    session._left_stasis, session._in_stasis = True, False
    try:
        await rest.continue_in_dialplan(
            session.id, context=context, extension=extension, priority=1
        )
        result = await (trip.result if away is None else _within(trip.result, away))
    except AriNotFound:
        result = TripResult("ended")
    except BaseException:
        session._left_stasis, session._in_stasis = False, True  # refused: still in Stasis
        raise
    finally:
        session._trip = None
    if result.kind == "returned":
        session._left_stasis, session._in_stasis = False, True
    if result.kind not in ("ended", "dropped", "unknown") and not (
        away is not None and result.kind == "left"
    ):
        with contextlib.suppress(AriError):  # (a per-call socket gone: nothing to undo)
            await rest.unsubscribe(app, source)
    if result.kind == "left":
        log.info("call %s: handed over by %s/%s", session.id, context, extension)
        session._mark_ended()
    elif result.kind == "unknown":
        log.warning(
            "call %s: not back from %s/%s within %.0f s and no word from Asterisk (per-call "
            "websocket): whether it was answered or the caller hung up is unknown",
            session.id, context, extension, away or 0.0,
        )  # fmt: skip
        session._mark_ended()
    elif result.kind == "dropped":
        session._gone()
        raise CallDroppedError(
            f"the dialplan dropped the call: nothing at {context},{extension},1 "
            "(check the app's transfer_context/queue_context and extensions.conf)"
        )
    elif result.kind == "ended" or session.ended:
        session._gone()
        raise CallEndedError(f"call {session.id} ended in {context}/{extension}")
    return result


async def _within(result: asyncio.Future[TripResult], seconds: float) -> TripResult:
    """``result`` if it settles within ``seconds``, else ``unknown``."""
    try:
        return await asyncio.wait_for(asyncio.shield(result), seconds)
    except TimeoutError:
        return TripResult("unknown")


PER_CALL_QUEUE_SLACK = 30.0
"""Seconds past a queue's timeout a per-call queue trip still waits for ``Queue()`` to return:
Asterisk checks the timeout between ring cycles (queues.conf ``timeout`` + ``retry``)."""
_REDIRECT_TECHS = frozenset({"PJSIP", "SIP", "IAX2"})
PER_CALL_TRANSFER_WAIT = 75.0
"""Seconds a per-call transfer waits for the call to come back: the shipped ``Dial(...,60)``
rings 60 s at most; not back by then, it was answered or the caller hung up while it rang
(Asterisk tells neither once the call's socket closed): the transfer's result is unknown."""


async def transfer(session: CallSession, number: str) -> bool:
    """``CallSession.transfer_to``: redirect within the caller's own SIP technology, else a
    trip through the app's ``transfer_context``; ``TransferFailedError`` when it came back.
    True when the call left (redirected, or its ``Dial()`` answered), False when nothing says
    what became of it (per call: not back within ``PER_CALL_TRANSFER_WAIT``, no event)."""
    extension, variables = transfer_route(number)
    tech, sep, _ = number.partition("/")
    if (
        sep
        and tech.upper() == session.channel.technology.upper()
        and tech.upper() in (_REDIRECT_TECHS)
    ):
        try:
            await stop_media_before_leaving(session)
            await session.rest.redirect(session.id, number)
            await session._left_stasis_wait()
            return True
        except AriNotFound:
            session._gone()
            return True
        except AriHTTPError as exc:
            log.info("redirect of %s refused (%s); using the dialplan", session.id, exc)
    app = session._app
    # per call, a Dial() that failed comes back over a new socket (Stasis() connects out again)
    away = PER_CALL_TRANSFER_WAIT if app.mode == "per_call" else None
    result = await run_trip(
        session, TRANSFER_RETURN, app.transfer_context, extension, variables, away=away
    )
    if result.kind == "returned":
        raise TransferFailedError(number, result.status)
    return result.kind != "unknown"


async def queue(session: CallSession, variables: Mapping[str, str]) -> QueueReturn | None:
    """``CallSession.transfer_to_queue``: how the call came back (:class:`QueueReturn`), or None
    when it left and nothing says what became of it (per-call outbound websockets: not back
    within the queue's timeout and ``PER_CALL_QUEUE_SLACK``: an agent may have it, or the
    caller hung up; without a timeout at once)."""
    app = session._app
    away = None
    if app.mode == "per_call":
        limit = variables.get("VOXFLOW_QUEUE_TIMEOUT", "")
        if not limit:
            await leave_for_good(session, app.queue_context, QUEUE_EXTENSION, variables)
            return None
        away = float(limit) + PER_CALL_QUEUE_SLACK
    result = await run_trip(
        session, QUEUE_RETURN, app.queue_context, QUEUE_EXTENSION, variables, away=away
    )
    if result.kind in ("left", "unknown"):
        return None
    return QueueReturn.from_args(result.args)


async def set_call_data(session: CallSession, data: Sequence[tuple[str, str]]) -> None:
    """``VOXFLOW_META_<KEY>`` channel variables for the next flow (``CallEndedError`` when the
    channel is gone)."""
    try:
        for key, value in data:
            name = f"{METADATA_PREFIX}{key.upper()}"
            await set_variable(session.rest, session.id, name, value)
    except AriNotFound:
        session._gone()
        raise CallEndedError(f"call {session.id} has ended") from None


async def stop_media_before_leaving(session: CallSession) -> None:
    """Asterisk runs a continue (or redirect) only after a running channel playback or live
    recording ends (captures continue-outcomes.json, record-leaving-stasis.json): stop them
    first so the caller is not left waiting. The recording is kept (handed to its sink)."""
    for pid in list(session._playbacks):
        try:
            await session.rest.stop_playback(pid)
        except AriHTTPError as exc:  # already finished: nothing to stop
            log.debug("stopping playback %s before leaving: %s", pid, exc)
    if session._recording is not None:
        log.info(
            "call %s leaves the app: recording %r stops here", session.id, session._recording.name
        )
        try:
            session._stopped_on_leaving = await session.record_stop()
        except RecordingError as exc:
            log.error("call %s: %s", session.id, exc)
