"""Where a take-over's time goes: the timeline of a standby taking a dead worker's calls over.

A standby worker (classic mode) watches :func:`voxflow.observe.moment` while it waits for the
application name and for a while after it took it: the dead worker seen gone (``dead``), the
name held (``held``), the events websocket up (``connected``), Asterisk's channels and bridges
listed (``listed``), every orphan adopted (``swept``); and for each call it adopts:
``adopted``, its ``checkpoint`` read, its state re-entered (``entered``), its media up
(``media``, audio only) and its prompt started (``prompt``: the first frame queued for the next
20 ms tick, or the playback requested). :meth:`TakeoverTimeline.report` logs one line with
each point's time after the death was seen (the calls' p50 and max), and the wall-clock time
of that moment, so that ``bench/cluster.py failover`` can add the time from the kill to it.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from voxflow import observe
from voxflow.cluster.state import ClusterState, node_app
from voxflow.telephony.app import VoxtraApp

__all__ = ["CALL_POINTS", "TakeoverTimeline", "Timeline", "take_node"]

log = logging.getLogger(__name__)
CALL_POINTS = ("adopted", "checkpoint", "entered", "media", "prompt")
"""A resumed call's points, in the order they are reached."""
_WORKER_POINTS = ("held", "connected", "listed", "swept")


@dataclass
class Timeline:
    """One take-over's points, in seconds after the death was seen."""

    dead_at: float
    """Wall-clock time (``time.time()``) the dead worker was seen gone."""
    worker: dict[str, float] = field(default_factory=dict)
    calls: dict[str, dict[str, float]] = field(default_factory=dict)

    def line(self) -> str:
        """The log line (``bench/cluster.py`` reads it back)."""
        parts = [f"{p} {self.worker[p]:.3f}" for p in _WORKER_POINTS if p in self.worker]
        per_call = []
        for point in CALL_POINTS:
            got = sorted(c[point] for c in self.calls.values() if point in c)
            if got:
                per_call.append(f"{point} {statistics.median(got):.3f}/{got[-1]:.3f}")
        return (
            f"take-over timeline (s after the death was seen at {self.dead_at:.3f}): "
            f"{', '.join(parts)}; {len(self.calls)} calls (p50/max): {', '.join(per_call)}"
        )


class TakeoverTimeline:
    """Records the moments of one take-over (``start`` before waiting for the app name)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.wall = wall
        self._points: list[tuple[float, str, str]] = []
        self._dead: tuple[float, float] | None = None  # (clock, wall) when seen gone
        self._changed = asyncio.Event()

    def start(self) -> None:
        """Watch the moments (replaces any other watcher)."""
        observe.watch_moments(self._record)

    def stop(self) -> None:
        """Stop watching (if still the watcher)."""
        observe.watch_moments(None)

    def _record(self, what: str, call_id: str) -> None:
        now = self.clock()
        if what == "dead":
            self._dead = (now, self.wall())
            self._points.clear()  # a take that failed (another standby won) starts over
        self._points.append((now, what, call_id))
        self._changed.set()

    def timeline(self) -> Timeline | None:
        """The points so far (None: no death seen: the name was free)."""
        if self._dead is None:
            return None
        t0, wall = self._dead
        out = Timeline(wall)
        for t, what, cid in self._points:
            if not cid:
                out.worker.setdefault(what, t - t0)
            elif what == "adopted" or cid in out.calls:
                out.calls.setdefault(cid, {}).setdefault(what, t - t0)
        return out

    def _complete(self) -> bool:
        got = self.timeline()
        if got is None or "swept" not in got.worker:
            return False
        return all("prompt" in c for c in got.calls.values())

    async def report(self, timeout: float = 15.0) -> Timeline | None:
        """Once every adopted call's prompt started (at most ``timeout`` s): log the timeline,
        stop watching, return it (None when nothing was taken over)."""
        try:
            if self._dead is None:
                return None
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not self._complete() and loop.time() < deadline:
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), deadline - loop.time())
                except TimeoutError:
                    break
            got = self.timeline()
            if got is not None:
                log.warning("%s", got.line())
            return got
        finally:
            self.stop()


async def take_node(
    cluster: ClusterState, app: VoxtraApp, nodes: Sequence[str]
) -> tuple[str, asyncio.Task[Timeline | None] | None]:
    """Classic mode: hold ``app``'s application name on one of ``nodes`` (ARI URLs), waiting
    as a standby while live workers hold them all, and point ``app`` at that node. Returns its
    URL and, after a take-over, the task that logs the take-over's timeline."""
    names = {node_app(url, app.app_name): url for url in nodes}
    await cluster.released()  # the routes known before the calls come (refreshed from then on)
    timeline = TakeoverTimeline()
    timeline.start()
    try:
        held = await cluster.hold_any_app(list(names))
        await app.use_node(names[held])
    except BaseException:
        timeline.stop()
        raise
    if cluster.took_over_from is None:
        timeline.stop()
        return names[held], None
    return names[held], asyncio.ensure_future(timeline.report())
