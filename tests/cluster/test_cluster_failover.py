"""Mid-call failover in the classic mode (issue 20): a worker killed with SIGKILL while a call
waits in a menu past the first state; another worker with the same app name adopts the call
and resumes it at that menu, with its variables and on the flow version it started on (the new
worker's file is a newer version: new calls take the cluster's current version until that one
is released), on the sandbox and a real redis-server."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

from _cluster_kit import (
    MENU_FLOW,
    by_key,
    played,
    running_redis,
    until,
    webhook_receiver,
    worker,
    worker_process,
)

from voxflow.cluster import ClusterState, node_app
from voxflow.runtime.config import Settings
from voxflow.sandbox.server import Sandbox


def _config(tmp: Path) -> Path:
    """Worker A's settings: its hold on the app name expires 1 s after the kill."""
    config = tmp / "voxflow.toml"
    config.write_text("[cluster]\nfailover_ttl = 1.0\n")
    return config


async def test_a_call_resumes_at_its_menu_on_another_worker_after_kill_9(tmp_path: Path) -> None:
    flow = tmp_path / "failover.flow"
    flow.write_text(MENU_FLOW)
    (tmp_path / "v2").mkdir()
    flow_v2 = tmp_path / "v2" / "failover.flow"  # what worker B serves: a newer version
    flow_v2.write_text(MENU_FLOW.replace("sound:vm-login", "sound:vm-password"))
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b") as b,
    ):
        proc = await worker_process(sb, flow, rs.url, _config(tmp_path))
        try:
            await sb.wait_app("voxflow", 60)
            call = await sb.place_call(from_="+15550100", to="100")
            await until(lambda: "sound:vm-login" in played(sb, call.id), 30, "A plays the menu")
            cp = None
            for _ in range(500):
                cp = await b.checkpoint(call.id)
                if cp is not None and cp.state == "menu":
                    break
                await asyncio.sleep(0.02)
            assert cp is not None and cp.state == "menu" and cp.variables == {"picked": "early"}
            [entry] = await b.call_entries()
            assert entry.worker != "b" and entry.state == "menu"
            held = node_app(sb.ari_url, "voxflow")
            standby = asyncio.ensure_future(b.hold_app(held))  # B stands by while A serves
            await asyncio.sleep(0.3)
            assert not standby.done()
        finally:
            proc.send_signal(signal.SIGKILL)  # kill -9: no hang-up, the channel stays in Stasis
            await proc.wait()
        assert call.hangup_cause is None
        await asyncio.wait_for(standby, 10)  # A's hold on the app name expired: B takes over
        async with worker(sb, flow_v2, b) as server:
            await until(lambda: played(sb, call.id).count("sound:vm-login") == 2, 15, "resumed")
            [entry] = await b.call_entries()
            assert entry.worker == "b" and entry.state == "menu"  # the call moved to B
            await call.press("1")
            await call.wait_hangup(15)
            await until(lambda: call.id in server.results, 10, "the call's end on B")
            assert server.results[call.id].outcome == "completed"
            # a new call takes the cluster's current version (A's), not B's local file: a
            # version reaches the cluster when released (voxflow cluster publish, --watch)
            new = await sb.place_call(from_="+15550101", to="100")
            await until(lambda: "sound:vm-login" in played(sb, new.id), 15, "current menu")
            await new.press("1")
            await new.wait_hangup(15)
            await b.release(server.registry.versions()[0].flow)  # B's version released
            new = await sb.place_call(from_="+15550102", to="100")
            await until(lambda: "sound:vm-password" in played(sb, new.id), 15, "v2 menu")
            await new.press("1")
            await new.wait_hangup(15)
        # nothing before the menu repeated; the variable set in the first state survived
        assert played(sb, call.id) == [  # version 1 to its end
            "sound:hello-world", "sound:vm-login", "sound:vm-login", "sound:goodbye",
        ]  # fmt: skip
        assert await b.call_entries() == [] and await b.checkpoint(call.id) is None
        assert b.errors == 0
        assert not sb.pbx.channels and not sb.pbx.bridges


async def test_every_call_mid_menu_resumes_and_ends_once(tmp_path: Path) -> None:
    flow = tmp_path / "failover.flow"
    flow.write_text(MENU_FLOW)
    n = 8
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b") as b,
        webhook_receiver() as (hook_url, hooks),
    ):
        proc = await worker_process(sb, flow, rs.url, _config(tmp_path), hook_url)
        try:
            await sb.wait_app("voxflow", 60)
            calls = [await sb.place_call(from_=f"+1555020{i}", to="100") for i in range(n)]
            for c in calls:
                await until(lambda c=c: "sound:vm-login" in played(sb, c.id), 30, "menus")

            async def all_in_menu() -> bool:
                entries = await b.call_entries()
                return len(entries) == n and all(e.state == "menu" for e in entries)

            for _ in range(500):
                if await all_in_menu():
                    break
                await asyncio.sleep(0.02)
            assert await all_in_menu()
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        await asyncio.wait_for(b.hold_app(node_app(sb.ari_url, "voxflow")), 10)
        async with worker(
            sb, flow, b, settings=Settings(grace_period=2, webhook_url=hook_url)
        ) as server:
            for c in calls:
                await until(lambda c=c: played(sb, c.id).count("sound:vm-login") == 2, 15, "all")
            assert {e.worker for e in await b.call_entries()} == {"b"}
            for c in calls:
                await c.press("1")
            for c in calls:
                await c.wait_hangup(15)
            await until(lambda: all(c.id in server.results for c in calls), 10, "all ended")
            assert {server.results[c.id].outcome for c in calls} == {"completed"}
            assert server.results.total == n  # each call ended once, on B
            assert server.resumed == n
        for c in calls:
            assert played(sb, c.id) == [
                "sound:hello-world", "sound:vm-login", "sound:vm-login", "sound:goodbye",
            ]  # fmt: skip
        assert await b.call_entries() == [] and b.errors == 0
        assert not sb.pbx.channels and not sb.pbx.bridges
        ids = Counter(c.id for c in calls)  # start and end once per call across the workers
        assert by_key(hooks, "call.started") == ids and by_key(hooks, "call.ended") == ids
