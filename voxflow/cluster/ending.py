"""What a call's end claim holder records of the end (``<prefix>ending:<call id>``, a hash with
the claim's TTL), so that a worker taking the claim over after it died finishes that end
instead of repeating it (:class:`~voxflow.runtime.checkpoint.Ending`):

* ``end``: JSON ``{"end": [outcome, reason], "at": checkpoint}``, written with the claim (in
  the writer's tick, :data:`voxflow.cluster.tick.TICK`): the call ends with that outcome there
  too (not ``caller_hangup``), its ``on hangup`` body run in the state, with the variables and
  entry number (its keys), the call had when its end started;
* ``effect:<Idempotency-Key>``: JSON of the result of an ``on hangup`` HTTP step the holder
  completed, written before its body went on: the body run again takes it instead of sending
  the request again. A result over :data:`MAX_RESULT` bytes is not recorded (that request is
  sent again, with the same key).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from voxflow.runtime.checkpoint import Checkpoint, Ending

__all__ = ["EFFECT", "MAX_RESULT", "end_json", "parse_ending", "result_json"]

log = logging.getLogger(__name__)

EFFECT = "effect:"
"""The field prefix of a completed step's result."""
MAX_RESULT = 64 * 1024
"""Bytes of JSON a recorded step result may take."""


def end_json(end: tuple[str, str] | None, at: Checkpoint | None = None) -> str:
    """The ``end`` field's value ('' when no end: nothing is written; a checkpoint JSON cannot
    hold is left out)."""
    if end is None:
        return ""
    cp = None
    if at is not None:
        try:
            cp = at.to_json()
        except (TypeError, ValueError):
            log.warning("end record: the call's state is not recorded (a value JSON lacks)")
    return f'{{"end":{json.dumps(list(end))},"at":{cp or "null"}}}'


def _end(value: str) -> tuple[tuple[str, str], Checkpoint | None]:
    got = json.loads(value)
    outcome, reason = got["end"]
    raw = got.get("at")
    at = None if raw is None else Checkpoint.from_json(json.dumps(raw))
    return (str(outcome), str(reason)), at


def result_json(result: Mapping[str, Any]) -> str | None:
    """A step result as recorded; None when JSON cannot hold it or it is over
    :data:`MAX_RESULT` bytes (the step is not recorded)."""
    try:
        text = json.dumps(dict(result), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None
    return text if len(text) <= MAX_RESULT else None


def parse_ending(raw: Mapping[bytes | str, bytes | str]) -> Ending:
    """The :class:`Ending` of a ``HGETALL`` answer (unreadable fields are skipped, logged)."""
    end: tuple[str, str] | None = None
    at: Checkpoint | None = None
    done: dict[str, Mapping[str, Any]] = {}
    for k, v in raw.items():
        field, value = _text(k), _text(v)
        try:
            if field == "end":
                end, at = _end(value)
            elif field.startswith(EFFECT):
                got = json.loads(value)
                if isinstance(got, dict):
                    done[field[len(EFFECT) :]] = MappingProxyType(got)
        except (ValueError, TypeError, KeyError):
            log.warning("end record: field %s is unreadable: skipped", field.split(":")[0])
    return Ending(end, MappingProxyType(done), at)


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
