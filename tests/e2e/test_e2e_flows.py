"""Flows driven end to end over real ARI against the embedded sandbox (DTMF, no TTS)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

from _runtime_flowkit import flow, hangup, say, state
from test_runtime_step import menu_flow

from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer

sandbox_server = pytest.importorskip("voxflow.sandbox.server")
telephony_app = pytest.importorskip("voxflow.telephony.app")


def _registry(tmp_path: Path) -> FlowRegistry:
    menu = menu_flow().model_copy(update={"name": "menu", "answers": ("100",)})
    other = flow(state("main", say("Closed."), hangup("closed")), name="closed", answers=("200",))
    for f in (menu, other):
        (tmp_path / f"{f.name}.json").write_text(f.model_dump_json())
    reg = FlowRegistry()
    reg.load(sorted(tmp_path.glob("*.json")))
    return reg


async def _serve(tmp_path: Path, n_calls: int) -> tuple[FlowServer, list[object], list[int]]:
    async with sandbox_server.Sandbox(port=0) as sb:
        app = telephony_app.VoxtraApp(sb.ari_url, sb.user, sb.password, "voxflow")
        settings = Settings(grace_period=5, trace_dir=str(tmp_path / "tr"))
        server = FlowServer(app, _registry(tmp_path), settings)
        stop = asyncio.Event()
        serving = asyncio.ensure_future(server.serve(stop))
        try:
            await sb.wait_app("voxflow", 20)
            calls = []
            for i in range(n_calls):
                to = "200" if i % 3 == 2 else "100"
                calls.append(await sb.place_call(from_=f"+1555{i:06d}", to=to, app="voxflow"))

            async def caller(i: int, c: object) -> int:
                if i % 3 == 0:
                    await asyncio.sleep(0.3)
                    await c.press("2")  # type: ignore[attr-defined]
                elif i % 3 == 1:
                    await asyncio.sleep(0.3)
                    await c.hangup()  # type: ignore[attr-defined]
                return await c.wait_hangup(timeout=90)  # type: ignore[attr-defined,no-any-return]

            causes = await asyncio.gather(*(caller(i, c) for i, c in enumerate(calls)))
            for _ in range(1200):
                if len(server.results) >= n_calls:
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await serving
        return server, calls, list(causes)


async def test_many_concurrent_calls_on_two_flows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Under load the caller's "2" can arrive while "Welcome" is still being sent: the barged-in
    # prompt is cancelled and must not leave the flow waiting for it (it once hung calls here).
    n = 300
    server, _calls, causes = await _serve(tmp_path, n)
    assert len(server.results) == n
    outcomes = sorted((r.outcome, r.reason) for r in server.results.values())
    assert outcomes.count(("completed", "normal")) == n // 3  # pressed 2 -> support -> hangup
    assert outcomes.count(("caller_hangup", "caller")) == n // 3
    assert outcomes.count(("completed", "closed")) == n // 3
    traces = list((tmp_path / "tr").glob("*.jsonl"))
    assert len(traces) == n
    text = "".join(t.read_text() for t in traces)
    assert '"state":"support"' in text and '"type":"call.ended"' in text
    # 'hangup "closed"' goes to ARI as reason normal (Q.850 16): never a 400 from ARI
    assert '"reason":"closed","ari_reason":"normal"' in text
    assert [causes[i] for i in range(2, n, 3)] == [16] * (n // 3)
    assert not [r for r in caplog.records if "hangup failed" in r.getMessage()]
