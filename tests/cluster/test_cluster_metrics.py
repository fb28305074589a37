"""A worker's /metrics, /healthz and /readyz (prometheus-client text) on the sandbox."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from _cluster_kit import running_redis, until, worker

from voxflow.cluster import ClusterState, MetricsServer, WorkerCollector
from voxflow.sandbox.server import Sandbox

FLOW = """\
flow metered "a menu":
    answers "100"

state start:
    answer
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"
"""


def _value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in the metrics:\n{text}")


async def test_metrics_count_calls_and_readiness_follows_the_drain(tmp_path: Path) -> None:
    flow = tmp_path / "metered.flow"
    flow.write_text(FLOW)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="m") as state,
        worker(sb, flow, state) as server,
        aiohttp.ClientSession() as http,
    ):
        metrics = MetricsServer(WorkerCollector(server, state))
        port = await metrics.start()
        base = f"http://127.0.0.1:{port}"

        async def get(path: str) -> tuple[int, str]:
            async with http.get(base + path) as r:
                return r.status, await r.text()

        try:
            call = await sb.place_call(from_="+15550100", to="100")
            await until(lambda: len(server.drivers) == 1, 10, "call running")
            status, text = await get("/metrics")
            assert status == 200 and _value(text, "voxflow_active_calls") == 1
            assert _value(text, "voxflow_redis_errors_total") == 0
            await call.wait_for("answered", 10)
            await call.press("1")
            await call.wait_hangup(10)
            await until(lambda: not server.drivers, 10, "call ended")
            _, text = await get("/metrics")
            assert _value(text, 'voxflow_calls_total{outcome="completed"}') == 1
            assert _value(text, "voxflow_checkpoints_written_total") >= 1
            assert _value(text, "voxflow_calls_resumed_total") == 0
            for series in ("webhooks_sent", "webhooks_retried", "webhooks_failed"):
                assert _value(text, f"voxflow_{series}_total") == 0  # no webhook URL set
            assert _value(text, "voxflow_calls_ended_for_dead_workers_total") == 0
            assert _value(text, "voxflow_active_calls") == 0
            assert await get("/healthz") == (200, "ok\n")
            assert await get("/readyz") == (200, "ready\n")
            await state.leave()  # SIGTERM: the worker leaves the registry, then drains
            assert await get("/readyz") == (503, "draining\n")
            assert _value((await get("/metrics"))[1], "voxflow_ready") == 0
            assert await state.workers() == []
        finally:
            await metrics.close()
