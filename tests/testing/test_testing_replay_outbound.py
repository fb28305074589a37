"""voxflow replay of an outbound call with metadata, traced by a FlowServer on the sandbox."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.runtime.trace import read_trace
from voxflow.sandbox.server import Sandbox
from voxflow.telephony.app import VoxtraApp
from voxflow.testing.replay import replay_trace

ROOT = Path(__file__).resolve().parents[2]


async def test_outbound_trace_carries_metadata_and_replays(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows" / "shared", flows / "shared")
    flow = flows / "appointment_reminder.flow"
    shutil.copy(ROOT / "flows" / "appointment_reminder.flow", flow)
    traces = tmp_path / "traces"
    reg = FlowRegistry()
    reg.load([flow])
    meta = {"patient_name": "Ada", "appointment_time": "on Monday at 9", "api_token": "s3cr3t"}
    async with Sandbox(port=0) as sb:
        app = VoxtraApp(sb.ari_url, sb.user, sb.password, "voxflow")
        server = FlowServer(app, reg, Settings(grace_period=5, trace_dir=str(traces)))
        stop = asyncio.Event()
        serve = asyncio.ensure_future(server.serve(stop))
        try:
            await sb.wait_app("voxflow", 20)
            placed = asyncio.ensure_future(
                server.call_out("appointment_reminder", "PJSIP/ada", metadata=meta)
            )
            patient = await sb.next_outbound(timeout=20)
            await patient.wait_answered(20)
            await asyncio.sleep(0.4)
            await patient.press("1")
            end = await asyncio.wait_for(placed, 60)
        finally:
            stop.set()
            await serve
    assert (end.outcome, end.reason) == ("completed", "confirmed")
    (trace,) = sorted(traces.glob("*.jsonl"))
    text = trace.read_text()
    assert "s3cr3t" not in text
    started = read_trace(trace)[0]
    assert started["type"] == "call.started" and started["direction"] == "outbound"
    assert started["metadata"]["patient_name"] == "Ada"
    assert started["metadata"]["api_token"] == "<redacted>"

    report = replay_trace(trace, str(flow))
    assert report.same, report.render()
    assert report.result is not None
    assert report.result.said[0].startswith("Hello Ada, this is Acme Clinic")
    assert report.result.states == ["start", "confirm.ask", "confirm.yes", "confirmed_visit"]
    assert any("redacted" in n for n in report.notes)

    # without the traced metadata the replay greets "there": the difference is shown
    started_line, rest = text.split("\n", 1)
    bare = tmp_path / "bare.jsonl"
    bare.write_text(
        started_line.replace('"patient_name":"Ada"', '"patient_name":"Bo"') + "\n" + rest
    )
    diff = replay_trace(bare, str(flow))
    assert not diff.same
    assert "prompt #1: the trace has 'Hello Ada" in diff.render()
