"""The writer's ticks over a real redis-server: the starts, end claims, checkpoints and ends of
many calls share one script call, and each call still gets its own answer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from _cluster_kit import running_redis, start_redis, tiny_flow

import voxflow.cluster.state as cluster_state
from voxflow.cluster import ClusterState
from voxflow.runtime.checkpoint import Checkpoint


async def _scripts(state: ClusterState) -> int:
    """Script calls (EVALSHA) Redis has processed so far."""
    stats = await state.redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


@pytest.mark.parametrize("link", [True, False], ids=["script-link", "redis-py"])
async def test_starts_claims_checkpoints_and_ends_of_many_calls_share_ticks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link: bool
) -> None:
    if not link:  # a URL ScriptLink does not take (rediss://, unix://): redis-py runs the ticks
        monkeypatch.setattr(cluster_state, "supported", lambda url: False)
    async with running_redis(tmp_path) as rs:
        # no writer task (no `async with`): each call's own flush sends the queued tick
        a = ClusterState(rs.url, worker_id="a", socket_timeout=10.0)
        b = ClusterState(rs.url, worker_id="b", socket_timeout=10.0)
        assert (a._tick_link is not None) is link
        try:
            flow = tiny_flow()
            current = await b.release(flow)
            await b.begin("c0", flow, current)  # c0 ran on b: a resumes it
            resumed = Checkpoint(current, "menu", {"n": 7}, metadata={})
            b.save("c0", resumed)
            await b.flush()
            await a.publish(flow, current)
            ids = [f"c{i}" for i in range(10)]

            before = await _scripts(a)
            began = await asyncio.gather(*(a.begin(cid, flow, current) for cid in ids))
            assert await _scripts(a) - before <= 3  # the first start, the rest (+ c0's entry)
            assert began[0] == (resumed, current)  # the resumed call got its checkpoint
            assert began[1:] == [(None, current)] * 9  # the new ones the current version
            entries = {e.id: e for e in await a.call_entries()}
            assert sorted(entries) == sorted(ids)
            assert {e.worker for e in entries.values()} == {"a"}
            assert entries["c0"].state == "menu"

            assert await b.claim_end("c9")  # c9's end was claimed by b (a race after a split)
            hooks = {cid: (f"{cid}:call.ended", b'{"n":1}') for cid in ids[5:9]}
            before = await _scripts(a)
            for i, cid in enumerate(ids[:5]):
                a.save(
                    cid, Checkpoint(current, "menu" if i % 2 else "goodbye", {"i": i}, metadata={})
                )
            claimed = await asyncio.gather(
                a.flush(), *(a.claim_end(cid, hooks.get(cid)) for cid in ids[5:])
            )
            assert await _scripts(a) - before <= 2
            assert claimed[1:] == [True, True, True, True, False]
            assert await a.checkpoint("c4") == Checkpoint(current, "goodbye", {"i": 4}, metadata={})
            entries = {e.id: e for e in await a.call_entries()}
            assert [entries[c].state for c in ids[:5]] == ["goodbye", "menu"] * 2 + ["goodbye"]
            outbox = await a.redis.hgetall(a.outbox.key)
            assert sorted(k.decode() for k in outbox if isinstance(k, bytes)) == sorted(
                hooks
            )  # not c9: b's end
            assert {json.loads(v)["worker"] for v in outbox.values()} == {"a"}
            assert a.outbox.claimed == hooks

            before = await _scripts(a)
            ended = await asyncio.gather(
                *(a.end(cid, "completed") for cid in ids), *(a.outbox.done(c) for c in hooks)
            )
            assert await _scripts(a) - before <= 2
            assert ended[:10] == [True] * 10 and a.calls == {}
            assert await a.call_entries() == [] and await a.checkpoint("c0") is None
            assert await a.redis.hlen(a.outbox.key) == 0
            assert await b.claim_end("c5") is False  # a's end claims stay a's
        finally:
            await a.close()
            await b.close()


async def test_a_tick_redis_does_not_answer_gives_every_waiter_the_redis_down_answer(
    tmp_path: Path,
) -> None:
    rs = await start_redis(tmp_path / "r")
    a = ClusterState(rs.url, worker_id="a", log_every=0.0)
    try:
        flow = tiny_flow()
        h = await a.release(flow)
        await a.begin("c1", flow, h)
        await rs.stop()  # Redis dies with calls in progress
        a.save("c1", Checkpoint(h, "menu", {}))
        held = a.outbox.hold("c2:call.started", "c2:call.started", b"{}", "call.started", "c2")
        got = await asyncio.wait_for(
            asyncio.gather(
                a.flush(),
                a.begin("c2", flow, h),
                a.claim_end("c1", ("k", b"{}")),
                a.end("c3", "x"),
                held,
            ),
            15,
        )
        # a start reads nothing (the last current version seen), a claim is granted (an end
        # is never lost for want of Redis), an end did not remove anything, a held webhook
        # goes on to be sent
        assert list(got[1:]) == [(None, h), True, False, None]
        assert a.errors >= 1 and a.checkpoints == 0
        assert a.outbox.claimed == {}  # not in the outbox: the call.ended goes out as before
    finally:
        await a.close()
        await rs.stop()


async def test_an_end_rides_with_the_next_tick_of_another_call(tmp_path: Path) -> None:
    async with running_redis(tmp_path) as rs:
        a = ClusterState(rs.url, worker_id="a", socket_timeout=10.0)
        a.writes.linger = 30.0  # no tick of its own within the test: another call's carries it
        try:
            flow = tiny_flow()
            h = await a.publish(flow)
            await a.begin("c1", flow, h)
            await a.claim_end("c1", ("c1:call.ended", b"{}"))
            before = await _scripts(a)
            ending = asyncio.ensure_future(a.end("c1", "completed"))
            dropping = asyncio.ensure_future(a.outbox.done("c1"))
            await asyncio.sleep(0.05)
            assert not ending.done() and not dropping.done()  # lingering: nothing sent yet
            assert await _scripts(a) - before == 0
            await a.begin("c2", flow, h)  # the next call's start: one tick for all three
            assert await asyncio.wait_for(ending, 10) is True
            await asyncio.wait_for(dropping, 10)
            assert await _scripts(a) - before == 1
            assert [e.id for e in await a.call_entries()] == ["c2"]
            assert await a.redis.hlen(a.outbox.key) == 0
            a.writes.linger = 0.05  # alone, an end goes by itself once its linger is over
            assert await asyncio.wait_for(a.end("c2", "completed"), 10) is True
            assert await a.call_entries() == []
        finally:
            await a.close()


async def test_webhooks_held_before_sending_ride_the_ticks_of_the_calls_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_redis(tmp_path) as rs:
        a = ClusterState(rs.url, worker_id="a", socket_timeout=10.0)

        async def own_command(*args: object) -> None:
            raise AssertionError("a held webhook sent a command of its own")

        monkeypatch.setattr(a.redis, "hset", own_command)
        try:
            flow = tiny_flow()
            h = await a.publish(flow)
            ids = [f"c{i}" for i in range(4)]
            keys = {cid: f"{cid}:call.started" for cid in ids}
            before = await _scripts(a)
            await asyncio.gather(
                *(a.begin(cid, flow, h) for cid in ids),
                *(a.outbox.hold(k, k, b"{}", "call.started", cid) for cid, k in keys.items()),
            )
            assert await _scripts(a) - before <= 2  # the first start, then the rest at once
            outbox = {
                k.decode(): json.loads(v) for k, v in (await a.redis.hgetall(a.outbox.key)).items()
            }
            assert sorted(outbox) == sorted(keys.values())
            assert {(e["worker"], e["event"]) for e in outbox.values()} == {("a", "call.started")}
            assert sorted(e["call"] for e in outbox.values()) == ids
            await asyncio.gather(*(a.outbox.done(k) for k in keys.values()))  # delivered
            assert await a.redis.hlen(a.outbox.key) == 0
        finally:
            await a.close()
