"""Mid-call failover in the classic mode (issue 20): a worker killed with SIGKILL while a call
waits in a menu past the first state; another worker with the same app name adopts the call
and resumes it at that menu, with its variables and on the flow version it started on (the new
worker's file is a newer version: new calls take the cluster's current version until that one
is released), on the sandbox and a real redis-server."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from _cluster_kit import running_redis, until, worker
from aiohttp import web

from voxflow.cluster import ClusterState, node_app
from voxflow.runtime.config import Settings
from voxflow.sandbox.server import Sandbox

FLOW = """\
flow failover "resumes where it was":
    answers "100"

var picked: string = "none"

state start:
    answer
    play "sound:hello-world"
    set picked = "early"
    goto menu

state menu:
    play "sound:vm-login"
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    if picked == "early":
        play "sound:goodbye"
    hangup "done"
"""


def _played(sb: Sandbox, cid: str) -> list[str]:
    """The sounds the caller heard start, in order (the one A started, cut by nobody, ends
    before B's queued replay starts, as on Asterisk)."""
    exp = sb.calls[cid].experience()
    return [str(e["uri"]) for e in exp if e["type"] == "playback" and e["state"] == "playing"]


async def _worker_a(
    sb: Sandbox, flow: Path, redis_url: str, webhook_url: str | None = None
) -> asyncio.subprocess.Process:
    """``voxflow run --redis`` in its own process (killed with SIGKILL by the test)."""
    env = {**os.environ, "VOXFLOW_ARI_PASSWORD": sb.password}
    if webhook_url:
        env["VOXFLOW_WEBHOOK_URL"] = webhook_url
    config = flow.parent / "voxflow.toml"  # its hold on the app name expires 1 s after the kill
    config.write_text("[cluster]\nfailover_ttl = 1.0\n")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from voxflow.cli.main import main; main()", "run", str(flow),
        "--ari-url", sb.ari_url, "--ari-user", sb.user, "--redis", redis_url, "--no-audio",
        "--config", str(config), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def test_a_call_resumes_at_its_menu_on_another_worker_after_kill_9(tmp_path: Path) -> None:
    flow = tmp_path / "failover.flow"
    flow.write_text(FLOW)
    (tmp_path / "v2").mkdir()
    flow_v2 = tmp_path / "v2" / "failover.flow"  # what worker B serves: a newer version
    flow_v2.write_text(FLOW.replace("sound:vm-login", "sound:vm-password"))
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b") as b,
    ):
        proc = await _worker_a(sb, flow, rs.url)
        try:
            await sb.wait_app("voxflow", 60)
            call = await sb.place_call(from_="+15550100", to="100")
            await until(lambda: "sound:vm-login" in _played(sb, call.id), 30, "A plays the menu")
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
            await until(lambda: _played(sb, call.id).count("sound:vm-login") == 2, 15, "resumed")
            [entry] = await b.call_entries()
            assert entry.worker == "b" and entry.state == "menu"  # the call moved to B
            await call.press("1")
            await call.wait_hangup(15)
            await until(lambda: call.id in server.results, 10, "the call's end on B")
            assert server.results[call.id].outcome == "completed"
            # a new call takes the cluster's current version (A's), not B's local file: a
            # version reaches the cluster when released (voxflow cluster publish, --watch)
            new = await sb.place_call(from_="+15550101", to="100")
            await until(lambda: "sound:vm-login" in _played(sb, new.id), 15, "current menu")
            await new.press("1")
            await new.wait_hangup(15)
            await b.release(server.registry.versions()[0].flow)  # B's version released
            new = await sb.place_call(from_="+15550102", to="100")
            await until(lambda: "sound:vm-password" in _played(sb, new.id), 15, "v2 menu")
            await new.press("1")
            await new.wait_hangup(15)
        # nothing before the menu repeated; the variable set in the first state survived
        assert _played(sb, call.id) == [  # version 1 to its end
            "sound:hello-world", "sound:vm-login", "sound:vm-login", "sound:goodbye",
        ]  # fmt: skip
        assert await b.call_entries() == [] and await b.checkpoint(call.id) is None
        assert b.errors == 0
        assert not sb.pbx.channels and not sb.pbx.bridges


@asynccontextmanager
async def _webhook_receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """An HTTP server on 127.0.0.1 collecting the webhooks' JSON bodies."""
    got: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hooks", got
    finally:
        await runner.cleanup()


async def test_every_call_mid_menu_resumes_and_ends_once(tmp_path: Path) -> None:
    flow = tmp_path / "failover.flow"
    flow.write_text(FLOW)
    n = 8
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b") as b,
        _webhook_receiver() as (hook_url, hooks),
    ):
        proc = await _worker_a(sb, flow, rs.url, hook_url)
        try:
            await sb.wait_app("voxflow", 60)
            calls = [await sb.place_call(from_=f"+1555020{i}", to="100") for i in range(n)]
            for c in calls:
                await until(lambda c=c: "sound:vm-login" in _played(sb, c.id), 30, "menus")

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
                await until(lambda c=c: _played(sb, c.id).count("sound:vm-login") == 2, 15, "all")
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
            assert _played(sb, c.id) == [
                "sound:hello-world", "sound:vm-login", "sound:vm-login", "sound:goodbye",
            ]  # fmt: skip
        assert await b.call_entries() == [] and b.errors == 0
        assert not sb.pbx.channels and not sb.pbx.bridges
        for c in calls:  # start and end webhooks once per call across the two workers
            events = [h["event"] for h in hooks if h["call_id"] == c.id]
            assert events.count("call.started") == 1 and events.count("call.ended") == 1
