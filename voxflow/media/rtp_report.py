"""A call's RTP figures reported while the call runs, not only at its end.

:class:`RtpReport` reads a call's :class:`~voxflow.media.jitter.JitterStats` every
``interval`` seconds (a loop timer, no task) and reports what the jitter buffer counted since
its last report (:func:`voxflow.observe.rtp`: packets received, lost, late); :meth:`close`
reports the rest when the call's media closes. A scrape of ``/metrics`` mid-call sees the
call's packets up to the last second.
"""

from __future__ import annotations

import asyncio

from voxflow import observe
from voxflow.media.jitter import JitterStats

__all__ = ["RTP_REPORT_INTERVAL", "RtpReport"]

RTP_REPORT_INTERVAL = 1.0  # seconds between two reports of a running call


class RtpReport:
    """Reports one call's jitter-buffer counters to :mod:`voxflow.observe` as they grow."""

    def __init__(self, stats: JitterStats, interval: float = RTP_REPORT_INTERVAL) -> None:
        self.stats = stats
        self.interval = interval
        self._sent = (0, 0, 0)
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def start(self) -> None:
        """Report every ``interval`` seconds from now on (idempotent; none once closed)."""
        if self._timer is None and not self._closed:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.report()
        self.start()

    def report(self) -> None:
        """Report what was counted since the last report (nothing when nothing moved)."""
        now = (self.stats.pushed, self.stats.lost, self.stats.late)
        received, lost, late = (a - b for a, b in zip(now, self._sent, strict=True))
        if received or lost or late:
            self._sent = now
            observe.rtp(received, lost, late)

    def close(self) -> None:
        """The call's media closed: stop the timer and report the rest (idempotent)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.report()
