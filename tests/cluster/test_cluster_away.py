"""``away:<id>`` in Redis (a call that ended ``unknown``, kept for its return): kept for
``away_ttl`` s (``[run] away_ttl``, an hour by default; it was 4 h whatever the setting), none
with 0; taken once by the return, which releases the call's end claim; a checkpoint whose flow
version cannot be read is not restored. Real redis-server."""

from __future__ import annotations

from pathlib import Path

from _cluster_kit import running_redis, tiny_flow

from voxflow.cluster import ClusterState
from voxflow.runtime.checkpoint import Checkpoint


async def test_an_away_call_is_kept_for_away_ttl_and_taken_once(tmp_path: Path) -> None:
    flow = tiny_flow()
    async with running_redis(tmp_path) as rs:
        async with ClusterState(rs.url, worker_id="d") as default:
            fhash = await default.publish(flow)
            cp = Checkpoint(fhash, "start", {"n": 1}, metadata={}, trip={"op": "queue"})
            await default.away.keep_away("c0", cp, flow)
            assert 3590_000 < await default.redis.pttl("voxflow:away:c0") <= 3600_000
        async with ClusterState(rs.url, worker_id="a", away_ttl=30) as a:
            await a.away.keep_away("c1", cp, flow)
            assert 29_000 < await a.redis.pttl("voxflow:away:c1") <= 30_000
            assert await a.claim_end("c1", None, ("unknown", "queue"))
            assert await a.redis.exists("voxflow:end:c1")
            assert await a.away.come_back("c1") == (cp, flow)
            assert not await a.redis.exists("voxflow:away:c1", "voxflow:end:c1")
            assert await a.checkpoint("c1") == cp  # the call's checkpoint again
            assert await a.away.come_back("c1") is None


async def test_away_ttl_0_keeps_none_and_an_unreadable_version_is_not_restored(
    tmp_path: Path,
) -> None:
    flow = tiny_flow()
    async with running_redis(tmp_path) as rs:
        async with ClusterState(rs.url, worker_id="a", away_ttl=0) as a:
            await a.away.keep_away("c1", Checkpoint("h", "start", {}), flow)
            assert not await a.redis.exists("voxflow:away:c1")
        async with ClusterState(rs.url, worker_id="b") as b:
            await b.away.keep_away("c2", Checkpoint("0" * 64, "start", {}), flow)  # unpublished
            assert await b.away.come_back("c2") is None
            assert await b.redis.exists("voxflow:away:c2")  # left to expire
            assert await b.checkpoint("c2") is None
