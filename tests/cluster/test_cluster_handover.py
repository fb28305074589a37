"""Drain by hand-over (issue 20): ``voxflow run --redis --drain handover`` stopped with SIGTERM
while a call waits in a menu leaves the registry, writes the call's checkpoint, releases the
application name and exits without hanging the call up; the standby worker takes the name over
at once (not after the TTL), adopts the call and resumes it at the menu. The caller is never hung
up. On the sandbox, a real redis-server, the draining worker in its own process."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import forked
from _cluster_kit import MENU_FLOW, local_http, played, running_redis, until, worker
from aiohttp import web

from voxflow.cluster import ClusterState, node_app
from voxflow.runtime.config import Settings
from voxflow.sandbox.server import Sandbox


@asynccontextmanager
async def _hooks() -> AsyncIterator[tuple[str, list[tuple[str, str, str]]]]:
    """A webhook receiver on 127.0.0.1: (event, state, Idempotency-Key) per request."""
    got: list[tuple[str, str, str]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        state = str(body["data"].get("state", ""))
        got.append((body["event"], state, request.headers.get("Idempotency-Key", "")))
        return web.Response(status=204)

    async with local_http("/hooks", hook) as base:
        yield f"{base}/hooks", got


async def test_sigterm_hands_a_call_over_to_the_standby_without_hanging_up(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "handover.flow"
    flow.write_text(MENU_FLOW)
    config = tmp_path / "voxflow.toml"  # a TTL far longer than the test waits for the take-over
    config.write_text('[cluster]\nfailover_ttl = 30.0\ndrain = "handover"\n')
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b") as b,
        _hooks() as (hook_url, hooks),
    ):
        env = {**os.environ, "VOXFLOW_ARI_PASSWORD": sb.password, "VOXFLOW_WEBHOOK_URL": hook_url}
        proc = await forked.spawn(
            "run", str(flow),
            "--ari-url", sb.ari_url, "--ari-user", sb.user, "--redis", rs.url, "--no-audio",
            "--config", str(config), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await sb.wait_app("voxflow", 60)
            call = await sb.place_call(from_="+15550400", to="100")
            await until(lambda: "sound:vm-login" in played(sb, call.id), 30, "A plays the menu")
            standby = asyncio.ensure_future(b.hold_app(node_app(sb.ari_url, "voxflow"), poll=0.05))
            await asyncio.sleep(0.2)
            assert not standby.done()  # A holds the name
            proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, err.decode()[-2000:]
        assert "1 call(s) in progress handed over" in out.decode()
        assert call.hangup_cause is None and not call.ended  # A did not hang up
        await asyncio.wait_for(standby, 5)  # released at once: not after the 30 s TTL
        cp = await b.checkpoint(call.id)
        assert cp is not None and cp.state == "menu" and cp.variables == {"picked": "early"}
        async with worker(
            sb, flow, b, settings=Settings(grace_period=2, webhook_url=hook_url)
        ) as server:
            await until(lambda: played(sb, call.id).count("sound:vm-login") == 2, 15, "resumed")
            assert call.hangup_cause is None
            assert [e.worker for e in await b.call_entries()] == ["b"]
            await call.press("1")
            await call.wait_hangup(15)
            await until(lambda: call.id in server.results, 10, "the call's end on B")
            assert server.results[call.id].outcome == "completed" and server.resumed == 1
        assert played(sb, call.id) == [
            "sound:hello-world", "sound:vm-login", "sound:vm-login", "sound:goodbye",
        ]  # fmt: skip
        assert await b.call_entries() == [] and b.errors == 0
        assert not sb.pbx.channels and not sb.pbx.bridges
        # the resumed menu's state.entered went out again with the key of the first time (the
        # receiver drops it); the call started and ended once across the two workers
        menu = [key for event, state, key in hooks if (event, state) == ("state.entered", "menu")]
        assert menu == [f"{call.id}:2:state.entered"] * 2
        events = [event for event, _, _ in hooks]
        assert events.count("call.started") == 1 and events.count("call.ended") == 1
        ended = [key for event, _, key in hooks if event == "call.ended"]
        assert ended == [f"{call.id}:call.ended"]
