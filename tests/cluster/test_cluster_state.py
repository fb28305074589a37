"""ClusterState over a real redis-server: registries, flow store, checkpoints, Redis down."""

from __future__ import annotations

import asyncio
from pathlib import Path

from _cluster_kit import TINY_FLOW, running_redis, start_redis, tiny_flow

from voxflow.cluster import ClusterState, node_app
from voxflow.compiler import compile_flow
from voxflow.runtime.checkpoint import Checkpoint, flow_hash


async def test_workers_register_beat_and_expire(tmp_path: Path) -> None:
    async with running_redis(tmp_path) as rs:
        # a lives (a TTL a loaded machine cannot miss); b beats once with a short TTL, then dies
        async with ClusterState(rs.url, worker_id="a", heartbeat=0.05, worker_ttl=5.0) as a:
            # (a TTL a loaded box reads the registry within: 0.3 s was missed at load 17)
            b = ClusterState(rs.url, worker_id="b", heartbeat=0.05, worker_ttl=2.0)
            await b.beat()  # b beats once, then dies: its entry expires with its TTL
            assert [w.id for w in await a.workers()] == ["a", "b"]
            await b.redis.aclose()
            if b._tick_link is not None:  # the connection its heartbeat went over
                await b._tick_link.aclose()
            for _ in range(500):
                if [w.id for w in await a.workers()] == ["a"]:
                    break
                await asyncio.sleep(0.02)
            assert [w.id for w in await a.workers()] == ["a"]
            await a.begin("call-1", tiny_flow(), "h")
            for _ in range(200):  # the next heartbeat carries the call count
                if (await a.workers())[0].calls == 1:
                    break
                await asyncio.sleep(0.02)
            assert (await a.workers())[0].calls == 1
        probe = ClusterState(rs.url, worker_id="probe")
        assert await probe.workers() == []  # a left the registry when it closed
        await probe.redis.aclose()


async def test_call_registry_and_checkpoint_move_and_end_once(tmp_path: Path) -> None:
    async with running_redis(tmp_path) as rs:
        async with (
            ClusterState(rs.url, worker_id="a") as a,
            ClusterState(rs.url, worker_id="b") as b,
        ):
            assert await a.begin("c1", tiny_flow(), "h1") == (None, None)
            cp = Checkpoint("h1", "menu", {"name": "Ann", "n": 2}, (("menu", "noinput", 1),),
                            (("f:3:5", 2),), {"k": "v"}, ("k",))  # fmt: skip
            a.save("c1", cp)
            for _ in range(200):
                if await a.checkpoint("c1") == cp:
                    break
                await asyncio.sleep(0.01)
            assert await a.checkpoint("c1") == cp
            [entry] = await a.call_entries()
            assert (entry.worker, entry.state, entry.flow_hash) == ("a", "menu", "h1")
            assert await b.begin("c1", tiny_flow(), "h2") == (
                cp,
                None,
            )  # b adopts the call: it resumes
            [entry] = await b.call_entries()
            assert (entry.worker, entry.state, entry.flow_hash) == ("b", "menu", "h1")
            assert await b.end("c1", "completed") is True
            assert await a.end("c1", "completed") is False  # counted once across the cluster
            assert await a.call_entries() == [] and await a.checkpoint("c1") is None


async def test_flows_are_content_addressed(tmp_path: Path) -> None:
    flow = tiny_flow()
    async with running_redis(tmp_path) as rs, ClusterState(rs.url) as a, ClusterState(rs.url) as b:
        h = await a.publish(flow)
        assert h == flow_hash(flow)
        fetched = await b.fetch(h)
        assert fetched == flow and flow_hash(fetched) == h
        assert await b.fetch("0" * 64) is None
        other = flow.model_copy(update={"name": "x"}).model_dump_json()
        await a.redis.set(f"voxflow:flow:{h}", other)
        assert await b.fetch(h) == flow  # fetched once, kept (content-addressed)
        async with ClusterState(rs.url) as c:
            assert await c.fetch(h) is None  # a flow that does not match its hash is refused
            assert c.errors == 1
        assert await a.release(flow, only_if_new=True) == h
        assert await b.redis.get("voxflow:current:tiny") == h.encode()
        v2 = flow.model_copy(update={"title": "version 2"})
        h2 = await b.release(v2, only_if_new=True)
        assert await b.redis.get("voxflow:current:tiny") == h.encode()  # not new: kept
        await b.release(v2)
        assert await b.redis.get("voxflow:current:tiny") == h2.encode() != h.encode()


async def test_redis_down_never_raises_and_is_counted(tmp_path: Path) -> None:
    rs = await start_redis(tmp_path / "r")
    state = ClusterState(rs.url, worker_id="a", heartbeat=0.05, log_every=0.0)
    await state.__aenter__()
    rs2 = None
    try:
        await state.begin("c1", tiny_flow(), "h")
        await rs.stop()  # Redis dies mid-call
        assert await state.begin("c2", tiny_flow(), "h") == (None, None)
        state.save("c1", Checkpoint("h", "menu", {}))
        await asyncio.sleep(0.1)
        assert await state.end("c1", "completed") is False
        assert await state.workers() == []
        assert state.errors >= 3
        attempts = []

        async def refused() -> None:
            attempts.append(1)
            raise ConnectionRefusedError("down")

        assert await state._op("probe", refused) is None
        assert len(attempts) == 1  # Redis known down: no retries (a call never waits for them)
        rs2 = await start_redis(tmp_path / "r2", port=rs.port)  # Redis is back
        errors = state.errors
        await state.beat()
        assert [w.id for w in await state.workers()] == ["a"] and state.errors == errors
    finally:
        await state.close()
        await rs.stop()
        if rs2 is not None:
            await rs2.stop()


async def test_one_worker_holds_an_app_name_the_others_stand_by(tmp_path: Path) -> None:
    async with running_redis(tmp_path) as rs:
        a = ClusterState(rs.url, worker_id="a", heartbeat=0.05, worker_ttl=0.3)
        async with a, ClusterState(rs.url, worker_id="b", heartbeat=0.05, worker_ttl=0.3) as b:
            await a.hold_app("voxflow")
            waiting = asyncio.ensure_future(b.hold_app("voxflow", poll=0.02))
            await asyncio.sleep(0.5)  # longer than the TTL: a's heartbeat keeps the hold
            assert not waiting.done()
            await a.release_app()  # a stops: b takes over at once
            await asyncio.wait_for(waiting, 5)
            assert await b.redis.get("voxflow:app:voxflow") == b"b"
            await a.hold_app("other")  # another app name is independent


async def test_calls_that_ended_while_no_worker_served_them_are_reaped(tmp_path: Path) -> None:
    flow = tiny_flow()
    async with running_redis(tmp_path) as rs:
        dead = ClusterState(rs.url, worker_id="dead", worker_ttl=0.3)  # never beats: dead
        await dead.hold_app("voxflow")
        for cid in ("hung-up", "alive", "mine"):
            await dead.begin(cid, flow, "h")
        other = ClusterState(rs.url, worker_id="other-node", worker_ttl=0.3)
        await other.hold_app("other")
        await other.begin("elsewhere", flow, "h")  # another app's call: not ours to judge
        await dead.redis.aclose()
        await other.redis.aclose()
        async with ClusterState(rs.url, worker_id="b", heartbeat=0.05, worker_ttl=0.3) as b:
            assert await b.reap(set()) == []  # b serves no app yet
            await asyncio.wait_for(b.hold_app("voxflow", poll=0.02), 5)
            await b.begin("mine", flow, "h")  # adopted by b
            assert await b.reap({"alive"}) == ["hung-up"]
            left = {e.id: e for e in await b.call_entries()}
            assert sorted(left) == ["alive", "elsewhere", "mine"]
            assert left["mine"].worker == "b" and left["elsewhere"].app == "other"
            assert await b.checkpoint("hung-up") is None

            async def channels() -> set[str]:
                return {"mine"}

            b.start_reaping(channels, every=0.02)  # stopped by b's close
            for _ in range(200):
                if "alive" not in {e.id for e in await b.call_entries()}:
                    break
                await asyncio.sleep(0.02)
            assert sorted(e.id for e in await b.call_entries()) == ["elsewhere", "mine"]


async def test_two_workers_racing_to_end_the_same_calls_end_each_once(tmp_path: Path) -> None:
    async with running_redis(tmp_path) as rs:
        async with (
            # timeouts no loaded machine reaches: a timed-out claim is granted (an end is never
            # lost), which is the "Redis down" rule tested below, not the race tested here
            ClusterState(rs.url, worker_id="a", socket_timeout=10.0) as a,
            ClusterState(rs.url, worker_id="b", socket_timeout=10.0) as b,
        ):
            ids = [f"race-{i}" for i in range(50)]
            got = await asyncio.gather(*(w.claim_end(c) for c in ids for w in (a, b)))
            for i in range(len(ids)):  # exactly one of the two won each call
                assert got[2 * i] != got[2 * i + 1]
            won_by_a = [c for c, g in zip(ids, got[::2], strict=True) if g]
            for c in ids:  # the winner's claim holds for it, the loser stays refused
                assert await a.claim_end(c) is (c in won_by_a)
                assert await b.claim_end(c) is (c not in won_by_a)
        await rs.stop()
        down = ClusterState(rs.url, worker_id="c")
        assert await down.claim_end("race-0")  # no Redis: the end is not lost
        await down.redis.aclose()


def test_the_app_name_is_held_per_asterisk_node_without_credentials() -> None:
    # two nodes whose dialplans both say Stasis(voxflow) each get their own serving worker
    assert node_app("http://u:secret@10.0.0.11:8088/ari", "voxflow") == "10.0.0.11:8088/voxflow"
    assert node_app("http://10.0.0.12:8088/ari", "voxflow") == "10.0.0.12:8088/voxflow"
    assert node_app("https://ast2.example/ari", "voxflow") == "ast2.example:443/voxflow"


async def test_while_redis_is_down_new_calls_keep_the_released_version(tmp_path: Path) -> None:
    mine = tiny_flow()  # this worker's file
    released = compile_flow(TINY_FLOW.replace('"done"', '"bye"'), "tiny.flow").flow
    assert released is not None
    rs = await start_redis(tmp_path / "r")
    try:
        async with ClusterState(rs.url, worker_id="w", log_every=1e9) as w:
            h = await w.release(released)
            assert (await w.begin("c1", mine, flow_hash(mine)))[1] == h
            await rs.stop()  # Redis down: the next call still takes the released version
            assert await w.begin("c2", mine, flow_hash(mine)) == (None, h)
            assert await w.flow(h) == released
    finally:
        await rs.stop()


async def test_a_call_that_ended_while_redis_was_down_leaves_the_registry_after(
    tmp_path: Path,
) -> None:
    flow = tiny_flow()
    rs = await start_redis(tmp_path / "r", aof=True, durable=True)  # keeps what it answered
    rs2 = None
    try:
        async with ClusterState(rs.url, worker_id="w", heartbeat=60, log_every=1e9) as w:
            await w.begin("c1", flow, "h")
            await rs.stop()
            assert await w.end("c1", "completed") is False  # Redis did not get it
            rs2 = await start_redis(tmp_path / "r", port=rs.port, aof=True, durable=True)
            assert [e.id for e in await w.call_entries()] == ["c1"]  # back from the AOF
            await w.beat()  # the next heartbeat that reaches Redis ends it there too
            assert await w.call_entries() == [] and await w.checkpoint("c1") is None
    finally:
        await rs.stop()
        if rs2 is not None:
            await rs2.stop()


async def test_the_serving_worker_takes_its_app_name_back_after_a_redis_outage(
    tmp_path: Path,
) -> None:
    async with running_redis(tmp_path) as rs:
        async with ClusterState(rs.url, worker_id="a", heartbeat=60, worker_ttl=30) as a:
            await a.hold_app("voxflow")
            await a.redis.delete("voxflow:app:voxflow")  # expired while Redis was unreachable
            await a.beat()  # a still serves the name: its next heartbeat holds it again
            assert await a.redis.get("voxflow:app:voxflow") == b"a"
            await a.redis.set("voxflow:app:voxflow", "b")  # a standby took it meanwhile
            await a.beat()
            assert await a.redis.get("voxflow:app:voxflow") == b"b"


async def _sets(state: ClusterState) -> int:
    """SET commands Redis has processed so far."""
    stats = await state.redis.info("commandstats")
    return int(stats.get("cmdstat_set", {}).get("calls", 0))


async def test_a_checkpoint_rewrites_the_registry_entry_only_when_its_state_changed(
    tmp_path: Path,
) -> None:
    rs = await start_redis(tmp_path / "r")
    a = ClusterState(rs.url, worker_id="a", log_every=0.0)  # a save goes at once; flush waits
    rs2 = None
    try:
        await a.begin("c1", tiny_flow(), "h1")
        before = await _sets(a)
        a.save("c1", Checkpoint("h1", "menu", {"n": 1}))
        await a.flush()
        assert await _sets(a) - before == 2  # the checkpoint and the entry (a new state)
        before = await _sets(a)
        a.save("c1", Checkpoint("h1", "menu", {"n": 2}))
        await a.flush()
        assert await _sets(a) - before == 1  # variables only: the entry stays as it is
        got = await a.checkpoint("c1")
        assert got is not None and got.variables == {"n": 2}
        await rs.stop()  # a write that fails: the next checkpoint rewrites the entry
        a.save("c1", Checkpoint("h1", "menu", {"n": 3}))
        await a.flush()
        assert a.errors == 1
        rs2 = await start_redis(tmp_path / "r2", port=rs.port)  # back, empty
        a.save("c1", Checkpoint("h1", "menu", {"n": 4}))
        await a.flush()
        [entry] = await a.call_entries()
        assert (entry.worker, entry.state, entry.flow_hash) == ("a", "menu", "h1")
    finally:
        await a.redis.aclose()
        await rs.stop()
        if rs2 is not None:
            await rs2.stop()


async def test_calls_ending_together_are_removed_in_one_write(tmp_path: Path) -> None:
    async with running_redis(tmp_path) as rs:
        a = ClusterState(rs.url, worker_id="a")
        try:
            ids = [f"c{i}" for i in range(10)]
            for cid in ids:
                await a.begin(cid, tiny_flow(), "h1")
                a.save(cid, Checkpoint("h1", "menu", {}))
            await a.flush()
            stats = await a.redis.info("commandstats")
            before = int(stats["cmdstat_evalsha"]["calls"])
            ends = await asyncio.gather(*(a.end(cid, "completed") for cid in ids))
            assert ends == [True] * 10
            stats = await a.redis.info("commandstats")
            assert int(stats["cmdstat_evalsha"]["calls"]) - before <= 2  # the first, the rest
            assert await a.call_entries() == [] and await a.checkpoint("c3") is None
            assert await asyncio.gather(*(a.end(cid, "completed") for cid in ids[:2])) == [
                False,
                False,
            ]
        finally:
            await a.redis.aclose()
