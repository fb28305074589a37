"""Redis down mid-call (issue 20): calls in progress go on and end normally, new calls are
taken (the documented rule), skipped writes are counted; once Redis is back, calls in progress
are registered again at their next checkpoint and leave the registry when they end."""

from __future__ import annotations

import asyncio
from pathlib import Path

from _cluster_kit import start_redis, until, worker

from voxflow.cluster import ClusterState
from voxflow.sandbox.server import Sandbox

FLOW = """\
flow twomenus "two menus":
    answers "100"

state start:
    answer
    menu "Press 1." timeout 60s:
        1 -> second
        on noinput, nomatch -> second

state second:
    menu "Press 2." timeout 60s:
        2 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"
"""


async def _states(state: ClusterState) -> dict[str, str]:
    return {e.id: e.state for e in await state.call_entries()}


async def _until_states(state: ClusterState, want: dict[str, str]) -> None:
    for _ in range(500):
        if await _states(state) == want:
            return
        await asyncio.sleep(0.02)
    assert await _states(state) == want


async def test_calls_go_on_while_redis_restarts(tmp_path: Path) -> None:
    flow = tmp_path / "two.flow"
    flow.write_text(FLOW)
    rs = await start_redis(tmp_path / "r1")
    rs2 = None
    try:
        async with (
            Sandbox(port=0, preload_sounds=False) as sb,
            ClusterState(rs.url, worker_id="w", log_every=0.0) as state,
            worker(sb, flow, state) as server,
        ):
            first = await sb.place_call(from_="+15550100", to="100")
            await _until_states(state, {first.id: "start"})
            await rs.stop()  # Redis dies with a call in progress
            await first.wait_for("answered", 10)
            await first.press("1")
            second = await sb.place_call(from_="+15550101", to="100")  # a new call is taken
            await until(lambda: second.id in server.drivers, 10, "the new call runs")
            await first.press("2")
            await first.wait_hangup(10)
            await until(lambda: first.id in server.results, 10, "first call's end")
            assert server.results[first.id].outcome == "completed"
            assert state.errors > 0
            rs2 = await start_redis(tmp_path / "r2", port=rs.port)  # Redis is back, empty
            await second.wait_for("answered", 10)
            await second.press("1")  # its next checkpoint registers it again
            await _until_states(state, {second.id: "second"})
            await second.press("2")
            await second.wait_hangup(10)
            await until(lambda: second.id in server.results, 10, "second call's end")
            await _until_states(state, {})
            assert server.results[second.id].outcome == "completed"
    finally:
        await rs.stop()
        if rs2 is not None:
            await rs2.stop()
