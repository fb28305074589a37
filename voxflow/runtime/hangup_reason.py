"""The ARI hang-up reason of a flow's ``hangup "reason"`` (what ``DELETE /channels/{id}`` takes)."""

from __future__ import annotations

__all__ = ["ARI_HANGUP_REASONS", "ari_hangup_reason"]

ARI_HANGUP_REASONS = frozenset(
    {
        "normal", "busy", "congestion", "no_answer", "timeout", "rejected", "unallocated",
        "normal_unspecified", "number_incomplete", "codec_mismatch", "interworking", "failure",
        "answered_elsewhere",
    }
)  # fmt: skip
"""The ``reason`` values ``DELETE /channels/{id}`` accepts (anything else is a 400)."""

_REASON_ALIASES = {"noanswer": "no_answer", "error": "failure", "failed": "failure"}


def ari_hangup_reason(reason: str) -> str:
    """The ARI hang-up reason for a flow's free-text ``hangup "reason"``: ARI's own names (any
    case, ``-`` or space for ``_``) pass through, ``error``/``failed`` map to ``failure``,
    ``noanswer`` to ``no_answer``, and every other reason (``closed``, ``exhausted``, ...) to
    ``normal``. The flow's reason itself stays in the call's outcome, trace and log."""
    key = "_".join(reason.strip().lower().replace("-", " ").split())
    key = _REASON_ALIASES.get(key, key)
    return key if key in ARI_HANGUP_REASONS else "normal"
