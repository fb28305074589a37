"""Pydantic models for the ARI objects and events voxflow consumes.

Events are parsed with one :class:`~pydantic.TypeAdapter` over a union discriminated on ``type``.
Unknown event types become :class:`UnknownEvent`; extra fields are kept (``model_extra``) and logged
once per (type, field) at DEBUG; malformed JSON or invalid payloads are counted by
:class:`EventParser` and skipped, never fatal. Field names follow the ARI JSON.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from voxflow.ari.ratelog import RateLimitedLog
from voxflow.errors import AriEventInvalid

__all__ = [
    "ApplicationRegistered",
    "ApplicationReplaced",
    "AriEvent",
    "AriModel",
    "Bridge",
    "BridgeDestroyed",
    "CallBroadcast",
    "CallClaimed",
    "CallerID",
    "Channel",
    "ChannelDestroyed",
    "ChannelDtmfReceived",
    "ChannelEnteredBridge",
    "ChannelEvent",
    "ChannelHangupRequest",
    "ChannelLeftBridge",
    "ChannelStateChange",
    "ChannelVarset",
    "Dial",
    "DialplanCEP",
    "DtmfDigit",
    "EventParser",
    "LiveRecording",
    "Playback",
    "PlaybackEvent",
    "PlaybackFinished",
    "PlaybackStarted",
    "RecordingEvent",
    "RecordingFailed",
    "RecordingFinished",
    "RecordingStarted",
    "StasisEnd",
    "StasisStart",
    "StoredRecording",
    "UnknownEvent",
    "parse_event",
]

log = logging.getLogger(__name__)


class AriModel(BaseModel):
    """Base of every ARI model: unknown fields are tolerated and kept.

    Events read from the websocket are *lazy* (see :mod:`voxflow.ari.fastparse`): the routing
    fields are set on receipt and the rest is validated, once for the whole event, on first
    access of any other attribute. Dumping, comparing, copying or pickling a lazy model
    completes it first, so a lazy model behaves exactly like a validated one.
    """

    model_config = ConfigDict(extra="allow", frozen=False, populate_by_name=True)

    def _complete(self) -> None:
        """Validate the fields not set on receipt (no-op for a complete model)."""
        values = self.__dict__
        lazy = values.pop(LAZY_KEY, None)
        if lazy is None:
            return
        try:
            full = _resolve(*lazy)
        except BaseException:
            values[LAZY_KEY] = lazy
            raise
        merged = {key: values.get(key, value) for key, value in full.__dict__.items()}
        merged.update(values)  # eager fields (and caller edits) are kept, in field order
        object.__setattr__(self, "__dict__", merged)
        object.__setattr__(self, "__pydantic_fields_set__", set(full.__pydantic_fields_set__))
        object.__setattr__(self, "__pydantic_extra__", full.__pydantic_extra__)
        object.__setattr__(self, "__pydantic_private__", None)

    def _complete_deep(self) -> None:
        self._complete()
        for value in self.__dict__.values():
            if isinstance(value, AriModel):
                value._complete_deep()

    @property
    def is_lazy(self) -> bool:
        """True while some fields of this object are not validated yet (see the class doc)."""
        return LAZY_KEY in self.__dict__

    if not TYPE_CHECKING:  # runtime hooks; typing sees BaseModel's own signatures

        def __getattr__(self, name: str) -> Any:
            # A lazy model has its pydantic slots unset and LAZY_KEY in __dict__: any missing
            # attribute (a field not decoded on receipt, an extra, a pydantic slot) completes it.
            if LAZY_KEY in object.__getattribute__(self, "__dict__"):
                self._complete()
                if name in _SLOTS:
                    return object.__getattribute__(self, name)
                values = self.__dict__
                if name in values:
                    return values[name]
            return super().__getattr__(name)

        def model_dump(self, *args: Any, **kwargs: Any) -> Any:
            self._complete_deep()
            return super().model_dump(*args, **kwargs)

        def model_dump_json(self, *args: Any, **kwargs: Any) -> Any:
            self._complete_deep()
            return super().model_dump_json(*args, **kwargs)

        def model_copy(self, *args: Any, **kwargs: Any) -> Any:
            self._complete_deep()
            return super().model_copy(*args, **kwargs)

        def __eq__(self, other: object) -> bool:
            self._complete_deep()
            if isinstance(other, AriModel):
                other._complete_deep()
            return super().__eq__(other)

        def __repr_args__(self) -> Any:
            self._complete_deep()
            return super().__repr_args__()

        def __iter__(self) -> Any:
            self._complete_deep()
            return super().__iter__()

        def __copy__(self) -> Any:
            self._complete_deep()
            return super().__copy__()

        def __deepcopy__(self, memo: Any = None) -> Any:
            self._complete_deep()
            return super().__deepcopy__(memo)

        def __getstate__(self) -> Any:
            self._complete_deep()
            return super().__getstate__()


# A lazy model keeps ``(box, field)`` under this key of its __dict__ (never a field name: those
# cannot start with "_"). ``box`` is ``[raw frame]``, shared by the event and its nested objects,
# and gets the fully validated event appended when first needed; ``field`` is "" for the event.
LAZY_KEY = "_voxflow_lazy"
_SLOTS = frozenset({"__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"})


def _resolve(box: list[Any], field: str) -> AriModel:
    """The fully validated object of a lazy model (raises ``AriEventInvalid`` if invalid)."""
    if len(box) == 1:
        try:
            box.append(_validate_json(box[0]))
        except ValidationError as exc:
            log.warning("invalid ARI event (found when reading it): %s", _short_errors(exc))
            raise AriEventInvalid(f"invalid ARI event: {_short_errors(exc)}") from None
    full: AriModel = box[1]
    return getattr(full, field) if field else full


class CallerID(AriModel):
    """Caller identification (``caller``/``connected`` of a channel)."""

    name: str = ""
    number: str = ""


class DialplanCEP(AriModel):
    """Dialplan location of a channel."""

    context: str = ""
    exten: str = ""
    priority: int = 0
    app_name: str = ""
    app_data: str = ""


class Channel(AriModel):
    """An ARI channel snapshot."""

    id: str
    name: str = ""
    state: str = "Unknown"
    protocol_id: str = ""
    caller: CallerID = Field(default_factory=CallerID)
    connected: CallerID = Field(default_factory=CallerID)
    accountcode: str = ""
    dialplan: DialplanCEP | None = None
    creationtime: datetime | None = None
    language: str = "en"
    channelvars: dict[str, Any] | None = None

    @property
    def technology(self) -> str:
        """The channel technology (``PJSIP``, ``Local``, ``UnicastRTP``...), from its name."""
        return self.name.split("/", 1)[0] if "/" in self.name else ""


class Bridge(AriModel):
    """An ARI bridge snapshot."""

    id: str
    technology: str = ""
    bridge_type: str = ""
    bridge_class: str = ""
    creator: str = ""
    name: str = ""
    channels: list[str] = Field(default_factory=list)
    creationtime: datetime | None = None


class Playback(AriModel):
    """An ARI playback. ``state`` is queued, playing, continuing, done or failed."""

    id: str
    media_uri: str = ""
    target_uri: str = ""
    language: str = ""
    state: str = ""


class LiveRecording(AriModel):
    """A recording in progress (or just finished) as events and ``/recordings/live`` report it."""

    name: str
    format: str = ""
    target_uri: str = ""
    state: str = ""
    duration: int | None = None
    talking_duration: int | None = None
    silence_duration: int | None = None
    cause: str | None = None


class StoredRecording(AriModel):
    """A recording stored on the Asterisk server."""

    name: str
    format: str = ""


# ---------------------------------------------------------------- events


class AriEvent(AriModel):
    """Base of every ARI event: ``type``, ``timestamp``, ``application``, ``asterisk_id``."""

    type: str
    timestamp: datetime | None = None
    application: str = ""
    asterisk_id: str = ""


class ChannelEvent(AriEvent):
    """Any event carrying a ``channel``."""

    channel: Channel


class StasisStart(ChannelEvent):
    """A channel entered the application."""

    type: Literal["StasisStart"]
    args: list[str] = Field(default_factory=list)
    replace_channel: Channel | None = None


class StasisEnd(ChannelEvent):
    """A channel left the application: for dialplan channels, the end of the call."""

    type: Literal["StasisEnd"]


class ChannelStateChange(ChannelEvent):
    """The channel state changed (e.g. to Up when answered)."""

    type: Literal["ChannelStateChange"]


class ChannelCreated(ChannelEvent):
    """A channel was created."""

    type: Literal["ChannelCreated"]


class ChannelDestroyed(ChannelEvent):
    """A channel was destroyed; ``cause`` is Q.850."""

    type: Literal["ChannelDestroyed"]
    cause: int = 0
    cause_txt: str = ""


class ChannelHangupRequest(ChannelEvent):
    """A hangup was requested. When ``soft`` is true, ``cause`` is NOT Q.850 (soft hangup flags)."""

    type: Literal["ChannelHangupRequest"]
    cause: int | None = None
    soft: bool = False


# The keys Asterisk reports in ChannelDtmfReceived (RFC 4733 events 0-15), one character each.
DtmfDigit = Literal["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#", "A", "B", "C", "D"]


class ChannelDtmfReceived(ChannelEvent):
    """A DTMF digit ended on the channel. Any other ``digit`` (``"é"``, ``"55555"``, ``""``)
    makes the event invalid: counted and skipped by :class:`EventParser`, never a key."""

    type: Literal["ChannelDtmfReceived"]
    digit: DtmfDigit
    duration_ms: int = 0


class ChannelVarset(AriEvent):
    """A channel (or global, when ``channel`` is absent) variable was set."""

    type: Literal["ChannelVarset"]
    variable: str = ""
    value: str = ""
    channel: Channel | None = None


class ChannelDialplan(ChannelEvent):
    """The channel moved in the dialplan."""

    type: Literal["ChannelDialplan"]
    dialplan_app: str = ""
    dialplan_app_data: str = ""


class ChannelCallerId(ChannelEvent):
    """The channel caller id changed."""

    type: Literal["ChannelCallerId"]
    caller_presentation: int = 0
    caller_presentation_txt: str = ""


class ChannelConnectedLine(ChannelEvent):
    """The connected line of a channel changed."""

    type: Literal["ChannelConnectedLine"]


class ChannelHold(ChannelEvent):
    """The channel was put on hold."""

    type: Literal["ChannelHold"]
    musicclass: str | None = None


class ChannelUnhold(ChannelEvent):
    """The channel was taken off hold."""

    type: Literal["ChannelUnhold"]


class ChannelTalkingStarted(ChannelEvent):
    """Talk detection: the caller started talking."""

    type: Literal["ChannelTalkingStarted"]


class ChannelTalkingFinished(ChannelEvent):
    """Talk detection: the caller stopped talking after ``duration`` ms."""

    type: Literal["ChannelTalkingFinished"]
    duration: int = 0


class ChannelUserevent(AriEvent):
    """A user event (``UserEvent()`` or ``POST /events/user``)."""

    type: Literal["ChannelUserevent"]
    eventname: str = ""
    userevent: dict[str, Any] = Field(default_factory=dict)
    channel: Channel | None = None
    bridge: Bridge | None = None


class _BridgeChannelEvent(ChannelEvent):
    bridge: Bridge


class ChannelEnteredBridge(_BridgeChannelEvent):
    """A channel entered a bridge."""

    type: Literal["ChannelEnteredBridge"]


class ChannelLeftBridge(_BridgeChannelEvent):
    """A channel left a bridge."""

    type: Literal["ChannelLeftBridge"]


class BridgeCreated(AriEvent):
    """A bridge was created."""

    type: Literal["BridgeCreated"]
    bridge: Bridge


class BridgeDestroyed(AriEvent):
    """A bridge was destroyed."""

    type: Literal["BridgeDestroyed"]
    bridge: Bridge


class Dial(AriEvent):
    """Dialing state of ``peer``: dialstatus "", RINGING, ANSWER, BUSY, NOANSWER, CONGESTION..."""

    type: Literal["Dial"]
    peer: Channel
    caller: Channel | None = None
    dialstatus: str = ""
    dialstring: str = ""
    forward: str = ""


class PlaybackEvent(AriEvent):
    """Any event carrying a ``playback``."""

    playback: Playback


class PlaybackStarted(PlaybackEvent):
    """A playback started."""

    type: Literal["PlaybackStarted"]


class PlaybackContinuing(PlaybackEvent):
    """A playback moved on to its next media URI."""

    type: Literal["PlaybackContinuing"]


class PlaybackFinished(PlaybackEvent):
    """A playback ended; ``playback.state`` is "done" or "failed"."""

    type: Literal["PlaybackFinished"]


class RecordingEvent(AriEvent):
    """Any event carrying a ``recording``."""

    recording: LiveRecording


class RecordingStarted(RecordingEvent):
    """A recording started."""

    type: Literal["RecordingStarted"]


class RecordingFinished(RecordingEvent):
    """A recording finished and was stored."""

    type: Literal["RecordingFinished"]


class RecordingFailed(RecordingEvent):
    """A recording failed (``recording.cause`` says why)."""

    type: Literal["RecordingFailed"]


class ApplicationReplaced(AriEvent):
    """Another websocket took our application name; this socket gets no more events."""

    type: Literal["ApplicationReplaced"]


class ApplicationRegistered(AriEvent):
    """First frame of an outbound websocket (Asterisk 22.5+): the app name this socket serves."""

    type: Literal["ApplicationRegistered"]


class CallBroadcast(ChannelEvent):
    """StasisBroadcast() offers a call to the matching apps (22.10+): claim it to get it."""

    type: Literal["CallBroadcast"]
    caller: str = ""
    called: str = ""


class CallClaimed(ChannelEvent):
    """A broadcast call was claimed (StasisBroadcast with notify_claimed)."""

    type: Literal["CallClaimed"]
    winner_app: str = ""


class DeviceStateChanged(AriEvent):
    """A device state changed."""

    type: Literal["DeviceStateChanged"]
    device_state: dict[str, Any] = Field(default_factory=dict)


class UnknownEvent(AriEvent):
    """An event type voxflow does not model; every field is kept in ``model_extra``."""


_KNOWN: tuple[type[AriEvent], ...] = (
    StasisStart,
    StasisEnd,
    ChannelStateChange,
    ChannelCreated,
    ChannelDestroyed,
    ChannelHangupRequest,
    ChannelDtmfReceived,
    ChannelVarset,
    ChannelDialplan,
    ChannelCallerId,
    ChannelConnectedLine,
    ChannelHold,
    ChannelUnhold,
    ChannelTalkingStarted,
    ChannelTalkingFinished,
    ChannelUserevent,
    ChannelEnteredBridge,
    ChannelLeftBridge,
    BridgeCreated,
    BridgeDestroyed,
    Dial,
    PlaybackStarted,
    PlaybackContinuing,
    PlaybackFinished,
    RecordingStarted,
    RecordingFinished,
    RecordingFailed,
    ApplicationReplaced,
    ApplicationRegistered,
    CallBroadcast,
    CallClaimed,
    DeviceStateChanged,
)
_KNOWN_NAMES = frozenset(cls.__name__ for cls in _KNOWN)


def _tagged_union() -> Any:
    union: Any = _KNOWN[0]
    for member in _KNOWN[1:]:
        union = union | member
    return Annotated[union, Field(discriminator="type")]


# A literal discriminator lets pydantic-core pick the model from the JSON ``type`` directly
# (about 1.4x faster than a callable one); unknown types fall back to UnknownEvent.
_ADAPTER: TypeAdapter[Any] = TypeAdapter(_tagged_union())
_UNKNOWN: TypeAdapter[UnknownEvent] = TypeAdapter(UnknownEvent)
_VALIDATE_JSON = _ADAPTER.validator.validate_json  # the core validator: no per-call wrapper


def _validate_json(raw: str | bytes) -> AriEvent:
    try:
        event: AriEvent = _VALIDATE_JSON(raw)
    except ValidationError as exc:
        if not _is_unknown_tag(exc):
            raise
        return _UNKNOWN.validate_json(raw)
    return event


def _validate_python(raw: dict[str, Any]) -> AriEvent:
    try:
        event: AriEvent = _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        if not _is_unknown_tag(exc):
            raise
        return _UNKNOWN.validate_python(raw)
    return event


def _is_unknown_tag(exc: ValidationError) -> bool:
    errors = exc.errors()
    return len(errors) == 1 and errors[0].get("type") == "union_tag_invalid"


class EventParser:
    """Parses raw websocket messages into events; counts and skips what cannot be parsed."""

    def __init__(self, *, lazy: bool = False) -> None:
        self.lazy = lazy
        self.malformed = 0
        self.invalid = 0
        self.unknown = 0
        self.warnings = RateLimitedLog(log)  # a flood of bad events: counted, a few logged
        self._seen_extra: set[tuple[str, str]] = set()
        self._seen_unknown: set[str] = set()

    def parse(self, raw: str | bytes) -> AriEvent | None:
        """Return the event, or None (counted and logged) for malformed or invalid input.

        With ``lazy=True`` events are returned lazy (:mod:`voxflow.ari.fastparse`): fields
        other than the routing ones are validated on first read, so a bad value there raises
        ``AriEventInvalid`` at that read instead of being counted here. While DEBUG logging is
        on for this module every event is validated in full (to log unmodelled fields).
        """
        if self.lazy and not log.isEnabledFor(logging.DEBUG):
            event = _decode_lazy(raw)
            if event is not None:
                return event
        try:
            event = _validate_json(raw)
        except ValidationError as exc:
            if _is_json_error(exc):
                self.malformed += 1
                self.warnings.log(
                    logging.WARNING,
                    "skipping malformed ARI event (not JSON; %d so far): %.120r",
                    self.malformed,
                    raw,
                )
            else:
                self.invalid += 1
                self.warnings.log(
                    logging.WARNING,
                    "skipping invalid ARI event (%d so far): %s",
                    self.invalid,
                    _short_errors(exc),
                )
            return None
        if isinstance(event, UnknownEvent):
            self.unknown += 1
            if event.type not in self._seen_unknown:
                self._seen_unknown.add(event.type)
                log.info("ignoring unknown ARI event type %r", event.type)
        elif event.model_extra:
            for key in event.model_extra:
                if (event.type, key) not in self._seen_extra:
                    self._seen_extra.add((event.type, key))
                    log.debug("ARI event %s carries unmodelled field %r", event.type, key)
        return event


def _is_json_error(exc: ValidationError) -> bool:
    return any(err.get("type") == "json_invalid" for err in exc.errors())


def _short_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


def parse_event(raw: str | bytes | dict[str, Any]) -> AriEvent:
    """Parse one event (JSON text or a decoded dict); raises ``pydantic.ValidationError``."""
    if isinstance(raw, dict):
        return _validate_python(raw)
    return _validate_json(raw)


from voxflow.ari.fastparse import decode_lazy as _decode_lazy  # noqa: E402  (imports this module)
