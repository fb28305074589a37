"""When a failed webhook delivery is tried again: :class:`RetryPolicy` and :class:`Attempt`.

A delivery is retried only when the failure may pass: no connection, no answer within the
timeout, a 5xx, ``408 Request Timeout`` or ``429 Too Many Requests``. Any other answer (a 4xx,
a redirect voxflow does not follow) is final. Waits grow exponentially with jitter (``initial``
x ``factor``^(n-1), at most ``max_delay``, times a random factor in [0.5, 1)); a ``Retry-After``
header (seconds or an HTTP date) on a 429 or 503 replaces the computed wait. The whole delivery
is bounded: at most ``attempts`` tries, and no wait that would end after ``max_elapsed``
seconds from the first try (a ``Retry-After`` past it ends the delivery at once), and no more
than ``max_waiting`` deliveries of a sender waiting for a retry at once. Every retry
carries the same body and ``Idempotency-Key``: receivers drop repeats by the key.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Attempt", "RetryPolicy", "retry_after"]

RETRYABLE_STATUS = frozenset({408, 429})
"""4xx answers worth another try (with every 5xx)."""
_HONOURS_RETRY_AFTER = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one POST went: ``status`` (0: no answer), ``why`` (a log-safe description: never
    the URL, the body or a header), ``retry_after`` (seconds the receiver asked for)."""

    status: int
    why: str
    retry_after: float | None = None
    connection: bool = False
    """No answer at all (connection refused or lost, timed out)."""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """A failure that may pass: no answer, a 5xx, 408 or 429."""
        return self.connection or self.status >= 500 or self.status in RETRYABLE_STATUS


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long a webhook delivery keeps trying (defaults: 5 tries within 60 s: waits of about
    1, 2, 4, 8 s; ``attempts=1`` tries once)."""

    attempts: int = 5
    initial: float = 1.0
    factor: float = 2.0
    max_delay: float = 15.0
    max_elapsed: float = 60.0
    max_waiting: int = 1000
    """Deliveries of one sender waiting for their next try at once, at most (a receiver down
    under load must not pile up tasks): past it a failed try is final."""

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial < 0 or self.factor < 1 or self.max_elapsed < 0:
            raise ValueError(f"invalid webhook retry policy: {self}")

    def wait(
        self, tried: int, attempt: Attempt, elapsed: float, rand: Callable[[], float]
    ) -> float | None:
        """Seconds to wait before try ``tried + 1`` after ``attempt`` failed, ``elapsed`` s
        after the first try; None: give up (final answer, tries or time used up)."""
        if not attempt.retryable or tried >= self.attempts:
            return None
        if attempt.retry_after is not None:
            delay = attempt.retry_after
        else:
            base = min(self.max_delay, self.initial * self.factor ** (tried - 1))
            delay = base * (0.5 + 0.5 * rand())
        if elapsed + delay > self.max_elapsed:
            return None
        return delay


def retry_after(
    status: int, header: str | None, now: Callable[[], float] = time.time
) -> float | None:
    """The wait a 429 or 503 answer asks for in its ``Retry-After`` header (delta seconds or an
    HTTP date; 0 for a date in the past); None when absent, unreadable, or another status."""
    if status not in _HONOURS_RETRY_AFTER or not header:
        return None
    text = header.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    seconds = when.timestamp() - now()
    return max(0.0, seconds) if math.isfinite(seconds) else None
