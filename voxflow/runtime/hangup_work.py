"""The ceiling of a call's ``on hangup`` body (``hangup_timeout``), and how a cut is reported.

The body runs after the call ended, step by step, each ``http`` step bounded by its own timeout
and retries. The ceiling bounds the whole body on a worker (a CRM that hangs, a shutdown): the
driver cuts a body still running ``hangup_timeout`` seconds after it started, from the moment
it started, on a real call and in ``voxflow test`` alike. A cut is never silent: the call's
:class:`~voxflow.runtime.events.End` carries it (``on_hangup_cut``), the trace has an
``on_hangup.cut`` record and its ``call.ended`` record and webhook an ``on_hangup`` field.
"""

from __future__ import annotations

import math
from typing import Any, Literal

__all__ = [
    "DEFAULT_HANGUP_TIMEOUT",
    "MAX_HANGUP_TIMEOUT",
    "CutBy",
    "check_hangup_timeout",
    "cut_fields",
    "cut_message",
]

DEFAULT_HANGUP_TIMEOUT = 60.0
"""Seconds an ``on hangup`` body may run after the call ended (``[run] hangup_timeout``,
``--hangup-timeout``): six times the default ``http_timeout`` (10 s)."""
MAX_HANGUP_TIMEOUT = 3600.0


def check_hangup_timeout(value: Any, origin: str) -> float:
    """``value`` as a ceiling in seconds; ValueError with ``origin`` unless it is a number above
    0 and at most :data:`MAX_HANGUP_TIMEOUT`."""
    if isinstance(value, bool):
        raise ValueError(f"{origin}: expected a number of seconds, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{origin}: expected a number of seconds, got {value!r}") from None
    if not math.isfinite(v) or not 0 < v <= MAX_HANGUP_TIMEOUT:
        raise ValueError(
            f"{origin}: must be above 0 and at most {MAX_HANGUP_TIMEOUT:g} seconds, got {value!r}"
        )
    return v


CutBy = Literal["hangup_timeout", "cancelled"]
"""What cut a body: its ceiling, or the cancellation of the call's handler (the app closing,
or its ``ended_handler_grace`` over)."""


def cut_fields(after: float, pending: int, by: CutBy) -> dict[str, Any]:
    """The ``on_hangup`` field of a cut call's ``call.ended`` (trace record and webhook data):
    the body was stopped ``after`` s from its start, by ``by``, with ``pending`` requests in
    flight (each may or may not have reached its server) and its later steps not run."""
    return {"status": "cut", "after": after, "by": by, "pending_requests": pending}


def cut_message(after: float, pending: int, by: CutBy) -> str:
    """The log line and transcript text of a cut."""
    what = f"{pending} request(s) in flight cancelled (sent, maybe received), " if pending else ""
    return f"its on hangup body was cut after {after:g} s ({by}): {what}its later steps did not run"
