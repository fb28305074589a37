"""A take-over reads the dead worker's checkpoints and end claims in one MGET
(``ClusterState.prefetch``, called by the orphan sweep): each adopted call's ``begin`` and
``end_claimed_elsewhere`` then answer without a Redis round trip, and its registry entry moves to
the new worker with the writer's next tick. On a real redis-server, ``MONITOR`` shows the round
trips (the commands a script runs inside are not counted)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis
from _cluster_kit import running_redis, tiny_flow

from voxflow.cluster import ClusterState
from voxflow.runtime.checkpoint import Checkpoint


@asynccontextmanager
async def _round_trips(url: str) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """``count()``: the commands clients sent Redis since the last ``count()`` (or the start),
    not those run inside scripts; read up to a marker, so none still on its way is missed."""
    mon, probe = aioredis.Redis.from_url(url), aioredis.Redis.from_url(url)
    async with mon.monitor() as m:
        seen: list[str] = []

        async def upto(marker: str) -> int:
            await probe.echo(marker)
            n = 0
            async for cmd in m.listen():
                if cmd.get("client_type") == "lua":
                    continue
                if str(cmd.get("command", "")).startswith(f"ECHO {marker}"):
                    return n
                n += 1
            raise AssertionError("MONITOR ended")  # pragma: no cover - listen() never ends

        await upto("start")

        async def count() -> int:
            seen.append(f"m{len(seen)}")
            return await upto(seen[-1])

        yield count
    await mon.aclose()
    await probe.aclose()


async def test_prefetched_calls_resume_without_a_round_trip(tmp_path: Path) -> None:
    async with running_redis(tmp_path) as rs:
        async with (
            ClusterState(rs.url, worker_id="a", heartbeat=60) as a,
            ClusterState(rs.url, worker_id="b", heartbeat=60) as b,
            _round_trips(rs.url) as round_trips,
        ):
            flow = tiny_flow()
            cps = {f"c{i}": Checkpoint("h1", "menu", {"n": i}, metadata={}) for i in range(3)}
            for cid, cp in cps.items():
                await a.begin(cid, flow, "h1")
                a.save(cid, cp)
            await a.flush()
            await b.publish(flow, "h1")  # once per process, as at a worker's start-up

            assert await a.claim_end("c2") is True  # a ended c2 before it died: not resumed

            await round_trips()
            await b.prefetch([*cps, "c-new"])  # c-new has no checkpoint: a new call
            got = {cid: await b.begin(cid, flow, "h1") for cid in cps}
            claimed = {cid: await b.end_claimed_elsewhere(cid) for cid in cps}
            # the MGET, and at most the writer's tick (in the background: the moved entries)
            assert await round_trips() <= 2
            assert got == {cid: (cp, None) for cid, cp in cps.items()}
            assert claimed == {"c0": False, "c1": False, "c2": True}

            await b.flush()
            await round_trips()
            assert await b.begin("c-new", flow, "h1") == (None, None)  # not prefetched: a read
            assert await round_trips() >= 1

            await b.flush()  # the moved entries, with the writer's tick
            for _ in range(200):
                entries = {e.id: e for e in await b.call_entries()}
                if all(entries[cid].worker == "b" for cid in cps):
                    break
                await asyncio.sleep(0.02)
            assert {cid: (entries[cid].worker, entries[cid].state) for cid in cps} == {
                cid: ("b", "menu") for cid in cps
            }
            assert {cid: await b.checkpoint(cid) for cid in cps} == cps
            assert await b.begin("c0", flow, "h1") == (cps["c0"], None)  # read again: not kept
