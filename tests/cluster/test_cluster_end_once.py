"""A call's end happens once across the cluster (issue 20): the worker that claims it in Redis
(``end:<id>``, SET NX) runs the ``on hangup`` body and sends ``call.ended``; a worker that finds
the end claimed by another repeats neither. Webhooks and HTTP steps carry an
``Idempotency-Key``. On the sandbox, a real redis-server and a local HTTP receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from _cluster_kit import local_http, running_redis, until, worker
from aiohttp import web

from voxflow.cluster import ClusterState
from voxflow.runtime.config import Settings
from voxflow.sandbox.server import Sandbox

FLOW = """\
flow ending "ends once":
    answers "100"

var r: map

on hangup:
    http post "{url}/on-hangup" into r

state start:
    answer
    http post "{url}/step" into r:
        on ok, error, timeout:
            continue
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"
"""

Got = list[tuple[str, str, str]]


@asynccontextmanager
async def _receiver() -> AsyncIterator[tuple[str, Got]]:
    """A local HTTP server recording (path, X-Voxflow-Event, Idempotency-Key) per request."""
    got: Got = []

    async def any_post(request: web.Request) -> web.Response:
        await request.read()
        h = request.headers
        got.append((request.path, h.get("X-Voxflow-Event", ""), h.get("Idempotency-Key", "")))
        return web.json_response({})

    async with local_http("/{tail:.*}", any_post) as base:
        yield base, got


async def test_the_end_runs_on_the_worker_that_claims_it_only(tmp_path: Path) -> None:
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b") as b,
        ClusterState(rs.url, worker_id="z") as z,
        _receiver() as (url, got),
    ):
        flow = tmp_path / "ending.flow"
        flow.write_text(FLOW.replace("{url}", url))
        settings = Settings(grace_period=2, webhook_url=f"{url}/hooks")
        async with worker(sb, flow, b, settings=settings) as server:
            mine = await sb.place_call(from_="+15550300", to="100")
            await until(lambda: any(g[0] == "/step" for g in got), 15, "the first http step")
            theirs = await sb.place_call(from_="+15550301", to="100")
            await until(lambda: sum(g[0] == "/step" for g in got) == 2, 15, "both calls run")
            assert await z.claim_end(theirs.id)  # worker z ended that call already
            await mine.hangup()
            await theirs.hangup()
            await until(lambda: mine.id in server.results, 10, "the first call's end")
            await until(lambda: not server.drivers, 10, "both calls over")
            await server.webhooks.flush(5)
            await server.http.aclose()
        assert theirs.id not in server.results and server.results.total == 1
        assert [g[0] for g in got].count("/on-hangup") == 1  # the claimed call's only
        ended = [g for g in got if g[1] == "call.ended"]
        assert len(ended) == 1 and ended[0][2] == f"{mine.id}:call.ended"
        keys = [g[2] for g in got if g[0] == "/step"]
        assert sorted(keys) == sorted(f"{c.id}:1:1" for c in (mine, theirs))
        entered = [g[2] for g in got if g[1] == "state.entered"]
        assert sorted(entered) == sorted(f"{c.id}:1:state.entered" for c in (mine, theirs))
        assert await b.call_entries() == []
        assert not sb.pbx.channels and not sb.pbx.bridges
