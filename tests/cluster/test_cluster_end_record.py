"""A call's end after its worker died during it (issue 20): the worker holding the end claim
records the end's outcome, the state it started in and each ``on hangup`` HTTP step it
completed (:mod:`voxflow.cluster.ending`); the worker taking the claim over finishes that end:
the same outcome (not ``caller_hangup``), the steps already done not sent again (their recorded
results used), the rest sent once. Real redis-server; a ``voxflow run`` worker killed (SIGKILL)
at the fault point ``after_hangup_step``."""

from __future__ import annotations

import asyncio
import json
import signal
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from _cluster_kit import (
    Got,
    checkpointed,
    post_recorder,
    running_redis,
    until,
    worker_process,
    workers_registered,
)
from forked import Forked

from voxflow.cluster import ClusterState
from voxflow.compiler import compile_flow
from voxflow.runtime.checkpoint import Checkpoint
from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.runtime.webhooks import build_payload
from voxflow.sandbox.server import Sandbox
from voxflow.telephony.app import VoxtraApp

FLOW = """\
flow ending "ends once":
    answers "100"

var r1: map
var r2: map
var picked: string = "none"

on hangup:
    http post "{url}/h1/{{ picked }}" into r1
    http post "{url}/h2/{{ r1.n }}" into r2

state start:
    answer
    set picked = "early"
    goto menu

state menu:
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    set picked = "late"
    hangup "done"
"""


def _count_h1(path: str, got: Got) -> dict[str, Any]:
    """``/h1`` answers ``{"n": how many /h1 it got}`` (a second send shows in the next URL)."""
    return {"n": sum(1 for g in got if g[0].startswith("/h1"))} if path.startswith("/h1") else {}


def _receiver() -> AbstractAsyncContextManager[tuple[str, Got]]:
    return post_recorder(answer=_count_h1)


def _paths(got: Got, prefix: str) -> list[tuple[str, str]]:
    return [(g[0], g[2]) for g in got if g[0].startswith(prefix)]


async def test_a_worker_killed_in_its_on_hangup_body_has_it_finished_not_repeated(
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
        config.write_text("[cluster]\nfailover_ttl = 1.0\n")
        hooks = f"{url}/hooks"
        a = await worker_process(sb, flow, rs.url, config, hooks, fault="after_hangup_step")
        b: Forked | None = None
        b_log = tmp_path / "b.log"
        try:
            await sb.wait_app("voxflow", 60)
            b = await worker_process(sb, flow, rs.url, config, hooks, log=b_log)
            await workers_registered(r, 2)
            call = await sb.place_call(from_="+15550600", to="100")
            await checkpointed(r, call.id, "menu")  # the call waits in its menu
            await call.press("1")  # done: hangs up; a sends /h1, records it and dies
            async with asyncio.timeout(30):
                await a.communicate()
            assert a.returncode == -signal.SIGKILL
            await until(lambda: bool(_paths(got, "/h2")), 30, "the on hangup body, finished by b")
            await until(lambda: any(g[1] == "call.ended" for g in got), 30, "call.ended")
            for _ in range(500):
                if not [k async for k in r.scan_iter(match="voxflow:call:*")]:
                    break
                await asyncio.sleep(0.02)
            assert [k async for k in r.scan_iter(match="voxflow:call:*")] == []
            await asyncio.sleep(0.3)  # more reaping and outbox rounds: nothing repeats
        finally:
            for p in (a, b):
                if p is not None and p.returncode is None:
                    p.send_signal(signal.SIGTERM)
            for p in (a, b):
                if p is not None:
                    async with asyncio.timeout(30):
                        await p.communicate()
            await r.aclose()
        entry = 3  # start, menu, done
        assert _paths(got, "/h1") == [("/h1/late", f"{call.id}:{entry}:hangup.1")]  # once
        assert _paths(got, "/h2") == [("/h2/1", f"{call.id}:{entry}:hangup.2")]  # a's result
        [ended] = [json.loads(g[3]) for g in got if g[1] == "call.ended"]
        assert ended["data"] == {"outcome": "completed", "reason": "done"}
        assert "its end ran here (completed)" in b_log.read_text()
        assert not sb.pbx.channels and not sb.pbx.bridges


async def test_the_reaper_ends_a_dead_workers_call_with_the_outcome_it_recorded(
    tmp_path: Path,
) -> None:
    """The dead worker had transferred the call (outcome ``transferred``), claimed its end and
    completed the first ``on hangup`` step: the reaper's end is ``transferred`` (its trace, its
    log), in the state the end started in, the first step taken from the record."""
    async with running_redis(tmp_path) as rs, _receiver() as (url, got):
        text = FLOW.replace("{url}", url)
        compiled = compile_flow(text, "ending.flow").flow
        assert compiled is not None
        path = tmp_path / "ending.flow"
        path.write_text(text)
        dead = ClusterState(rs.url, worker_id="dead", heartbeat=0.05, worker_ttl=0.3)
        await dead.__aenter__()
        fhash = await dead.publish(compiled)
        await dead.begin("c1", compiled, fhash)
        dead.save("c1", Checkpoint(fhash, "menu", {"picked": "early"}, entry=2))
        await dead.flush()
        at = Checkpoint(fhash, "done", {"picked": "late"}, entry=3)
        body = build_payload(
            "call.ended", call_id="c1", flow="ending", metadata={}, webhook_keys=(), data={}
        )
        assert await dead.claim_end("c1", ("c1:call.ended", body), ("transferred", "SIP/2000"), at)
        await dead.record_effect("c1", "c1:3:hangup.1", {"outcome": "ok", "data": {"n": 7}})
        await dead.close()  # killed in its on hangup body, after its first step
        traces = tmp_path / "traces"
        b = ClusterState(rs.url, worker_id="b", heartbeat=0.05, unadopted_grace=0.1)
        async with b as st:
            reg = FlowRegistry()
            reg.load([path])
            app = VoxtraApp("http://127.0.0.1:9", "u", "p", "voxflow")  # never connected
            settings = Settings(webhook_url=f"{url}/hooks", trace_dir=str(traces))
            server = FlowServer(app, reg, settings, store=st)

            async def no_channels() -> set[str]:
                return set()

            try:
                st.start_reaping(no_channels, every=0.05, end=server.end_unserved)
                await until(lambda: server.ended_for_dead == 1, 30, "the reaper's end")
                await until(lambda: any(g[1] == "call.ended" for g in got), 30, "call.ended")
            finally:
                await server.webhooks.aclose()
                await server.http.aclose()
        assert _paths(got, "/h1") == []  # recorded as done: not sent again
        assert _paths(got, "/h2") == [("/h2/7", "c1:3:hangup.2")]  # with the recorded result
        records = [json.loads(line) for line in (traces / "c1.jsonl").read_text().splitlines()]
        [end] = [t for t in records if t.get("type") == "call.ended"]
        assert (end["outcome"], end["reason"], end["state"]) == ("transferred", "SIP/2000", "done")
        assert end["variables"]["picked"] == "late"
