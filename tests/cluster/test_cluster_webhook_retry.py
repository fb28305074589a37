"""A ``call.ended`` whose worker dies while it is still retrying is not lost (issue 20): its
outbox entry stays until a delivery is acknowledged or given up, so another worker takes it
over and delivers it with the same ``Idempotency-Key``. Real redis-server, local receiver; the
sandbox and a ``voxflow run`` worker process killed with SIGKILL mid-retry."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from _cluster_kit import local_http, running_redis, until, worker_process
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from voxflow.cluster import ClusterState
from voxflow.cluster.metrics import WorkerCollector
from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.runtime.webhooks import RetryPolicy, WebhookSender, build_payload
from voxflow.sandbox.server import Sandbox
from voxflow.telephony.app import VoxtraApp


@dataclass
class Flaky:
    """``call.ended``: answers 503 while ``down``, then 204, keeping the first body per
    Idempotency-Key; other events: 204."""

    down: bool = True
    tries: list[str] = field(default_factory=list)
    processed: dict[str, bytes] = field(default_factory=dict)


@asynccontextmanager
async def _flaky() -> AsyncIterator[tuple[str, Flaky]]:
    rx = Flaky()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("X-Voxflow-Event") != "call.ended":
            return web.Response(status=204)
        key = request.headers.get("Idempotency-Key", "")
        rx.tries.append(key)
        if rx.down:
            return web.Response(status=503)
        rx.processed.setdefault(key, body)
        return web.Response(status=204)

    async with local_http("/hooks", hook) as base:
        yield f"{base}/hooks", rx


async def test_a_call_ended_still_retrying_when_its_worker_dies_is_delivered_by_another(
    tmp_path: Path,
) -> None:
    data = {"outcome": "caller_hangup", "reason": ""}
    body = build_payload(
        "call.ended", call_id="c1", flow="f", metadata={}, webhook_keys=(), data=data
    )
    async with (
        running_redis(tmp_path) as rs,
        _flaky() as (url, rx),
        ClusterState(rs.url, worker_id="b", heartbeat=0.05, outbox_every=0.05) as b,
    ):
        fast = RetryPolicy(attempts=8, initial=0.02, max_elapsed=30.0)
        b_sender = WebhookSender(url, "s", retry=fast)
        b.attach_webhooks(b_sender)
        a = ClusterState(rs.url, worker_id="a", heartbeat=0.05)
        await a.__aenter__()
        a_sender = WebhookSender(url, "s", retry=RetryPolicy(attempts=50, initial=0.05))
        a.attach_webhooks(a_sender)
        try:
            assert await a.claim_end("c1", ("c1:call.ended", body))
            a_sender.emit(
                "call.ended", call_id="c1", flow="f", metadata={}, data=data, key="c1:call.ended"
            )
            await until(lambda: len(rx.tries) >= 2, 10, "a retries")
            assert a_sender.retried >= 1 and not rx.processed
        finally:  # a dies mid-retry: its deliveries stop, it leaves registry and Redis
            await a_sender.aclose(timeout=0)
            await a.close()
        raw = await b.redis.hget(b.outbox.key, "c1")
        assert raw is not None and json.loads(raw)["worker"] in ("a", "b")  # still pending
        rx.down = False
        await until(lambda: bool(rx.processed), 15, "b delivers a's call.ended")
        await until(lambda: b_sender.sent == 1, 5, "b's delivery acknowledged")
        for _ in range(100):
            if await b.redis.hget(b.outbox.key, "c1") is None:
                break
            await asyncio.sleep(0.02)
        assert await b.redis.hget(b.outbox.key, "c1") is None
        assert set(rx.tries) == {"c1:call.ended"}  # every try, a's and b's, with one key
        assert list(rx.processed) == ["c1:call.ended"] and b.outbox.resent == 1
        await b_sender.aclose()


FLOW = """\
flow ending "ends at a key":
    answers "100"

state start:
    answer
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"
"""


async def test_a_worker_killed_while_retrying_call_ended_has_it_delivered_by_another(
    tmp_path: Path,
) -> None:
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        _flaky() as (url, rx),
        ClusterState(rs.url, worker_id="b", heartbeat=0.1, outbox_every=0.1) as b,
    ):
        sender = WebhookSender(url, "s", retry=RetryPolicy(attempts=8, initial=0.05))
        b.attach_webhooks(sender)
        flow = tmp_path / "ending.flow"
        flow.write_text(FLOW)
        config = tmp_path / "voxflow.toml"
        config.write_text('[cluster]\nfailover_ttl = 1.0\n[webhooks]\nsecret = "s"\n')
        proc = await worker_process(sb, flow, rs.url, config, url)
        try:
            await sb.wait_app("voxflow", 60)
            call = await sb.place_call(from_="+15550402", to="100")
            await call.wait_for("answered", 30)
            await call.press("1")  # the flow ends; its call.ended meets a 503, then retries
            await until(lambda: rx.tries.count(f"{call.id}:call.ended") >= 2, 30, "a retries")
            assert not rx.processed
        finally:
            proc.send_signal(signal.SIGKILL)
            async with asyncio.timeout(30):
                await proc.communicate()
        rx.down = False
        try:
            await until(lambda: bool(rx.processed), 20, "b delivers the dead worker's call.ended")
            for _ in range(200):
                if await b.redis.hget(b.outbox.key, call.id) is None:
                    break
                await asyncio.sleep(0.02)
        finally:
            await sender.aclose()
        assert await b.redis.hget(b.outbox.key, call.id) is None
        assert set(rx.tries) == {f"{call.id}:call.ended"}
        assert json.loads(rx.processed[f"{call.id}:call.ended"])["data"]["outcome"] == "completed"
        assert b.outbox.resent == 1


async def test_a_given_up_webhook_shows_in_the_workers_metrics() -> None:
    async with _flaky() as (url, rx):
        app = VoxtraApp("http://127.0.0.1:9", "u", "p", "voxflow")  # never connected
        server = FlowServer(app, FlowRegistry(), Settings(webhook_url=url, webhook_secret="s"))
        server.webhooks.retry = RetryPolicy(attempts=3, initial=0.01)
        try:
            assert not await server.webhooks.deliver("call.ended", "c9", b"{}", "c9:call.ended")
        finally:
            await server.webhooks.aclose()
            await server.http.aclose()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(server))
    text = generate_latest(registry).decode()
    assert "voxflow_webhooks_failed_total 1.0" in text
    assert "voxflow_webhooks_retried_total 2.0" in text
    assert "voxflow_webhooks_sent_total 0.0" in text
    assert rx.tries == ["c9:call.ended"] * 3
