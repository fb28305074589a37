"""New calls are routed by dialled number over the cluster's released flows (issue 20), not by
the worker's own files: a number only a released version answers, a flow this worker has no
file for, and a flow released while the worker runs all take calls. On the sandbox and a real
redis-server, with an in-process worker."""

from __future__ import annotations

import asyncio
from pathlib import Path

from _cluster_kit import running_redis, until, worker

from voxflow.cluster import ClusterState
from voxflow.compiler import compile_flow
from voxflow.ir.models import Flow
from voxflow.sandbox.server import Sandbox


def _flow(name: str, numbers: str, sound: str) -> str:
    return f"""\
flow {name} "{name}":
    answers {numbers}

state start:
    answer
    play "sound:{sound}"
    hangup "done"
"""


def _compiled(text: str) -> Flow:
    flow = compile_flow(text, "released.flow").flow
    assert flow is not None
    return flow


def _played(sb: Sandbox, cid: str) -> list[str]:
    exp = sb.calls[cid].experience()
    return [str(e["uri"]) for e in exp if e["type"] == "playback" and e["state"] == "playing"]


async def test_numbers_route_to_the_released_flows(tmp_path: Path) -> None:
    local = tmp_path / "sales.flow"
    local.write_text(_flow("sales", '"100"', "hello-world"))
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="b", heartbeat=0.1) as b,
        ClusterState(rs.url, worker_id="ops") as ops,
    ):
        # released elsewhere (voxflow cluster publish): sales v2 also answers 101; billing is a
        # flow worker b has no file for
        await ops.release(_compiled(_flow("sales", '"100", "101"', "vm-login")))
        await ops.release(_compiled(_flow("billing", '"300"', "goodbye")))

        async def heard(number: str) -> list[str]:
            call = await sb.place_call(from_="+15550700", to=number)
            await call.wait_hangup(15)
            return _played(sb, call.id)

        async with worker(sb, local, b):
            assert await heard("100") == ["sound:vm-login"]  # the released version, not the file
            assert await heard("101") == ["sound:vm-login"]  # a number only v2 answers
            assert await heard("300") == ["sound:goodbye"]  # a flow b has no file for
            await ops.release(_compiled(_flow("support", '"400"', "transfer")))
            for _ in range(500):  # b refreshes the released set in the background (0.1 s here)
                if "support" in await b.released():
                    break
                await asyncio.sleep(0.02)
            assert await heard("400") == ["sound:transfer"]  # released while b runs
            await until(lambda: not sb.pbx.channels, 10, "every call gone")
        assert await b.call_entries() == [] and b.errors == 0
