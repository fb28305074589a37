"""``voxflow run`` on the sandbox: which flow the call goes to, from whom, and at what time.

Every mistake here is a :class:`~voxflow.errors.ConfigError` (a bad option, exit 2) or a
:class:`~voxflow.errors.FlowError` (nothing can take the call, exit 1) with a one-line message.
"""

from __future__ import annotations

import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from voxflow.errors import ConfigError, FlowError
from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry, FlowVersion, Router, runnable, takes_inbound
from voxflow.spec.dtmf import example_number

__all__ = ["DEFAULT_CALLER", "SandboxCall", "parse_call_time", "pick_call", "shifted_clock"]

DEFAULT_CALLER = "+15550100"


@dataclass(frozen=True, slots=True)
class SandboxCall:
    """The one call ``voxflow run`` places on the sandbox."""

    flow: FlowVersion
    caller: str
    to: str


def pick_call(registry: FlowRegistry, settings: Settings) -> SandboxCall:
    """The flow the sandbox call goes to, routed like a real call: the number dialled
    (``--to``, default the flow's first ``answers``) picks the flow, else ``--default-flow``."""
    flows = [fv for fv in registry.versions() if runnable(fv)]
    if not flows:
        files = ", ".join(str(fv.path) for fv in registry.versions())
        raise FlowError(f"no flow to run in {files}: empty, or only subflows (no states)")
    router = Router(registry, settings.default_flow)  # ConfigError for an unknown default
    caller = settings.caller_number or DEFAULT_CALLER
    if settings.dialed:
        fv = router.route(settings.dialed)
        if fv is None:
            raise FlowError(f"no flow takes calls to {settings.dialed} ({_numbers(flows)})")
        return SandboxCall(fv, caller, settings.dialed)
    if settings.default_flow is not None:
        fv = registry.get(settings.default_flow)
        assert fv is not None  # the Router checked it
        if not takes_inbound(fv):
            raise FlowError(
                f"flow '{fv.flow.name}' is outbound only (direction outbound): it never takes "
                "an inbound call; place an outbound call with --call ENDPOINT"
            )
        first = example_number(fv.flow.answers[0]) if fv.flow.answers else "100"
        return SandboxCall(fv, caller, first)
    for fv in flows:
        for number in map(example_number, fv.flow.answers):
            if router.route(number) is fv:
                return SandboxCall(fv, caller, number)
    fv = router.route("")
    if fv is None:
        raise FlowError(
            f"no flow takes inbound calls ({_numbers(flows)}): give --to NUMBER or "
            "--default-flow NAME (a 'direction outbound' flow never answers one)"
        )
    return SandboxCall(fv, caller, "100")


def _numbers(flows: list[FlowVersion]) -> str:
    taken = [
        f"{fv.flow.name} answers {', '.join(fv.flow.answers)}"
        for fv in flows
        if fv.flow.answers and fv.flow.direction != "outbound"
    ]
    return "; ".join(taken) or "no flow declares 'answers'"


def parse_call_time(text: str, timezone: str) -> float:
    """``--time``: an ISO date-time (``2025-01-06T18:30:00``), or ``HH:MM`` today, in the
    flow's timezone unless it names one; returns the epoch seconds."""
    value = text.strip()
    try:
        if len(value) <= 5 and ":" in value:
            hh, mm = value.split(":")
            tz = _zone(timezone)
            dt = datetime.now(tz).replace(hour=int(hh), minute=int(mm), second=0, microsecond=0)
        else:
            dt = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"--time: invalid time {text!r} (write 2025-01-06T18:30:00, or 18:30 for today)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_zone(timezone))
    return dt.timestamp()


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def shifted_clock(start: float | None) -> Callable[[], float]:
    """The wall clock, or one that reads ``start`` now and runs on from there."""
    if start is None:
        return time.time
    offset = start - time.time()

    def clock() -> float:
        return time.time() + offset

    return clock
