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

An ``http`` route also carries what was sent (:func:`request_fields`): ``headers`` (``[name,
value]`` pairs) and ``body`` (null: none), so an edited body template is a difference too. They
are written redacted, never as digests of clear values: a header or body key that looks like a
credential (:func:`~voxflow.redact.is_secret_name`: Authorization, token, api key, cookie...)
has its value ``<redacted>``, values of the call's secret-looking metadata keys (the tokens a
flow passes on) are ``<redacted>`` wherever they appear, and so is what
:func:`~voxflow.redact.redact_text` finds (``sk-...`` keys, ``password=...``). The trace then
masks sensitive variables. Headers voxflow adds itself (``Idempotency-Key``) are not recorded.

Each request an ``agent`` step's flow action sends (the model called it) is a ``route`` record
too (:func:`action_fields`): ``op`` ``action``, ``target`` ``METHOD URL`` (``(not prepared)``
when its templates failed: nothing was sent), ``action`` (its name), ``args`` (the model's
arguments), ``headers`` and ``body`` as above; its answer is an ``http`` record with ``action``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from voxflow.redact import REDACTED, is_secret_name, redact_text, url_for_log
from voxflow.runtime import events as ev
from voxflow.runtime.redaction import without_values

if TYPE_CHECKING:
    from voxflow.runtime.agent_actions import ActionRequest

__all__ = [
    "CALL_ID",
    "ROUTE_OPTIONS",
    "action_fields",
    "metadata_secrets",
    "request_fields",
    "route_fields",
    "shown_url",
]

CALL_ID = "<call id>"
"""What the call's own id is written as in a route's target."""

ROUTE_OPTIONS = ("caller_id", "ring", "priority", "position")
"""The options of a route record a replay compares, besides its op and target."""


def metadata_secrets(metadata: Mapping[str, Any]) -> list[str]:
    """The values of ``metadata``'s secret-looking keys (longest first): what a trace never
    shows of what a request sends."""
    values = {str(v) for k, v in metadata.items() if is_secret_name(str(k)) and v not in (None, "")}
    return sorted(values, key=len, reverse=True)


def shown_url(url: str, secrets: Sequence[str] = ()) -> str:
    """``url`` as a trace shows it: :func:`~voxflow.redact.url_for_log`, and ``secrets``
    (:func:`metadata_secrets`) ``<redacted>``."""
    return url_for_log(without_values(url, list(secrets)))


def _shown(value: Any, secrets: list[str], call_id: str) -> Any:
    """A JSON-like value sent in a request as a trace records it (see the module doc)."""
    if isinstance(value, str):
        text = redact_text(without_values(value, secrets))
        return text.replace(call_id, CALL_ID) if call_id else text
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if is_secret_name(str(k)) else _shown(v, secrets, call_id)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_shown(v, secrets, call_id) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool) and str(value) in secrets:
        return REDACTED
    return value


def request_fields(
    headers: Sequence[tuple[str, str]], body: Any, call_id: str, secrets: Sequence[str] = ()
) -> dict[str, Any]:
    """The ``headers`` and ``body`` of a request as its ``route`` record shows them."""
    values = list(secrets)
    shown_headers = [
        [name, REDACTED if is_secret_name(name) else _shown(value, values, call_id)]
        for name, value in headers
    ]
    return {"headers": shown_headers, "body": _shown(body, values, call_id)}


def action_fields(
    action: str,
    args: Mapping[str, Any],
    req: ActionRequest | None,
    call_id: str,
    secrets: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``route`` record's fields (without state) of an agent action's request ``req``
    (None: it could not be prepared) for the model's ``args``."""
    values = list(secrets)
    target = f"{req.method} {shown_url(req.url, values)}" if req is not None else "(not prepared)"
    if call_id:
        target = target.replace(call_id, CALL_ID)
    out: dict[str, Any] = {"op": "action", "target": target, "action": action}
    out["args"] = _shown(dict(args), values, call_id)
    if req is None:
        out.update(headers=[], body=None)
    else:
        out.update(request_fields(req.headers, req.body, call_id, values))
    return out


def route_fields(cmd: ev.Op, call_id: str, secrets: Sequence[str] = ()) -> dict[str, Any] | None:
    """The ``route`` record's fields (without state) of ``cmd``; None for an op that does not
    route the caller or reach the outside (prompts, listening, hold, timers...). ``secrets``:
    :func:`metadata_secrets` of the call."""
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
        out = {"op": "http", "target": f"{cmd.method} {shown_url(cmd.url, secrets)}"}
        out.update(request_fields(cmd.headers, cmd.body, call_id, secrets))
    elif isinstance(cmd, ev.RecordStart):
        out = {"op": "record", "target": cmd.name or "(auto)"}
    else:
        return None
    if call_id:
        out["target"] = str(out["target"]).replace(call_id, CALL_ID)
    return out
