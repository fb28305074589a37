"""Fast, lazy decoding of ARI events: routing fields on receipt, the rest on first read.

:func:`decode_lazy` decodes only what routing and sessions read on every event (``type``, the
ids and state of ``channel``/``bridge``/``playback``/``recording``/``peer``/``caller``, and
``digit``, ``cause``, ``soft``, ``dialstatus``, ``eventname``, ``args``) with one msgspec
decoder, and returns an instance of the event's own pydantic class (``StasisStart``,
``ChannelDtmfReceived``...) carrying those fields. Every other field is validated by pydantic,
once for the whole event, on first access (see :class:`~voxflow.ari.models.AriModel`).

The fast decoder accepts a subset of what pydantic accepts, with the same types and defaults, so
the values it sets are the ones pydantic would give. Anything it does not take (an unknown type,
a coerced value such as ``"cause": "16"``, a missing required field, broken JSON) returns
``None`` and the caller falls back to full pydantic validation, which decides.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Required, TypedDict

import msgspec

from voxflow.ari.models import (
    _KNOWN,
    LAZY_KEY,
    AriEvent,
    AriModel,
    Bridge,
    Channel,
    LiveRecording,
    Playback,
)

__all__ = ["decode_lazy"]


class _Channel(TypedDict, total=False):
    id: Required[str]
    name: str
    state: str


class _Bridge(TypedDict, total=False):
    id: Required[str]


class _Playback(TypedDict, total=False):
    id: Required[str]
    target_uri: str
    state: str


class _Recording(TypedDict, total=False):
    name: Required[str]
    target_uri: str
    state: str


class _Head(TypedDict, total=False):
    """The fields decoded on receipt (msgspec skips the others); absent ones stay absent."""

    type: Required[str]
    channel: _Channel | None
    bridge: _Bridge | None
    playback: _Playback | None
    recording: _Recording | None
    peer: _Channel | None
    caller: _Channel | None
    digit: str | None
    cause: int | None
    soft: bool | None
    dialstatus: str | None
    eventname: str | None
    args: list[str] | None


_DECODE = msgspec.json.Decoder(_Head).decode
_NESTED: dict[str, type[AriModel]] = {
    "channel": Channel,
    "bridge": Bridge,
    "playback": Playback,
    "recording": LiveRecording,
    "peer": Channel,
    "caller": Channel,
}
_NEW = object.__new__
_SET = object.__setattr__


class _Spec(typing.NamedTuple):
    cls: type[AriEvent]
    fields: frozenset[str]  # head keys the class models (others are extras, left lazy)
    required: frozenset[str]
    not_null: frozenset[str]
    nested: tuple[tuple[str, type[AriModel]], ...]
    optional: tuple[str, ...]  # nested fields defaulting to None: set when absent


def _spec(cls: type[AriEvent]) -> _Spec:
    fields, required, not_null = {"type"}, {"type"}, set()
    nested, optional = [], []
    for name in _Head.__annotations__:
        info = cls.model_fields.get(name)
        if info is None or name == "type":
            continue
        fields.add(name)
        if info.is_required():
            required.add(name)
        if type(None) not in typing.get_args(info.annotation) and info.annotation not in (
            None,
            types.NoneType,
        ):
            not_null.add(name)
        if name in _NESTED:
            nested.append((name, _NESTED[name]))
            if not info.is_required() and info.default is None:
                optional.append(name)
    return _Spec(
        cls,
        frozenset(fields),
        frozenset(required),
        frozenset(not_null),
        tuple(nested),
        tuple(optional),
    )


_SPECS: dict[str, _Spec] = {cls.__name__: _spec(cls) for cls in _KNOWN}


def decode_lazy(raw: str | bytes) -> AriEvent | None:
    """A lazy event for ``raw``, or None when full validation must decide (see module doc)."""
    try:
        head: dict[str, Any] = _DECODE(raw)  # type: ignore[assignment]
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    spec = _SPECS.get(head["type"])
    if spec is None:
        return None
    keys = head.keys()
    if not keys >= spec.required:
        return None  # a required field is missing: full validation reports it
    if not keys <= spec.fields:
        for extra in keys - spec.fields:
            del head[extra]  # modelled by other event types only: an extra here
    if None in head.values() and any(head.get(k, 0) is None for k in spec.not_null):
        return None
    for name in spec.optional:
        head.setdefault(name, None)  # e.g. a global ChannelVarset: no channel, nothing to read
    box = [raw]
    for name, model in spec.nested:
        values = head.get(name)
        if values is not None:
            values[LAZY_KEY] = (box, name)
            obj = _NEW(model)
            _SET(obj, "__dict__", values)
            head[name] = obj
    head[LAZY_KEY] = (box, "")
    event: AriEvent = _NEW(spec.cls)
    _SET(event, "__dict__", head)
    return event
