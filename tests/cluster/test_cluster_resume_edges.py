"""A checkpoint that cannot be resumed never fails the call: it starts from its first state."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from _cluster_kit import running_redis, until, worker

from voxflow.cluster import ClusterState
from voxflow.runtime.checkpoint import Checkpoint
from voxflow.sandbox.server import Sandbox

FLOW = """\
flow edges "a menu":
    answers "100"

state start:
    answer
    play "sound:hello-world"
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"
"""


@pytest.mark.parametrize(
    "bad",
    [
        "state",  # a state this flow does not have
        "unknown version",  # a flow hash no worker published
        "corrupt version",  # a stored flow that is not a compiled flow
    ],
)
async def test_an_unresumable_checkpoint_starts_the_call_over(tmp_path: Path, bad: str) -> None:
    flow = tmp_path / "edges.flow"
    flow.write_text(FLOW)
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        ClusterState(rs.url, worker_id="w") as state,
        worker(sb, flow, state) as server,
    ):
        fhash = "f" * 64
        if bad == "corrupt version":
            await state.redis.set(f"voxflow:flow:{fhash}", '{"not": "a flow"}')
        if bad == "state":
            [fv] = server.registry.versions()
            fhash = server._hash(fv.flow)
        cp = Checkpoint(fhash, "gone" if bad == "state" else "start", {})
        await state.redis.set("voxflow:checkpoint:chan-edge", cp.to_json())
        call = await sb.place_call(from_="+15550100", to="100", channel_id="chan-edge")
        await call.wait_for("answered", 10)  # the first state ran
        await until(
            lambda: any(e.get("uri") == "sound:hello-world" for e in call.experience()), 10, "hi"
        )
        await call.press("1")
        await call.wait_hangup(10)
        await until(lambda: call.id in server.results, 10, "the call's end")
        assert server.results[call.id].outcome == "completed"
        for _ in range(500):  # an end leaves the registry with the next tick (<= its linger)
            if await state.call_entries() == []:
                break
            await asyncio.sleep(0.02)
        assert await state.call_entries() == [] and await state.checkpoint(call.id) is None
