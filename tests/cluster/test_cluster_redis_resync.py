"""Redis comes back (restarted, empty or with its append-only file) while calls wait in a state:
each call's latest checkpoint and registry entry are written again at once, not only at its
next state change (a worker killed in between would have left its calls with no checkpoint,
or with one a state behind: resumed there, or not at all)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from _cluster_kit import checkpointed, checkpointed_at, start_redis, until, worker

from voxflow.cluster import ClusterState
from voxflow.sandbox.server import Sandbox

FLOW = """\
flow twomenus "two menus":
    answers "100"

var picked: string = "none"

state start:
    answer
    menu "Press 1." timeout 60s:
        1 -> second
        on noinput, nomatch -> second

state second:
    set picked = "one"
    menu "Press 2." timeout 60s:
        2 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"
"""


async def until_async(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    """Until ``check()`` answers True; fail after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {check}")
        await asyncio.sleep(0.02)


async def _registered(r: aioredis.Redis, call_id: str, state: str) -> bool:
    raw = await r.get(f"voxflow:call:{call_id}")
    return raw is not None and f'"state":"{state}"' in raw.decode()


@pytest.mark.parametrize("aof", [False, True], ids=["empty", "aof"])
async def test_a_checkpoint_redis_missed_is_written_once_it_is_back(
    tmp_path: Path, aof: bool
) -> None:
    flow = tmp_path / "two.flow"
    flow.write_text(FLOW)
    rs = await start_redis(tmp_path / "r", aof=aof, durable=aof)
    rs2 = None
    try:
        async with (
            Sandbox(port=0, preload_sounds=False) as sb,
            ClusterState(rs.url, worker_id="w", log_every=0.0, heartbeat=0.2) as state,
            worker(sb, flow, state) as server,
        ):
            call = await sb.place_call(from_="+15550100", to="100")
            await checkpointed_at(rs.url, call.id, "start", 10)
            await rs.stop()  # Redis dies with the call in its first menu
            ticks = state.writes.ticks
            await call.press("1")  # the call goes on: its checkpoint in "second" is not written
            driver = server.drivers[call.id]
            await until(lambda: driver.state.state_name == "second", 10, "the second menu")
            await until(lambda: _written(state, ticks), 10, "the second menu's tick failed")
            rs2 = await start_redis(tmp_path / "r", port=rs.port, aof=aof)  # the same dir
            r = aioredis.Redis.from_url(rs2.url)
            try:  # written again without the call changing state
                await checkpointed(r, call.id, "second", 5, picked="one")
                await until_async(lambda: _registered(r, call.id, "second"), 5)
            finally:
                await r.aclose()
            await call.press("2")
            await call.wait_hangup(10)
            await until(lambda: call.id in server.results, 10, "the call's end")
            assert server.results[call.id].outcome == "completed"
            await until_async(lambda: _gone(state, call.id), 5)
    finally:
        await rs.stop()
        if rs2 is not None:
            await rs2.stop()


async def test_a_redis_restarted_between_two_writes_gets_the_calls_again(tmp_path: Path) -> None:
    """No write of the call failed (none was due while Redis was down): the heartbeat finds
    the worker's own entry gone and has every call written again, with the flow versions."""
    flow = tmp_path / "two.flow"
    flow.write_text(FLOW)
    rs = await start_redis(tmp_path / "r")
    rs2 = None
    try:
        async with (
            Sandbox(port=0, preload_sounds=False) as sb,
            ClusterState(rs.url, worker_id="w", log_every=0.0, heartbeat=0.2) as state,
            worker(sb, flow, state) as server,
        ):
            await state.release(server.registry.versions()[0].flow)
            call = await sb.place_call(from_="+15550100", to="100")
            await checkpointed_at(rs.url, call.id, "start", 10)
            await rs.stop()
            rs2 = await start_redis(tmp_path / "r2", port=rs.port)  # back at once, empty
            r = aioredis.Redis.from_url(rs2.url)
            try:
                await checkpointed(r, call.id, "start", 5)
                await until_async(lambda: _registered(r, call.id, "start"), 5)
                cp = await state.checkpoint(call.id)  # its version, for a resumed call
                assert cp is not None and await state.fetch(cp.flow_hash) is not None

                async def versions_back() -> bool:
                    current = await r.get("voxflow:current:twomenus")
                    stored = await r.exists(f"voxflow:flow:{cp.flow_hash}")
                    return bool(stored) and current == cp.flow_hash.encode()

                await until_async(versions_back, 5)
            finally:
                await r.aclose()
            await call.hangup()
            await until_async(lambda: _gone(state, call.id), 10)
    finally:
        await rs.stop()
        if rs2 is not None:
            await rs2.stop()


def _written(state: ClusterState, ticks: int) -> bool:
    """A tick after ``ticks`` was sent and answered (or failed), and none waits."""
    sender = state.writes._sender
    done = sender is None or sender.done()
    return state.writes.ticks > ticks and done and not state.writes.pending()


async def _gone(state: ClusterState, call_id: str) -> bool:
    """Neither the call's registry entry nor its checkpoint is in Redis."""
    entries = {e.id for e in await state.call_entries()}
    return call_id not in entries and await state.checkpoint(call_id) is None


async def test_a_stalled_redis_delays_no_call_and_gets_the_latest_checkpoints(
    tmp_path: Path,
) -> None:
    """Redis stalls (SIGSTOP: writes time out, and Redis runs them all when it resumes, in
    no set order): the call moves on and a new call is answered meanwhile; once Redis answers,
    the call's latest checkpoint is what Redis holds, and the ended call leaves no trace."""
    flow = tmp_path / "two.flow"
    flow.write_text(FLOW)
    rs = await start_redis(tmp_path / "r")
    try:
        async with (
            Sandbox(port=0, preload_sounds=False) as sb,
            ClusterState(
                rs.url, worker_id="w", log_every=0.0, heartbeat=0.2, socket_timeout=0.2
            ) as state,
            worker(sb, flow, state) as server,
        ):
            call = await sb.place_call(from_="+15550100", to="100")
            r = aioredis.Redis.from_url(rs.url)
            try:
                await checkpointed(r, call.id, "start", 10)
                rs.proc.send_signal(signal.SIGSTOP)
                try:
                    ticks = state.writes.ticks
                    await call.press("1")
                    driver = server.drivers[call.id]
                    await until(lambda: driver.state.state_name == "second", 10, "second menu")
                    await until(lambda: _written(state, ticks), 10, "the tick timed out")
                    other = await sb.place_call(from_="+15550101", to="100")
                    await other.wait_for("answered", 10)  # a new call is not held up
                    await other.hangup()
                    await until(lambda: other.id in server.results, 10, "the other call's end")
                finally:
                    rs.proc.send_signal(signal.SIGCONT)
                await checkpointed(r, call.id, "second", 5, picked="one")
                await until_async(lambda: _registered(r, call.id, "second"), 5)
                await until_async(lambda: _gone(state, other.id), 5)
            finally:
                await r.aclose()
            await call.press("2")
            await call.wait_hangup(10)
            await until_async(lambda: _gone(state, call.id), 5)
            assert server.results[call.id].outcome == "completed"
            assert await state.call_entries() == []
    finally:
        await rs.stop()
