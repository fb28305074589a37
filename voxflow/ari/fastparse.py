"""Fast, lazy decoding of ARI events: routing fields on receipt, the rest on first read.

:func:`decode_lazy` decodes only what routing and sessions read on every event (``type``, the
ids and state of ``channel``/``bridge``/``playback``/``recording``/``peer``/``caller``, and
``digit``, ``cause``, ``soft``, ``dialstatus``, ``eventname``, ``args``) with one msgspec
decoder over a union of small structs tagged on ``type``, one per event class, generated from
the pydantic models (same fields, same required-ness, nullability and defaults). It returns an
instance of the event's own pydantic class (``StasisStart``, ``ChannelDtmfReceived``...) carrying
those fields. Every other field is validated by pydantic, once for the whole event, on first
access (see :class:`~voxflow.ari.models.AriModel`).

The structs accept a subset of what pydantic accepts, with the same types and defaults, so the
values they give are the ones pydantic would. Anything they do not take (an unknown type, a
coerced value such as ``"cause": "16"``, a missing required field, broken JSON) returns ``None``
and the caller falls back to full pydantic validation, which decides.
"""

from __future__ import annotations

import typing
from typing import Any

import msgspec
from pydantic.fields import FieldInfo

from voxflow.ari.models import (
    _KNOWN,
    LAZY_KEY,
    AriEvent,
    AriModel,
    Bridge,
    Channel,
    DtmfDigit,
    LiveRecording,
    Playback,
)

__all__ = ["decode_lazy"]


_HEAD: dict[str, Any] = {
    # field -> the msgspec type decoded on receipt (a pydantic model: its own struct below)
    "channel": Channel,
    "bridge": Bridge,
    "playback": Playback,
    "recording": LiveRecording,
    "peer": Channel,
    "caller": Channel,
    "digit": DtmfDigit,  # an impossible key fails here: full validation counts it invalid
    "cause": int,
    "soft": bool,
    "dialstatus": str,
    "eventname": str,
    "args": list[str],
}
_NESTED_HEAD: dict[type[AriModel], tuple[str, ...]] = {
    Channel: ("id", "name", "state"),
    Bridge: ("id",),
    Playback: ("id", "target_uri", "state"),
    LiveRecording: ("name", "target_uri", "state"),
}
_NEW = object.__new__
_SET = object.__setattr__
_ASDICT = msgspec.structs.asdict


def _field(info: FieldInfo, kind: Any) -> tuple[Any, ...]:
    """A msgspec field spec with the pydantic field's nullability and default."""
    nullable = type(None) in typing.get_args(info.annotation)
    annotation = kind | None if nullable else kind
    if info.is_required():
        return (annotation,)
    if info.default_factory is not None:
        return (annotation, msgspec.field(default_factory=info.default_factory))  # type: ignore[arg-type]  # ours take no data
    return (annotation, info.default)


def _nested_struct(model: type[AriModel]) -> type[msgspec.Struct]:
    fields = [(name, *_field(model.model_fields[name], str)) for name in _NESTED_HEAD[model]]
    return msgspec.defstruct(f"{model.__name__}Head", fields, kw_only=True, gc=False)


_NESTED_STRUCTS = {model: _nested_struct(model) for model in _NESTED_HEAD}


class _Builder(typing.NamedTuple):
    cls: type[AriEvent]
    name: str
    nested: tuple[tuple[str, type[AriModel]], ...]  # head fields holding a lazy model


def _event_struct(cls: type[AriEvent]) -> tuple[type[msgspec.Struct], _Builder]:
    fields, nested = [], []
    for name, kind in _HEAD.items():
        info = cls.model_fields.get(name)
        if info is None:
            continue
        if kind in _NESTED_STRUCTS:
            nested.append((name, kind))
            kind = _NESTED_STRUCTS[kind]
        fields.append((name, *_field(info, kind)))
    struct = msgspec.defstruct(
        f"{cls.__name__}Head",
        fields,
        kw_only=True,
        gc=False,
        tag_field="type",
        tag=cls.__name__,
    )
    return struct, _Builder(cls, cls.__name__, tuple(nested))


_BUILDERS: dict[type[msgspec.Struct], _Builder] = dict(_event_struct(cls) for cls in _KNOWN)
_DECODE = msgspec.json.Decoder(typing.Union[tuple(_BUILDERS)]).decode  # noqa: UP007  (a Union over a runtime tuple has no `|` spelling)


def decode_lazy(raw: str | bytes) -> AriEvent | None:
    """A lazy event for ``raw``, or None when full validation must decide (see module doc)."""
    try:
        head = _DECODE(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    cls, name, nested = _BUILDERS[type(head)]
    values: dict[str, Any] = _ASDICT(head)
    values["type"] = name
    box = [raw]
    for field, model in nested:
        struct = values[field]
        if struct is not None:
            fields = _ASDICT(struct)
            fields[LAZY_KEY] = (box, field)
            obj = _NEW(model)
            _SET(obj, "__dict__", fields)
            values[field] = obj
    values[LAZY_KEY] = (box, "")
    event: AriEvent = _NEW(cls)
    _SET(event, "__dict__", values)
    return event
