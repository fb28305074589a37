"""What the event loop's thread was running when the pacer's thread stamped a tick late.

``LateTicks`` wraps ``ThreadPacer._build`` (the pacer's thread, lock and GIL held, right before
it blocks to the tick's deadline and sends): when it starts more than ``late`` after the
deadline, the loop thread's current Python frames are looked at (``sys._current_frames``): the
place where it last gave up the GIL, i.e. what ran just before the pacer got it (a long C call, a
collection, a burst of callbacks). ``line()`` counts late ticks by that place: its innermost
frame, and the innermost voxflow frame under it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from types import FrameType
from typing import Any

from voxflow.media.pacer_thread import ThreadPacer

__all__ = ["LateTicks", "tick_line"]


def _where(frame: FrameType | None) -> str:
    inner = frame
    ours = None
    while frame is not None and ours is None:
        if "/voxflow/" in frame.f_code.co_filename:
            ours = frame
        frame = frame.f_back
    parts = []
    for f in (inner, ours):
        if f is not None:
            name = f.f_code.co_filename.rsplit("/", 1)[-1]
            parts.append(f"{f.f_code.co_name} ({name}:{f.f_lineno})")
    return " < ".join(dict.fromkeys(parts)) or "-"


class LateTicks:
    """Late ticks of every ThreadPacer while installed, by where the loop thread was."""

    def __init__(self, late: float = 0.001) -> None:
        self.late = late
        self.ticks = 0
        self.where: Counter[str] = Counter()
        self.lateness: list[float] = []
        self._loop_thread = threading.get_ident()
        self._orig = ThreadPacer._build
        watch = self

        def build(pacer: ThreadPacer, tick: int) -> Any:
            if pacer.schedule is not None:
                watch.ticks += 1
                behind = time.monotonic() - pacer.schedule.deadline(tick)
                if behind > watch.late:
                    watch.lateness.append(behind)
                    frame = sys._current_frames().get(watch._loop_thread)
                    watch.where[_where(frame)] += 1
            return watch._orig(pacer, tick)

        ThreadPacer._build = build  # type: ignore[method-assign,assignment]  # bench instrumentation

    def close(self) -> None:
        ThreadPacer._build = self._orig  # type: ignore[method-assign]

    def line(self, top: int = 5) -> str:
        """``12 of 900 ticks stamped over 1 ms late (the longest: 14.2, 3.1 ms); the loop thread
        was in: collect (gc_slack.py:170) x5, ...``."""
        worst = sorted(self.lateness, reverse=True)[:8]
        where = "; ".join(f"{w} x{k}" for w, k in self.where.most_common(top))
        return (
            f"{len(self.lateness)} of {self.ticks} ticks stamped over {1000 * self.late:.0f} ms "
            f"late (the longest: {', '.join(f'{1000 * w:.1f}' for w in worst) or '-'} ms); "
            f"the loop thread was in: {where or '-'}"
        )


def tick_line(sends: list[Any], start: float) -> str:
    """The pacer's ticks as the sends show them (every send time of every stream, clustered by
    gaps over 8 ms): how many ticks had their first send over 2 ms off the 20 ms grid (the whole
    tick late) and how many a send loop over 2 ms longer than the median (sends late within the
    tick), with the worst of each and when (s since ``start``)."""
    import numpy as np  # the bench's; kept out of the import-time path of the instrumentation

    t = np.sort(np.concatenate([np.asarray(s) for s in sends])) if sends else np.zeros(0)
    if len(t) < 2:
        return "no ticks"
    cut = np.nonzero(np.diff(t) > 0.008)[0] + 1
    firsts = t[np.concatenate(([0], cut))]
    lasts = t[np.concatenate((cut - 1, [len(t) - 1]))]
    k = np.round((firsts - firsts[0]) / 0.020)
    grid = firsts - k * 0.020
    late = grid - np.median(grid)  # each tick's first send against the grid's median phase
    span = lasts - firsts
    long = span - np.median(span)
    bad_late, bad_span = np.nonzero(late > 0.002)[0], np.nonzero(long > 0.002)[0]

    def worst(idx: Any, by: Any) -> str:
        if not len(idx):
            return "-"
        i = idx[np.argmax(by[idx])]
        return f"{1000 * by[i]:.1f} ms at {firsts[i] - start:.1f} s"

    return (
        f"{len(firsts)} ticks seen in the sends (send loop median {1000 * np.median(span):.1f} "
        f"ms): {len(bad_late)} started over 2 ms late (worst {worst(bad_late, late)}), "
        f"{len(bad_span)} with a send loop over 2 ms longer (worst {worst(bad_span, long)})"
    )
