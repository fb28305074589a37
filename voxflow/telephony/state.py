"""Call state, direction and the per-call metadata dict."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

__all__ = ["CallDirection", "CallMetadata", "CallState", "failure_reason"]


class CallState(enum.StrEnum):
    """Where a call is in its life."""

    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        """True for the terminal states."""
        return self in (CallState.COMPLETED, CallState.FAILED)


class CallDirection(enum.StrEnum):
    """Who placed the call."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class CallMetadata(dict[str, Any]):
    """A plain dict for per-call context. Keys set through :meth:`update_for_webhook` are marked
    for inclusion in webhook payloads and AI tool calls; read them with :meth:`for_webhook`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._webhook_keys: set[str] = set()

    def update_for_webhook(self, data: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """Set values (like ``dict.update``) and mark their keys as shared with webhooks/tools."""
        items = {**(dict(data) if data else {}), **kwargs}
        self.update(items)
        self._webhook_keys.update(items)

    @property
    def webhook_keys(self) -> frozenset[str]:
        """The keys marked for webhooks (present or not)."""
        return frozenset(self._webhook_keys)

    def for_webhook(self) -> dict[str, Any]:
        """The marked keys that are still present, with their current values."""
        return {k: self[k] for k in sorted(self._webhook_keys) if k in self}


_DIAL_REASONS = {
    "BUSY": "busy",
    "NOANSWER": "no answer",
    "CONGESTION": "congestion",
    "CHANUNAVAIL": "unavailable",
    "CANCEL": "cancelled",
    "DONTCALL": "rejected",
    "TORTURE": "rejected",
    "INVALIDARGS": "invalid number",
}
_CAUSE_REASONS = {
    1: "invalid number",
    3: "invalid number",
    17: "busy",
    18: "no answer",
    19: "no answer",
    20: "unavailable",
    21: "rejected",
    27: "unavailable",
    28: "invalid number",
    34: "congestion",
    38: "congestion",
    41: "congestion",
    42: "congestion",
    44: "congestion",
}


def failure_reason(dialstatus: str | None, cause: int | None) -> str:
    """Why an outbound call was not answered, from the Dial status or else the Q.850 cause."""
    if dialstatus and dialstatus in _DIAL_REASONS:
        return _DIAL_REASONS[dialstatus]
    if cause is not None and cause in _CAUSE_REASONS:
        return _CAUSE_REASONS[cause]
    return "no answer" if cause in (None, 0, 16) else f"failed (cause {cause})"
