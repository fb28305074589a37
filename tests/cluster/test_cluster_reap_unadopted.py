"""Outbound-websocket modes: a call whose worker died and that no worker adopted within the grace
(its caller hung up before Asterisk re-connected it) leaves the registry; calls of live or
draining workers, calls another worker adopted, and classic-mode calls stay. Real redis-server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from _cluster_kit import running_redis

from voxflow.cluster import ClusterState


def _entry(cid: str, worker: str, app: str = "") -> str:
    return json.dumps(
        {"id": cid, "worker": worker, "flow": "f", "flow_hash": "h", "started": 0.0,
         "state": "menu", "app": app}
    )  # fmt: skip


async def test_only_calls_nobody_adopted_from_a_dead_worker_are_reaped(tmp_path: Path) -> None:
    async with (
        running_redis(tmp_path) as rs,
        ClusterState(rs.url, worker_id="r") as r,
        ClusterState(rs.url, worker_id="live"),
        ClusterState(rs.url, worker_id="draining") as draining,
    ):
        await draining.leave()  # out of the registry, its calls finishing: still connected
        for _ in range(250):  # every liveness connection is open
            if {"r", "live", "draining"} <= await r.deaths.connected():
                break
            await asyncio.sleep(0.02)
        calls = {
            "c-dead": _entry("c-dead", "gone"),
            "c-moving": _entry("c-moving", "gone"),
            "c-live": _entry("c-live", "live"),
            "c-drain": _entry("c-drain", "draining"),
            "c-classic": _entry("c-classic", "gone", app="voxflow"),
        }
        for cid, raw in calls.items():
            await r.redis.set(f"voxflow:call:{cid}", raw)
            await r.redis.set(f"voxflow:checkpoint:{cid}", "{}")
        assert await r.reap_unadopted(grace=0.3) == []  # first seen dead: Asterisk may re-connect
        await r.redis.set("voxflow:call:c-moving", _entry("c-moving", "live"))  # adopted
        await asyncio.sleep(0.35)
        assert await r.reap_unadopted(grace=0.3) == ["c-dead"]
        assert await r.redis.get("voxflow:call:c-dead") is None
        assert await r.redis.get("voxflow:checkpoint:c-dead") is None
        left = {e.id for e in await r.call_entries()}
        assert left == {"c-moving", "c-live", "c-drain", "c-classic"}
        assert await r.reap_unadopted(grace=0.3) == []
