"""Rate-limited warnings: a burst of bad input must not flood the log, nor go unseen.

:class:`RateLimitedLog` lets ``burst`` messages through per ``window`` seconds; the rest are
counted, and the next message let through says how many were suppressed since.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """At most ``burst`` records per ``window`` seconds on ``logger``; the rest are counted."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 5,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.burst = burst
        self.window = window
        self.clock = clock
        self.suppressed = 0  # since the last record let through
        self._window_start = float("-inf")
        self._in_window = 0

    def log(self, level: int, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless over the limit; True if it was logged."""
        now = self.clock()
        if now - self._window_start >= self.window:
            self._window_start, self._in_window = now, 0
        if self._in_window >= self.burst:
            self.suppressed += 1
            return False
        self._in_window += 1
        if self.suppressed:
            msg += " (%d similar messages suppressed)"
            args = (*args, self.suppressed)
            self.suppressed = 0
        self.logger.log(level, msg, *args)
        return True
