"""voxflow replay of a call the server hung up when its drain grace period ran out."""

from __future__ import annotations

import asyncio
from pathlib import Path

from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.runtime.trace import read_trace
from voxflow.sandbox.server import Sandbox
from voxflow.telephony.app import VoxtraApp
from voxflow.testing.replay import replay_trace
from voxflow.testing.scenario import Scenario

FLOW = """\
flow hold:
    answers "100"

state start:
    answer
    say "Please hold."
    pause 30s
    say "Still there?"
    hangup

on hangup:
    log "call over"
"""


async def test_a_call_hung_up_by_the_drain_grace_period_replays_the_same(tmp_path: Path) -> None:
    flow = tmp_path / "hold.flow"
    flow.write_text(FLOW)
    traces = tmp_path / "traces"
    reg = FlowRegistry()
    reg.load([flow])
    async with Sandbox(port=0) as sb:
        app = VoxtraApp(sb.ari_url, sb.user, sb.password, "voxflow")
        server = FlowServer(app, reg, Settings(grace_period=0.3, trace_dir=str(traces)))
        stop = asyncio.Event()
        serve = asyncio.ensure_future(server.serve(stop))
        try:
            await sb.wait_app("voxflow", 20)
            caller = await sb.place_call(from_="+15550002", to="100")
            await caller.wait_answered(20)
            await asyncio.sleep(0.5)  # in the pause: the call is still up when the drain starts
        finally:
            stop.set()
            await serve
    (trace,) = sorted(traces.glob("*.jsonl"))
    records = read_trace(trace)
    assert next(r for r in records if r["type"] == "hangup")["by"] == "app"
    assert records[-1]["type"] == "call.ended" and records[-1]["outcome"] == "error"

    report = replay_trace(trace, str(flow))
    assert report.same, report.render()
    assert report.result is not None and report.result.ended is not None
    assert report.result.ended[0] == "error"
    assert report.result.said == ["Please hold."]
    assert "call over" in "\n".join(t.render() for t in report.result.trace)


def test_a_scenario_can_have_the_app_hang_up() -> None:
    sc = Scenario.model_validate({"name": "x", "steps": [{"hangup": "app", "at": 2}]})
    assert sc.steps[0].kind == "hangup" and sc.steps[0].value == "app"
    assert sc.steps[0].describe().startswith("hangup by the app")
