"""A call whose worker dies between seeing the caller hang up and claiming the call's end still
ends, once (issue 20): the worker that reaps it (its worker dead, its channel gone) runs its end
from the last checkpoint: outcome ``caller_hangup``, the checkpointed state's ``on hangup``
body, the ``call.ended`` webhook, under the same end claim. Real redis-server, the sandbox,
``voxflow run`` worker processes (one killed at the fault point ``before_end_claim``)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from _cluster_kit import (
    Got,
    checkpointed,
    post_recorder,
    running_redis,
    until,
    worker,
    worker_process,
    workers_registered,
)
from aiohttp import web
from forked import Forked

from voxflow.cluster import ClusterState
from voxflow.compiler import compile_flow
from voxflow.runtime.checkpoint import Checkpoint
from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.runtime.webhooks import build_payload, verify
from voxflow.sandbox.server import Sandbox
from voxflow.telephony.app import VoxtraApp

SECRET = "unserved-secret"
FLOW = """\
flow ending "ends once":
    answers "100"

var r: map
var picked: string = "none"

on hangup:
    http post "{url}/on-hangup/{{ picked }}" into r

state start:
    answer
    set picked = "early"
    goto menu

state menu:
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"
"""


def _signed(request: web.Request, body: bytes) -> None:
    if request.path == "/hooks":  # webhooks must be signed
        assert verify(SECRET, body, request.headers.get("X-Voxflow-Signature"))


def _receiver() -> AbstractAsyncContextManager[tuple[str, Got]]:
    return post_recorder(check=_signed)


@asynccontextmanager
async def _reapers(
    redis_url: str, path: Path, url: str
) -> AsyncIterator[tuple[list[ClusterState], list[FlowServer]]]:
    """Two workers ("b", "c") that serve no channel and reap every 0.05 s the calls nobody
    serves, ending them through their FlowServer (webhooks to ``url``/hooks)."""
    settings = Settings(webhook_url=f"{url}/hooks", webhook_secret=SECRET)
    states = [
        ClusterState(redis_url, worker_id=w, heartbeat=0.05, unadopted_grace=0.1)
        for w in ("b", "c")
    ]
    servers: list[FlowServer] = []
    for st in states:
        await st.__aenter__()
        reg = FlowRegistry()
        reg.load([path])
        app = VoxtraApp("http://127.0.0.1:9", "u", "p", "voxflow")  # never connected
        servers.append(FlowServer(app, reg, settings, store=st))
    try:

        async def no_channels() -> set[str]:
            return set()

        for st, server in zip(states, servers, strict=True):
            st.start_reaping(no_channels, every=0.05, end=server.end_unserved)
        yield states, servers
    finally:
        for server in servers:
            await server.webhooks.aclose()
            await server.http.aclose()
        for st in states:
            await st.close()


def _ended(got: Got) -> list[tuple[str, str, str, bytes]]:
    return [g for g in got if g[1] == "call.ended"]


async def _keys(r: aioredis.Redis, pattern: str) -> list[str]:
    return [k.decode() async for k in r.scan_iter(match=pattern)]


@pytest.mark.long
async def test_a_worker_killed_between_the_hang_up_and_the_end_claim_loses_no_end(
    tmp_path: Path,
) -> None:
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        _receiver() as (url, got),
    ):
        r = aioredis.Redis.from_url(rs.url)
        flow = tmp_path / "ending.flow"
        flow.write_text(FLOW.replace("{url}", url))
        config = tmp_path / "voxflow.toml"
        config.write_text(f'[cluster]\nfailover_ttl = 1.0\n[webhooks]\nsecret = "{SECRET}"\n')
        hooks = f"{url}/hooks"
        a = await worker_process(sb, flow, rs.url, config, hooks, fault="before_end_claim")
        b: Forked | None = None
        try:
            await sb.wait_app("voxflow", 60)  # a serves the application
            b = await worker_process(sb, flow, rs.url, config, hooks)  # b stands by
            await workers_registered(r, 2)
            call = await sb.place_call(from_="+15550500", to="100")
            await checkpointed(r, call.id, "menu")  # the call waits in its menu, checkpointed there
            cp = Checkpoint.from_json(await r.get(f"voxflow:checkpoint:{call.id}") or b"")
            assert cp.variables["picked"] == "early" and cp.call[:2] == ("+15550500", "100")
            await call.hangup()  # a sees it, reaches the end claim and dies (SIGKILL)
            async with asyncio.timeout(30):
                await a.communicate()
            assert a.returncode == -signal.SIGKILL
            await until(lambda: bool(_ended(got)), 30, "the call's end, run by b")
            await until(lambda: any(g[0].startswith("/on-hangup") for g in got), 10, "on hangup")
            b_id = f"{socket.gethostname()}-{b.pid}"
            assert (await r.get(f"voxflow:end:{call.id}")) == b_id.encode()  # a never claimed
            for _ in range(500):
                if not await _keys(r, "voxflow:call:*") and not await r.hlen("voxflow:outbox"):
                    break
                await asyncio.sleep(0.02)
            assert await _keys(r, "voxflow:call:*") == []
            assert await _keys(r, "voxflow:checkpoint:*") == []
            assert await r.hlen("voxflow:outbox") == 0
        finally:
            for p in (a, b):
                if p is not None and p.returncode is None:
                    p.send_signal(signal.SIGTERM)
            for p in (a, b):
                if p is not None:
                    async with asyncio.timeout(30):
                        await p.communicate()
            await r.aclose()
        [(_, _, key, body)] = _ended(got)
        assert key == f"{call.id}:call.ended"
        assert json.loads(body)["data"] == {"outcome": "caller_hangup", "reason": "caller"}
        [hangup] = [g for g in got if g[0].startswith("/on-hangup")]
        assert hangup[0] == "/on-hangup/early"  # the checkpointed state's variables
        assert hangup[2] == f"{call.id}:{cp.entry}:hangup.1"
        assert not sb.pbx.channels and not sb.pbx.bridges


async def test_two_reapers_racing_end_each_unserved_call_once(tmp_path: Path) -> None:
    """Outbound-websocket modes: every worker reaps; a call with a checkpoint and one
    without (it died before its first) end once each, wherever the claim went."""
    async with running_redis(tmp_path) as rs, _receiver() as (url, got):
        compiled = compile_flow(FLOW.replace("{url}", url), "ending.flow").flow
        assert compiled is not None
        path = tmp_path / "ending.flow"
        path.write_text(FLOW.replace("{url}", url))
        dead = ClusterState(rs.url, worker_id="dead", heartbeat=0.05, worker_ttl=0.3)
        await dead.__aenter__()
        fhash = await dead.publish(compiled)
        await dead.begin("c-menu", compiled, fhash)
        cp = Checkpoint(
            fhash, "menu", {"picked": "early"}, entry=2, call=("+1555", "100", "inbound")
        )
        dead.save("c-menu", cp)
        await dead.begin("c-new", compiled, fhash)
        await dead.flush()
        await dead.close()  # killed: no end ran; its registry entries stay
        async with _reapers(rs.url, path, url) as (states, servers):
            await until(lambda: len(_ended(got)) == 2, 30, "both calls' ends")
            for _ in range(500):
                if not await states[0].call_entries():
                    break
                await asyncio.sleep(0.02)
            assert await states[0].call_entries() == []
            await asyncio.sleep(0.3)  # more reaping rounds on both: nothing repeats
        ended = {json.loads(g[3])["call_id"]: json.loads(g[3])["data"] for g in _ended(got)}
        assert len(_ended(got)) == 2
        assert ended == {
            "c-menu": {"outcome": "caller_hangup", "reason": "caller"},
            "c-new": {"outcome": "caller_hangup", "reason": "caller"},
        }
        assert [g[0] for g in got if g[0].startswith("/on-hangup")] == ["/on-hangup/early"]
        assert sum(s.ended_for_dead for s in servers) == 2
        assert sum(s.results.total for s in servers) == 2


async def test_a_draining_worker_leaves_unserved_ends_to_the_others(tmp_path: Path) -> None:
    async with running_redis(tmp_path) as rs, _receiver() as (url, got):
        path = tmp_path / "ending.flow"
        path.write_text(FLOW.replace("{url}", url))
        async with ClusterState(rs.url, worker_id="d") as st:
            reg = FlowRegistry()
            reg.load([path])
            app = VoxtraApp("http://127.0.0.1:9", "u", "p", "voxflow")  # never connected
            settings = Settings(webhook_url=f"{url}/hooks", webhook_secret=SECRET)
            server = FlowServer(app, reg, settings, store=st)
            fv = reg.get("ending")
            assert fv is not None
            fhash = await st.publish(fv.flow)
            server.accepting = False  # SIGTERM: its webhook sender is about to close
            assert await server.end_unserved("c1", fhash, None) is None
            assert await st.redis.get("voxflow:end:c1") is None  # not claimed: others may
            server.accepting = True
            end = await server.end_unserved("c1", fhash, None)
            assert end is not None and end.outcome == "caller_hangup"
            await server.webhooks.aclose()
            await server.http.aclose()
        assert [json.loads(g[3])["call_id"] for g in _ended(got)] == ["c1"]


@pytest.mark.parametrize("holder", ["alive", "dead"])
async def test_a_call_whose_end_another_worker_claimed_is_hung_up_not_resumed(
    tmp_path: Path, holder: str
) -> None:
    """The worker ending a call claimed its end and did not hang it up (the channel lives on):
    the worker adopting the channel hangs it up instead of resuming its menu; when the claim's
    holder is dead (it died in its end) it takes the claim over and runs the on hangup body."""
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        _receiver() as (url, got),
        ClusterState(rs.url, worker_id="a") as a,
        ClusterState(rs.url, worker_id="b") as b,
    ):
        flow = tmp_path / "ending.flow"
        flow.write_text(FLOW.replace("{url}", url))
        hooks = Settings(grace_period=2, webhook_url=f"{url}/hooks", webhook_secret=SECRET)
        handover = Settings(grace_period=2, drain="handover")
        async with worker(sb, flow, a, settings=handover) as first:
            call = await sb.place_call(from_="+15550501", to="100")
            await until(lambda: bool(first.drivers), 15, "a runs the call")
            for _ in range(1000):
                cp = await a.checkpoint(call.id)
                if cp is not None and cp.state == "menu":
                    break
                await asyncio.sleep(0.02)
        assert first.handed_over == 1 and not call.ended  # the channel waits for a worker
        z = ClusterState(rs.url, worker_id="z")
        await z.__aenter__()
        assert await z.claim_end(call.id)  # z ended the call and did not hang it up
        if holder == "dead":
            await z.close()  # ... because it died
        async with worker(sb, flow, b, settings=hooks) as second:
            await call.wait_hangup(15)
            for _ in range(1500):  # the call leaves the registry once b is done with it
                if not await b.call_entries():
                    break
                await asyncio.sleep(0.02)
            await second.webhooks.flush(5)
            assert second.results.total == 0 and second.resumed == 0
        if holder == "alive":
            await z.close()
        hangups = [g for g in got if g[0].startswith("/on-hangup")]
        assert _ended(got) == []  # z's, in the outbox had z sent one
        if holder == "dead":  # the state's on hangup body, once, with its state's entry
            cp_entry = 2  # start (1) then menu (2)
            assert [(g[0], g[2]) for g in hangups] == [
                ("/on-hangup/early", f"{call.id}:{cp_entry}:hangup.1")
            ]
        else:
            assert hangups == []
        assert await b.call_entries() == [] and await b.checkpoint(call.id) is None
        assert not sb.pbx.channels and not sb.pbx.bridges


async def test_a_worker_dead_during_its_end_has_its_on_hangup_run_again_once(
    tmp_path: Path,
) -> None:
    """The worker had claimed the end (its call.ended in the outbox) and died before the call
    left the registry: one reaper takes the claim over and runs the on hangup body again with
    the same key; the call.ended is the dead worker's, sent once from the outbox."""
    async with running_redis(tmp_path) as rs, _receiver() as (url, got):
        compiled = compile_flow(FLOW.replace("{url}", url), "ending.flow").flow
        assert compiled is not None
        path = tmp_path / "ending.flow"
        path.write_text(FLOW.replace("{url}", url))
        dead = ClusterState(rs.url, worker_id="dead", heartbeat=0.05, worker_ttl=0.3)
        await dead.__aenter__()
        fhash = await dead.publish(compiled)
        await dead.begin("c1", compiled, fhash)
        dead.save("c1", Checkpoint(fhash, "menu", {"picked": "early"}, entry=2))
        await dead.flush()
        data = {"outcome": "completed", "reason": "done"}
        body = build_payload(
            "call.ended", call_id="c1", flow="ending", metadata={}, webhook_keys=(), data=data
        )
        assert await dead.claim_end("c1", ("c1:call.ended", body))
        await dead.close()  # killed in its on hangup body
        async with _reapers(rs.url, path, url) as (states, servers):
            await until(lambda: bool(_ended(got)), 30, "the dead worker's call.ended")
            await until(lambda: any(g[0].startswith("/on-hangup") for g in got), 30, "on hangup")
            r = states[0].redis
            for _ in range(500):
                if not await states[0].call_entries() and not await r.hlen("voxflow:outbox"):
                    break
                await asyncio.sleep(0.02)
            assert await states[0].call_entries() == []
            await asyncio.sleep(0.3)  # more reaping and outbox rounds: nothing repeats
        [(_, _, key, sent)] = _ended(got)
        assert key == "c1:call.ended" and json.loads(sent)["data"] == data  # the dead one's
        [hangup] = [g for g in got if g[0].startswith("/on-hangup")]
        assert hangup[0] == "/on-hangup/early" and hangup[2] == "c1:2:hangup.1"
        assert sum(s.ended_for_dead for s in servers) == 1
        assert sum(s.results.total for s in servers) == 0  # counted by the dead worker
