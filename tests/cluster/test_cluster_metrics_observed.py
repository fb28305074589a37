"""The figures reported from inside a call (voxflow.observe) reach /metrics: step and ARI
request latency histograms, provider errors by provider, RTP packets received, lost and late;
after a sandbox call whose caller's RTP loses packets and whose TTS provider answers its last
sentence with HTTP 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from _cluster_kit import local_http, until
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from voxflow import observe
from voxflow.ai.openai_tts import OpenAITTS
from voxflow.cluster import MetricsServer, WorkerCollector
from voxflow.cluster.metrics import MetricsObserver
from voxflow.media.jitter import JitterStats
from voxflow.media.rtp_report import RtpReport
from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.sandbox.server import Sandbox
from voxflow.telephony.app import VoxtraApp

FLOW = """\
flow observed "a failing voice, then a menu":
    answers "100"

state start:
    answer
    say "Welcome to the service."
    menu "sound:vm-login" timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    say "fail now"
    hangup "done"
"""


def _value(text: str, series: str) -> float:
    """The value of one series line (name with its labels) in Prometheus text; 0 if absent."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


@asynccontextmanager
async def _failing_tts() -> AsyncIterator[str]:
    """An OpenAI-compatible /audio/speech: 1 s of silence, HTTP 500 for a text saying "fail";
    yields its base URL."""

    async def speech(request: web.Request) -> web.Response:
        if "fail" in (await request.json())["input"]:
            return web.json_response({"error": {"message": "overloaded"}}, status=500)
        return web.Response(body=bytes(48_000), content_type="audio/pcm")

    async with local_http("/v1/audio/speech", speech) as base:
        yield f"{base}/v1"


async def test_a_call_moves_the_step_ari_provider_and_rtp_series(tmp_path: Path) -> None:
    flow = tmp_path / "observed.flow"
    flow.write_text(FLOW)
    reg = FlowRegistry()
    reg.load([flow])
    async with (
        Sandbox(port=0, preload_sounds=False) as sb,
        _failing_tts() as tts_url,
        aiohttp.ClientSession() as http,
    ):
        sb.faults.rtp.loss = 0.2  # what the sandbox sends the worker (the caller's audio)
        tts = OpenAITTS(base_url=tts_url, api_key="k", timeout=5.0)
        app = VoxtraApp(sb.ari_url, sb.user, sb.password, "voxflow", tts=tts, event_wait=2.0)
        server = FlowServer(app, reg, Settings(grace_period=2))
        metrics = MetricsServer(WorkerCollector(server))
        port = await metrics.start()
        stop = asyncio.Event()
        task = asyncio.ensure_future(server.serve(stop))
        try:
            await sb.wait_app("voxflow", 20)
            call = await sb.place_call(from_="+15550700", to="100")
            await call.wait_for("answered", 10)
            await call.wait_for("audio", 15)  # "Welcome to the service."

            def in_menu() -> bool:
                driver = server.drivers.get(call.id)
                return driver is not None and driver.state.awaits_caller

            await until(in_menu, 15, "the menu waits for a key")
            # mid-call: the caller's RTP is counted within a second, not only at the call's end
            async with asyncio.timeout(10):
                while True:
                    async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                        mid = await r.text()
                    if _value(mid, "voxflow_rtp_lost_packets_total") > 0:
                        break
                    await asyncio.sleep(0.1)
            assert _value(mid, "voxflow_rtp_received_packets_total") > 0
            assert call.id in server.drivers and not call.ended
            await call.press("1")
            await call.wait_hangup(15)
            await until(lambda: not server.drivers, 10, "call ended")
            assert server.results[call.id].outcome == "error"  # the last sentence failed
            async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                text = await r.text()
            assert _value(text, 'voxflow_step_seconds_count{step="say"}') >= 1
            ari = "voxflow_ari_request_seconds_count"
            assert _value(text, ari + '{method="POST",status="2xx"}') >= 1
            assert _value(text, ari + '{method="GET",status="2xx"}') >= 1
            errors = 'voxflow_provider_errors_total{kind="tts",provider="127.0.0.1"}'
            assert _value(text, errors) >= 1
            received = "voxflow_rtp_received_packets_total"
            assert _value(text, received) > _value(mid, received)  # the rest, at the end
            assert _value(text, "voxflow_rtp_lost_packets_total") > 0
            assert "voxflow_rtp_late_packets_total" in text
        finally:
            stop.set()
            await task
            await metrics.close()
            await tts.aclose()
        assert observe.installed() is None  # the server's observer went with it


class _Rtp:
    """An observer keeping the RTP reports (the rest of the interface does nothing)."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, int, int]] = []

    def step(self, kind: str, seconds: float) -> None:
        pass

    def ari_request(self, method: str, seconds: float, status: int) -> None:
        pass

    def provider_error(self, kind: str, provider: str) -> None:
        pass

    def rtp(self, received: int, lost: int, late: int) -> None:
        self.reports.append((received, lost, late))

    def decoder_wait(self, seconds: float) -> None:
        pass


async def test_a_running_call_reports_its_rtp_counters_as_they_grow() -> None:
    seen = _Rtp()
    observe.install(seen)
    try:
        stats = JitterStats()
        report = RtpReport(stats, interval=0.01)
        report.start()
        stats.pushed, stats.lost = 50, 2
        await until(lambda: bool(seen.reports), 5, "the first report")
        assert seen.reports == [(50, 2, 0)]
        await asyncio.sleep(0.05)  # nothing moved: nothing reported
        assert seen.reports == [(50, 2, 0)]
        stats.pushed, stats.late = 80, 1
        await until(lambda: len(seen.reports) == 2, 5, "the second report")
        assert seen.reports[1] == (30, 0, 1)  # what grew since the last report
        stats.pushed = 85
        report.close()  # the media closed: the rest at once, then no more
        assert seen.reports[2] == (5, 0, 0)
        stats.pushed = 99
        await asyncio.sleep(0.05)
        assert len(seen.reports) == 3
    finally:
        observe.uninstall(seen)


def test_decoder_waits_are_a_histogram_on_metrics() -> None:
    registry = CollectorRegistry(auto_describe=False)
    observer = MetricsObserver(registry)
    observe.install(observer)
    try:
        observe.decoder_wait(0.0)  # a decoder was free
        observe.decoder_wait(0.3)  # the pool was exhausted for 300 ms
    finally:
        observe.uninstall(observer)
    text = generate_latest(registry).decode()
    assert _value(text, "voxflow_stt_decoder_wait_seconds_count") == 2
    assert _value(text, "voxflow_stt_decoder_wait_seconds_sum") == pytest.approx(0.3)
    assert _value(text, 'voxflow_stt_decoder_wait_seconds_bucket{le="0.001"}') == 1
    assert _value(text, 'voxflow_stt_decoder_wait_seconds_bucket{le="0.5"}') == 2
