"""What a call-routing op does with the caller, as a trace's ``route`` record.

The driver writes one ``route`` record as it starts each ``dial``, ``transfer``, ``queue``,
``http`` and recording op (:func:`route_fields`): ``op``, ``target`` (the endpoint(s), the queue,
``METHOD URL`` with the URL's credentials redacted by :func:`~voxflow.redact.url_for_log`, the
recording's name, ``(auto)`` for a name Asterisk picks), the ``state`` it happened in (and
``subflow``), and the options that change where the caller goes: a dial's ``caller_id`` and
``ring`` (a ring group), a queue's ``priority`` and ``position``. The call's id in a target is
written as ``<call id>`` so a replay (another call id) compares equal. The trace's redaction
(:class:`~voxflow.runtime.redaction.RedactingTrace`) then masks sensitive values in them.
``voxflow replay`` compares these records in order (:mod:`voxflow.testing.replay`).
"""

from __future__ import annotations

from typing import Any

from voxflow.redact import url_for_log
from voxflow.runtime import events as ev

__all__ = ["CALL_ID", "ROUTE_OPTIONS", "route_fields"]

CALL_ID = "<call id>"
"""What the call's own id is written as in a route's target."""

ROUTE_OPTIONS = ("caller_id", "ring", "priority", "position")
"""The options of a route record a replay compares, besides its op and target."""


def route_fields(cmd: ev.Op, call_id: str) -> dict[str, Any] | None:
    """The ``route`` record's fields (without state) of ``cmd``; None for an op that does not
    route the caller or reach the outside (prompts, listening, hold, timers...)."""
    out: dict[str, Any]
    if isinstance(cmd, ev.Dial):
        out = {"op": "dial", "target": ", ".join((cmd.endpoint, *cmd.others))}
        if cmd.others:
            out["ring"] = cmd.ring
        if cmd.caller_id:
            out["caller_id"] = cmd.caller_id
    elif isinstance(cmd, ev.Transfer):
        out = {"op": "transfer", "target": cmd.endpoint}
    elif isinstance(cmd, ev.Queue):
        out = {"op": "queue", "target": cmd.name}
        if cmd.priority is not None:
            out["priority"] = cmd.priority
        if cmd.position is not None:
            out["position"] = cmd.position
    elif isinstance(cmd, ev.Http):
        out = {"op": "http", "target": f"{cmd.method} {url_for_log(cmd.url)}"}
    elif isinstance(cmd, ev.RecordStart):
        out = {"op": "record", "target": cmd.name or "(auto)"}
    else:
        return None
    if call_id:
        out["target"] = str(out["target"]).replace(call_id, CALL_ID)
    return out
