"""A worker's Prometheus metrics and health endpoints (``voxflow run --metrics-port``).

``GET /metrics``: Prometheus text (``prometheus-client``): ``voxflow_active_calls``,
``voxflow_calls_total{outcome}``, ``voxflow_calls_resumed_total``,
``voxflow_calls_handed_over_total``,
``voxflow_checkpoints_written_total``, ``voxflow_redis_errors_total``, ``voxflow_ready``,
``voxflow_webhooks_{sent,retried,failed}_total`` (acknowledged, tries after a failed one,
given up), ``voxflow_calls_ended_for_dead_workers_total`` (ends this worker ran for a dead
worker's call whose channel was gone);
reported as they happen (:mod:`voxflow.observe`, :class:`MetricsObserver`, installed while the
server runs): ``voxflow_step_seconds{step}`` (a flow step's operation),
``voxflow_ari_request_seconds{method,status}`` (status ``2xx``...``5xx``, ``error``: no answer),
``voxflow_provider_errors_total{kind,provider}`` (stt/tts/llm; the API's host, ``deepgram``,
``espeak-ng``), ``voxflow_rtp_{received,lost,late}_packets_total`` (counted every second while a
call runs, and at its media's end),
``voxflow_stt_decoder_wait_seconds`` (how long each offline recognition waited for a free
pocketsphinx decoder; 0 when one was free: a growing share above 0 means ``stt_decoders`` is too
small).
``GET /healthz``: liveness (200 while the process serves). ``GET /readyz``: readiness, 200
while the worker takes new calls, 503 while it drains (a load balancer stops sending calls).
The figures of the first group are read from the server when scraped (no bookkeeping on the
call path).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from voxflow import observe

if TYPE_CHECKING:
    from voxflow.cluster.state import ClusterState
    from voxflow.runtime.server import FlowServer

__all__ = ["MetricsObserver", "MetricsServer", "WorkerCollector"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class WorkerCollector(Collector):
    """Reads one worker's figures from its FlowServer (and ClusterState) at scrape time."""

    def __init__(self, server: FlowServer, cluster: ClusterState | None = None) -> None:
        self.server = server
        self.cluster = cluster

    def ready(self) -> bool:
        """True while the worker takes new calls."""
        return self.server.accepting and not (self.cluster is not None and self.cluster.draining)

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "voxflow_active_calls",
            "Calls in progress on this worker",
            value=len(self.server.drivers),
        )
        calls = CounterMetricFamily("voxflow_calls", "Calls ended, by outcome", labels=["outcome"])
        for outcome, n in sorted(self.server.results.by_outcome.items()):
            calls.add_metric([outcome], n)
        yield calls
        yield CounterMetricFamily(
            "voxflow_calls_resumed", "Calls resumed from a checkpoint", value=self.server.resumed
        )
        yield CounterMetricFamily(
            "voxflow_calls_handed_over",
            "Calls handed over to another worker while draining",
            value=self.server.handed_over,
        )
        written = self.cluster.checkpoints if self.cluster is not None else 0
        yield CounterMetricFamily(
            "voxflow_checkpoints_written", "Call checkpoints written to Redis", value=written
        )
        errors = self.cluster.errors if self.cluster is not None else 0
        yield CounterMetricFamily(
            "voxflow_redis_errors", "Redis operations skipped after their retries", value=errors
        )
        hooks = self.server.webhooks
        for name, value, text in (
            ("sent", hooks.sent, "Webhooks the receiver acknowledged (2xx)"),
            ("retried", hooks.retried, "Webhook tries after a failed one"),
            ("failed", hooks.failed, "Webhooks given up after their retries, or not sendable"),
        ):
            yield CounterMetricFamily(f"voxflow_webhooks_{name}", text, value=value)
        yield CounterMetricFamily(
            "voxflow_on_hangup_cut",
            "Calls whose on hangup body was cut at its ceiling (hangup_timeout)",
            value=self.server.results.hangup_cut,
        )
        yield CounterMetricFamily(
            "voxflow_calls_ended_for_dead_workers",
            "Ends (on hangup, call.ended) run for a dead worker's call whose channel was gone",
            value=self.server.ended_for_dead,
        )
        yield GaugeMetricFamily(
            "voxflow_ready", "1 while the worker takes new calls", value=int(self.ready())
        )


_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_WAIT_BUCKETS = (0.001, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ARI_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class MetricsObserver:
    """The :class:`voxflow.observe.Observer` that turns reports into Prometheus series."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.steps = Histogram(
            "voxflow_step_seconds", "A flow step's operation, by step kind", ["step"],
            buckets=_STEP_BUCKETS, registry=registry,
        )  # fmt: skip
        self.ari = Histogram(
            "voxflow_ari_request_seconds", "ARI REST requests, by method and status class",
            ["method", "status"], buckets=_ARI_BUCKETS, registry=registry,
        )  # fmt: skip
        self.provider_errors = Counter(
            "voxflow_provider_errors", "Speech and language provider failures",
            ["kind", "provider"], registry=registry,
        )  # fmt: skip
        self.rtp_received = Counter(
            "voxflow_rtp_received_packets", "RTP packets received", registry=registry
        )
        self.rtp_lost = Counter(
            "voxflow_rtp_lost_packets", "RTP packets lost (filled in)", registry=registry
        )
        self.rtp_late = Counter(
            "voxflow_rtp_late_packets", "RTP packets arrived after their slot", registry=registry
        )
        self.decoder_waits = Histogram(
            "voxflow_stt_decoder_wait_seconds",
            "Time an offline recognition waited for a free speech decoder (0: one was free)",
            buckets=_WAIT_BUCKETS, registry=registry,
        )  # fmt: skip

    def step(self, kind: str, seconds: float) -> None:
        self.steps.labels(kind).observe(seconds)

    def ari_request(self, method: str, seconds: float, status: int) -> None:
        self.ari.labels(method, f"{status // 100}xx" if status else "error").observe(seconds)

    def provider_error(self, kind: str, provider: str) -> None:
        self.provider_errors.labels(kind, provider).inc()

    def rtp(self, received: int, lost: int, late: int) -> None:
        self.rtp_received.inc(received)
        self.rtp_lost.inc(lost)
        self.rtp_late.inc(late)

    def decoder_wait(self, seconds: float) -> None:
        self.decoder_waits.observe(seconds)


class MetricsServer:
    """``/metrics``, ``/healthz``, ``/readyz`` on ``host:port`` (127.0.0.1 by default)."""

    def __init__(self, collector: WorkerCollector, host: str = "127.0.0.1", port: int = 0) -> None:
        self.collector = collector
        self.host = host
        self.port = port
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.observer = MetricsObserver(self.registry)
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Start listening; returns the bound port."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        observe.install(self.observer)
        return self.port

    async def close(self) -> None:
        """Stop listening (and observing)."""
        observe.uninstall(self.observer)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE}
        )

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        ready = self.collector.ready()
        self.collector.server.readiness_checked(ready)
        if ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="draining\n")
