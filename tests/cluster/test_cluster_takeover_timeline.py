"""The take-over timeline (voxflow.cluster.takeover) from the moments every layer reports
(voxflow.observe.moment), on a fake clock: points after the death was seen, per call p50/max,
reported once every adopted call's prompt started (or at the timeout), then no longer watched."""

from __future__ import annotations

import asyncio

from voxflow import observe
from voxflow.cluster.takeover import TakeoverTimeline


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_take_over_s_points_and_calls_are_timed_from_the_death() -> None:
    clock = Clock()
    timeline = TakeoverTimeline(clock, wall=lambda: 1234.5)
    timeline.start()
    observe.moment("prompt", "before")  # a moment before the death is not part of it
    for t, what, cid in [
        (0.0, "dead", ""), (0.01, "held", ""), (0.05, "connected", ""), (0.08, "listed", ""),
        (0.10, "adopted", "c1"), (0.12, "adopted", "c2"), (0.13, "checkpoint", "c1"),
        (0.14, "entered", "c1"), (0.15, "checkpoint", "c2"), (0.16, "entered", "c2"),
        (0.20, "swept", ""), (0.30, "media", "c1"), (0.31, "prompt", "c1"),
        (0.40, "prompt", "other"),  # a call that was not adopted (a new call): not counted
    ]:  # fmt: skip
        clock.now = 100.0 + 5.0 + t
        observe.moment(what, cid)
    report = asyncio.ensure_future(timeline.report(timeout=10))
    await asyncio.sleep(0)
    assert not report.done()  # c2's prompt has not started
    clock.now = 105.5
    observe.moment("prompt", "c2")
    got = await asyncio.wait_for(report, 10)
    assert got is not None and got.dead_at == 1234.5
    assert {k: round(v, 3) for k, v in got.worker.items()} == {
        "dead": 0.0, "held": 0.01, "connected": 0.05, "listed": 0.08, "swept": 0.2
    }  # fmt: skip
    assert set(got.calls) == {"c1", "c2"}
    assert round(got.calls["c2"]["prompt"], 3) == 0.5
    line = got.line()
    assert line.startswith("take-over timeline (s after the death was seen at 1234.500): ")
    assert "held 0.010, connected 0.050, listed 0.080, swept 0.200; 2 calls (p50/max): " in line
    assert "adopted 0.110/0.120" in line and "prompt 0.405/0.500" in line
    assert "media 0.300/0.300" in line  # only c1 had media (c2: a playback)
    assert observe._moments is None  # no longer watched


async def test_no_report_when_the_name_was_free_and_a_timeout_ends_the_wait() -> None:
    clock = Clock()
    timeline = TakeoverTimeline(clock)
    timeline.start()
    assert await timeline.report() is None  # no death seen: nothing was taken over
    assert observe._moments is None
    timeline = TakeoverTimeline(clock)
    timeline.start()
    for what, cid in [("dead", ""), ("listed", ""), ("adopted", "c1"), ("swept", "")]:
        observe.moment(what, cid)
    got = await timeline.report(timeout=0.05)  # c1 never prompts (it hung up): reported anyway
    assert got is not None and set(got.calls) == {"c1"} and "prompt" not in got.calls["c1"]
    assert observe._moments is None
