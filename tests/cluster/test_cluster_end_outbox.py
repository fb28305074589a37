"""A call's ``call.ended`` survives its worker (issue 20): the end claim writes the webhook to
the Redis outbox (``voxflow:outbox``) in the same script; it is removed once delivered; a
worker that claimed the end and died before sending it has it sent by another worker, once,
with the same ``Idempotency-Key``. Real redis-server, sandbox and a local HTTP receiver."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from _cluster_kit import running_redis, until, worker, worker_process
from aiohttp import web

from voxflow.cluster import ClusterState
from voxflow.compiler import compile_flow
from voxflow.runtime.checkpoint import Checkpoint
from voxflow.runtime.config import Settings
from voxflow.runtime.webhooks import WebhookSender, build_payload, verify
from voxflow.sandbox.server import Sandbox

SECRET = "outbox-test-secret"
FLOW = """\
flow ending "ends once":
    answers "100"

var r: map

on hangup:
    http post "{url}/stall" into r

state start:
    answer
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"
"""


@dataclass
class Received:
    """What the receiver got: per webhook (event, Idempotency-Key, body); the /stall count."""

    hooks: list[tuple[str, str, bytes]] = field(default_factory=list)
    stalled: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def ended(self) -> list[tuple[str, str, bytes]]:
        return [h for h in self.hooks if h[0] == "call.ended"]


@asynccontextmanager
async def _receiver() -> AsyncIterator[tuple[str, Received]]:
    """``/hooks`` checks the signature and records; ``/stall`` answers only at the end."""
    got = Received()

    async def hooks(request: web.Request) -> web.Response:
        body = await request.read()
        h = request.headers
        assert verify(SECRET, body, h.get("X-Voxflow-Signature"))
        got.hooks.append((h.get("X-Voxflow-Event", ""), h.get("Idempotency-Key", ""), body))
        return web.Response(status=204)

    async def stall(request: web.Request) -> web.Response:
        got.stalled += 1
        await got.release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hooks", hooks)
    app.router.add_post("/stall", stall)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", got
    finally:
        got.release.set()
        await runner.cleanup()


async def _pending(state: ClusterState) -> dict[str, dict[str, object]]:
    raw = await state.redis.hgetall(state.outbox.key)
    return {k.decode(): json.loads(v) for k, v in raw.items()}


async def test_a_dead_workers_claimed_end_is_sent_once_by_another_worker(
    tmp_path: Path,
) -> None:
    body = build_payload(
        "call.ended",
        call_id="c1",
        flow="f",
        metadata={},
        webhook_keys=(),
        data={"outcome": "caller_hangup", "reason": ""},
    )
    async with (
        running_redis(tmp_path) as rs,
        _receiver() as (url, got),
        ClusterState(rs.url, worker_id="b", heartbeat=0.05, outbox_every=0.05) as b,
        ClusterState(rs.url, worker_id="c", heartbeat=0.05, outbox_every=0.05) as c,
    ):
        senders = [WebhookSender(f"{url}/hooks", SECRET) for _ in (b, c)]
        b.attach_webhooks(senders[0])
        c.attach_webhooks(senders[1])
        a = ClusterState(rs.url, worker_id="a")
        await a.__aenter__()
        try:  # a's webhook sender never runs: it claims the end and "dies" before sending
            assert await a.claim_end("c1", ("c1:call.ended", body))
            assert not await b.claim_end("c1", ("c1:call.ended", b"other"))
            assert (await _pending(b))["c1"]["worker"] == "a"
            looked = b.outbox.sweeps + 2
            await until(lambda: b.outbox.sweeps >= looked, 10, "b looks at the outbox")
            assert got.hooks == []  # a is alive: its webhook is its own
        finally:
            await a.close()  # gone from the registry, its liveness connection closed
        await until(lambda: bool(got.hooks), 10, "the dead worker's call.ended")
        for _ in range(100):
            if not await _pending(b):
                break
            await asyncio.sleep(0.02)
        assert await _pending(b) == {}
        looked = max(b.outbox.sweeps, c.outbox.sweeps) + 2
        await until(lambda: min(b.outbox.sweeps, c.outbox.sweeps) >= looked, 10, "more sweeps")
        assert got.hooks == [("call.ended", "c1:call.ended", body)]  # once, as a claimed it
        assert b.outbox.resent + c.outbox.resent == 1
        for s in senders:
            await s.aclose()


async def test_a_normal_end_sends_call_ended_once_and_leaves_nothing_pending(
    tmp_path: Path,
) -> None:
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b", heartbeat=0.05, outbox_every=0.05) as b,
        _receiver() as (url, got),
    ):
        got.release.set()  # the on hangup request answers at once
        flow = tmp_path / "ending.flow"
        flow.write_text(FLOW.replace("{url}", url))
        settings = Settings(grace_period=2, webhook_url=f"{url}/hooks", webhook_secret=SECRET)
        async with worker(sb, flow, b, settings=settings) as server:
            call = await sb.place_call(from_="+15550400", to="100")
            await until(lambda: bool(server.drivers), 15, "the call runs")
            await call.hangup()
            await until(lambda: not server.drivers, 15, "the call is over")
            await server.webhooks.flush(5)
            await server.http.aclose()
        [(_, key, body)] = got.ended()
        assert key == f"{call.id}:call.ended"
        assert json.loads(body)["data"]["outcome"] == "caller_hangup"
        assert await _pending(b) == {}
        assert b.outbox.resent == 0


async def test_a_worker_killed_after_claiming_the_end_has_call_ended_sent_by_another(
    tmp_path: Path,
) -> None:
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b", heartbeat=0.1, outbox_every=0.1) as b,
        _receiver() as (url, got),
    ):
        sender = WebhookSender(f"{url}/hooks", SECRET)
        b.attach_webhooks(sender)
        flow = tmp_path / "ending.flow"
        flow.write_text(FLOW.replace("{url}", url))
        config = tmp_path / "voxflow.toml"
        config.write_text(f'[cluster]\nfailover_ttl = 1.0\n[webhooks]\nsecret = "{SECRET}"\n')
        proc = await worker_process(sb, flow, rs.url, config, f"{url}/hooks")
        try:
            await sb.wait_app("voxflow", 60)
            call = await sb.place_call(from_="+15550401", to="100")
            await call.wait_for("answered", 30)  # A runs the flow (its first step answers)
            for _ in range(1000):
                if await b.call_entries():
                    break
                await asyncio.sleep(0.02)
            assert await b.call_entries(), "A never registered the call"
            await call.hangup()  # A claims the end, then waits in its on hangup request
            await until(lambda: got.stalled == 1, 30, "A runs its on hangup body")
            entry = (await _pending(b))[call.id]  # its call.started may linger there too
            assert entry["worker"] != "b" and entry["key"] == f"{call.id}:call.ended"
        finally:
            proc.send_signal(signal.SIGKILL)  # A never sends its call.ended
            await proc.wait()
        await until(lambda: bool(got.ended()), 15, "B sends A's call.ended")
        for _ in range(100):
            if not await _pending(b):
                break
            await asyncio.sleep(0.02)
        assert await _pending(b) == {}
        [(_, key, body)] = got.ended()
        assert key == f"{call.id}:call.ended"
        assert json.loads(body)["data"]["outcome"] == "caller_hangup"
        await sender.aclose()


async def test_the_claimed_entry_is_rewritten_only_when_the_final_body_changed(
    tmp_path: Path,
) -> None:
    def body(ts: float, meta: dict[str, object]) -> bytes:
        return build_payload(
            "call.ended",
            call_id="c1",
            flow="f",
            metadata=meta,
            webhook_keys=tuple(meta),
            data={"outcome": "completed", "reason": ""},
            timestamp=ts,
        )

    async with running_redis(tmp_path) as rs:
        a = ClusterState(rs.url, worker_id="a")
        try:
            for cid in ("c1", "c2"):
                assert await a.claim_end(cid, (f"{cid}:call.ended", body(1.0, {})))
            claimed = await _pending(a)
            await a.outbox.hold("c1", "c1:call.ended", body(2.0, {}))  # only its time changed
            await a.outbox.hold("c2", "c2:call.ended", body(2.0, {"k": "v"}))  # on hangup set k
            now = await _pending(a)
            assert now["c1"] == claimed["c1"]  # not rewritten: one round trip fewer
            assert now["c2"] != claimed["c2"]
            assert json.loads(str(now["c2"]["body"]))["metadata"] == {"k": "v"}
            assert a.outbox.claimed == {}
        finally:
            await a.redis.aclose()


async def test_delivered_webhooks_leave_the_outbox_with_the_writers_tick_only_if_ours(
    tmp_path: Path,
) -> None:
    async with running_redis(tmp_path) as rs:
        a = ClusterState(rs.url, worker_id="a")
        b = ClusterState(rs.url, worker_id="b")
        try:
            assert await a.claim_end("c1", ("c1:call.ended", b'{"n":1}'))
            assert await b.claim_end("c2", ("c2:call.ended", b'{"n":2}'))
            flow = compile_flow(FLOW, "t.flow").flow
            assert flow is not None
            await a.begin("c3", flow, "h")
            a.save("c3", Checkpoint("h", "start", {}))
            await a.flush()  # the writer's script loaded (a first EVALSHA fails, loads, retries)
            a.save("c3", Checkpoint("h", "menu", {}))
            stats = await a.redis.info("commandstats")
            before = int(stats["cmdstat_evalsha"]["calls"])
            await asyncio.gather(a.outbox.done("c1"), a.outbox.done("c2"), a.flush())
            stats = await a.redis.info("commandstats")
            assert int(stats["cmdstat_evalsha"]["calls"]) - before <= 2  # batched
            assert set(await _pending(a)) == {"c2"}  # b's stays: only b removes it
            got = await a.checkpoint("c3")
            assert got is not None and got.state == "menu"
        finally:
            await a.redis.aclose()
            await b.redis.aclose()
