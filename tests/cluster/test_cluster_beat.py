"""A worker's heartbeat is one script (voxflow/cluster/beat.py, issue 20): its registry entry,
its application-name hold, the released flows and dead workers' webhooks in one EVALSHA; a
beat Redis does not answer loses nothing (the next one writes it all again); a worker killed
between reading dead workers' webhooks and taking them leaves them to the others; the
connection it goes over is named as the worker's others (a standby's death test). Real
redis-server; the killed worker is a process of its own (``VOXFLOW_FAULT``)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import redis.asyncio as aioredis
from _cluster_kit import TINY_FLOW, post_recorder, running_redis, start_redis, until

from voxflow.cluster import ClusterState
from voxflow.compiler import compile_flow
from voxflow.ir.models import Flow
from voxflow.runtime.webhooks import WebhookSender


def _flow(name: str, number: str) -> Flow:
    text = TINY_FLOW.replace("flow tiny", f"flow {name}").replace('"100"', f'"{number}"')
    flow = compile_flow(text, f"{name}.flow").flow
    assert flow is not None
    return flow


async def _stats(state: ClusterState) -> dict[str, int]:
    """Calls per command so far (Redis counts the commands a script runs too)."""
    raw = await state.redis.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in raw.items()}


async def test_one_heartbeat_writes_entry_and_hold_and_reads_released_flows(
    tmp_path: Path,
) -> None:
    async with (
        running_redis(tmp_path) as rs,
        ClusterState(rs.url, worker_id="a", heartbeat=60, worker_ttl=30) as a,
        ClusterState(rs.url, worker_id="ops", heartbeat=60) as ops,
    ):
        await a.hold_app("voxflow")
        await ops.release(_flow("sales", "100"))
        assert list(await a.released()) == ["sales"]  # the first read (it seeds the index)
        await ops.release(_flow("billing", "300"))
        await a.redis.pexpire("voxflow:worker:a", 1000)
        await a.redis.pexpire("voxflow:app:voxflow", 1000)
        before = await _stats(a)
        await a.beat()
        after = await _stats(a)
        assert after.get("evalsha", 0) - before.get("evalsha", 0) == 1  # one script
        assert after.get("scan", 0) == before.get("scan", 0)  # no SCAN over the keyspace
        assert await a.redis.pttl("voxflow:worker:a") > 20_000  # entry and hold refreshed
        assert await a.redis.pttl("voxflow:app:voxflow") > 20_000
        assert [w.id for w in await a.workers()] == ["a", "ops"]
        await until(lambda: "billing" in a.versions._released, 10, "billing fetched")
        assert sorted(await a.released()) == ["billing", "sales"]  # released meanwhile
        assert a.errors == 0


async def test_versions_released_before_the_index_existed_are_read_and_listed(
    tmp_path: Path,
) -> None:
    flow = _flow("legacy", "200")
    async with running_redis(tmp_path) as rs:
        async with ClusterState(rs.url, worker_id="old", heartbeat=60) as old:
            h = await old.publish(flow)
            await old.redis.set("voxflow:current:legacy", h)  # as an older voxflow released it
        async with ClusterState(rs.url, worker_id="b", heartbeat=60) as b:
            assert (await b.released())["legacy"][0] == h
            assert await b.redis.hgetall("voxflow:released") == {b"legacy": h.encode()}


async def test_a_heartbeat_redis_does_not_answer_is_counted_and_the_next_restores_all(
    tmp_path: Path,
) -> None:
    rs = await start_redis(tmp_path / "r")
    rs2 = None
    try:
        async with ClusterState(
            rs.url, worker_id="a", heartbeat=60, worker_ttl=30, log_every=1e9
        ) as a:
            await a.hold_app("voxflow")
            await rs.stop()
            errors = a.errors
            await a.beat()  # refused: nothing raised, counted
            assert a.errors == errors + 1
            rs2 = await start_redis(tmp_path / "r2", port=rs.port)  # back, empty, no scripts
            await a.beat()  # EVALSHA refused as NOSCRIPT: EVAL; entry and hold written again
            assert [w.id for w in await a.workers()] == ["a"]
            assert await a.redis.get("voxflow:app:voxflow") == b"a"
            assert a.errors == errors + 1
    finally:
        await rs.stop()
        if rs2 is not None:
            await rs2.stop()


_KILLED = """\
import asyncio, sys
from voxflow.cluster import ClusterState
from voxflow.runtime.webhooks import WebhookSender

async def main() -> None:
    async with ClusterState(sys.argv[1], worker_id="k", heartbeat=0.05, outbox_every=0.05) as k:
        k.attach_webhooks(WebhookSender(sys.argv[2], "s"))
        await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_worker_killed_after_its_heartbeat_read_dead_webhooks_leaves_them_pending(
    tmp_path: Path,
) -> None:
    body = b'{"event":"call.ended","call_id":"c1","timestamp":1,"data":{}}'
    async with running_redis(tmp_path) as rs, post_recorder() as (url, got):
        a = ClusterState(rs.url, worker_id="a")
        async with a:  # a claims c1's end, its call.ended in the outbox, and stops
            assert await a.claim_end("c1", ("c1:call.ended", body))
        env = {**os.environ, "VOXFLOW_FAULT": "after_outbox_read"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _KILLED, rs.url, f"{url}/hooks", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == -9 and b"after_outbox_read" in err  # killed at the point
        async with ClusterState(rs.url, worker_id="probe") as probe:
            assert list(await probe.redis.hkeys(probe.outbox.key)) == [b"c1"]  # still pending
        assert got == []
        async with ClusterState(rs.url, worker_id="c", heartbeat=0.05, outbox_every=0.05) as c:
            sender = WebhookSender(f"{url}/hooks", "s")
            c.attach_webhooks(sender)
            await until(lambda: bool(got), 20, "c sends a's call.ended")
            await until(lambda: c.outbox.resent == 1 and not sender._tasks, 20, "delivered")
            assert await c.redis.hkeys(c.outbox.key) == []
            await sender.aclose()
        assert [(g[2], g[3]) for g in got] == [("c1:call.ended", body)]  # once


async def test_the_heartbeats_connection_is_named_as_the_workers_others(tmp_path: Path) -> None:
    async with running_redis(tmp_path) as rs, ClusterState(rs.url, worker_id="a") as a:
        await a.redis.connection_pool.disconnect()  # only the writer's connection stays open
        await a.beat()
        probe = aioredis.Redis.from_url(rs.url)
        names = [str(c.get("name", "")) for c in await probe.client_list()]
        await probe.aclose()
        assert "voxflow:conn:a" in names  # DeathWatch: the worker still has a named connection
