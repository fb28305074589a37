"""A standby takes a killed worker's application name over well under the worker TTL: the dead
process's named Redis connection (voxflow.cluster.liveness) closes with it. A live holder, or a
holder of an older version (no liveness connection), keeps the name until its TTL.
On a real redis-server; the killed worker is a process (``kill -9``)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import forked
from _cluster_kit import MENU_FLOW, running_redis, until, worker

from voxflow.cluster import ClusterState, node_app
from voxflow.sandbox.server import Sandbox

HOLDER = """
import asyncio, sys
from voxflow.cluster import ClusterState

async def main():
    async with ClusterState(sys.argv[1], worker_id="a", heartbeat=1.0, worker_ttl=10.0) as a:
        await a.hold_app("voxflow")
        print("held", flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_a_killed_holder_s_name_is_taken_within_a_second_of_a_10_s_ttl(
    tmp_path: Path,
) -> None:
    async with running_redis(tmp_path) as rs, ClusterState(rs.url, worker_id="b") as b:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", HOLDER, rs.url, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert proc.stdout is not None
            assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"held\n"
            standby = asyncio.ensure_future(b.hold_app("voxflow"))
            await asyncio.sleep(1.0)  # the holder lives: its name stays
            assert not standby.done()
            [entry] = [w for w in await b.workers() if w.id == "a"]
            assert entry.live
        finally:
            proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            await proc.wait()
        await asyncio.wait_for(standby, 10)
        took = time.monotonic() - killed
        assert took < 3.0, took  # the TTL is 10 s (>= 9 s of it left at the kill); ~0.2 s typically
        assert b.app == "voxflow" and await b.redis.get("voxflow:app:voxflow") == b"b"


async def test_a_holder_without_a_liveness_connection_keeps_the_name_until_its_ttl(
    tmp_path: Path,
) -> None:
    async with running_redis(tmp_path) as rs, ClusterState(rs.url, worker_id="b") as b:
        old = {"id": "old", "calls": 0, "started": 0.0, "heartbeat": 0.0}  # an older version
        await b.redis.set("voxflow:worker:old", json.dumps(old), px=10_000)
        await b.redis.set("voxflow:app:voxflow", "old", px=1_500)
        standby = asyncio.ensure_future(b.hold_app("voxflow"))
        await asyncio.sleep(0.8)  # no named connection, but no "live" either: the TTL counts
        assert not standby.done()
        await asyncio.wait_for(standby, 10)  # the hold expired
        assert b.app == "voxflow"


async def test_a_classic_call_resumes_on_the_standby_well_under_the_ttl(tmp_path: Path) -> None:
    flow = tmp_path / "fast.flow"
    flow.write_text(MENU_FLOW)
    config = tmp_path / "voxflow.toml"
    config.write_text("[cluster]\nfailover_ttl = 10.0\n")
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b", heartbeat=10 / 3, worker_ttl=10.0) as b,
    ):
        env = {**os.environ, "VOXFLOW_ARI_PASSWORD": sb.password}
        proc = await forked.spawn(
            "run", str(flow),
            "--ari-url", sb.ari_url, "--ari-user", sb.user, "--redis", rs.url, "--no-audio",
            "--config", str(config), env=env,
            stdout=forked.DEVNULL, stderr=forked.DEVNULL,
        )  # fmt: skip
        try:
            await sb.wait_app("voxflow", 60)
            call = await sb.place_call(from_="+15550600", to="100")
            for _ in range(1500):
                cp = await b.checkpoint(call.id)
                if cp is not None and cp.state == "menu":
                    break
                await asyncio.sleep(0.02)
            standby = asyncio.ensure_future(b.hold_app(node_app(sb.ari_url, "voxflow")))
        finally:
            proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            await proc.wait()
        await asyncio.wait_for(standby, 10)
        async with worker(sb, flow, b) as server:
            await until(lambda: call.id in server.drivers, 10, "adopted")
            await until(lambda: server.drivers[call.id].state.state_name == "menu", 10, "menu")
            took = time.monotonic() - killed
            assert took < 5.0, took  # failover_ttl is 10 s (>= 6.7 s of the hold left at the kill)
            await call.press("1")
            await call.wait_hangup(15)
            await until(lambda: call.id in server.results, 10, "the call's end on B")
            assert server.results[call.id].outcome == "completed" and server.resumed == 1
        assert await b.call_entries() == []


async def test_a_live_holder_whose_hold_expired_keeps_its_name_a_stalled_one_loses_it(
    tmp_path: Path,
) -> None:
    """The holder's refreshes failed for a TTL (a loaded host: tests/cluster/test_cluster_load.py
    lost a live worker's events socket to its standby this way) but its liveness connection is
    open and keeps issuing its blocking reads: the standby leaves it the name (however long);
    the holder's next heartbeat takes it back. A holder whose connection stays open but issues
    nothing (a stalled process) loses it a TTL after it expired."""
    async with running_redis(tmp_path) as rs:
        a = ClusterState(rs.url, worker_id="a", heartbeat=60, worker_ttl=30.0)
        a.liveness.every = 0.2  # its liveness reads go on; its heartbeats are the test's
        async with a, ClusterState(rs.url, worker_id="b", heartbeat=60, worker_ttl=1.0) as b:
            await _live_then_stalled(a, b)


async def _live_then_stalled(a: ClusterState, b: ClusterState) -> None:
    """The test above, once a holds the name and b stands by for it."""
    await a.hold_app("voxflow")
    for _ in range(250):  # a's liveness connection is open
        if "a" in await b.deaths.connected():
            break
        await asyncio.sleep(0.02)
    standby = asyncio.ensure_future(b.hold_app("voxflow", poll=0.02))
    await asyncio.sleep(0.2)  # b has seen a holding it
    await a.redis.delete("voxflow:app:voxflow")  # expired: a's refreshes did not get through
    await asyncio.sleep(2.5)  # past b's TTL (1 s), twice over
    assert not standby.done()  # a runs: its name waits for it
    await a.beat()  # a's heartbeat gets through again: it takes its name back
    assert await a.redis.get("voxflow:app:voxflow") == b"a"
    # b's grace starts again at the next expiry (a private detail, waited for so that a
    # starved poll loop cannot make the checks below pass or fail by luck)
    await until(lambda: not b.holds._free_since, 10, "b saw a holding its name again")
    a.liveness.every = 30  # a stalls: its connection stays open, idle
    await asyncio.sleep(2.5)  # idle past two of b's TTLs
    assert not standby.done()
    stalled = time.monotonic()
    await a.redis.delete("voxflow:app:voxflow")  # its hold expires
    await asyncio.wait_for(standby, 10)
    assert time.monotonic() - stalled >= 0.9  # one TTL of grace, then b takes it
    assert await b.redis.get("voxflow:app:voxflow") == b"b"
