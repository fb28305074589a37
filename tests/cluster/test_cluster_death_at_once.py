"""A killed worker is seen gone at once when all its Redis connections closed together (the
liveness one and its named others, ``<prefix>conn:<id>``: voxflow.cluster.liveness), with no
confirmation window; a live worker whose liveness connection alone drops (being re-opened)
keeps its name. Real redis-server; the holder is a process killed with ``kill -9``. The
standbys' confirmation window is set to 60 s, so only the at-once test can decide within it."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from _cluster_kit import running_redis

from voxflow.cluster import ClusterState, liveness
from voxflow.cluster.liveness import LivenessLink, conn_name, live_name

HOLDER = """
import asyncio, sys
from voxflow.cluster import ClusterState

async def main():
    async with ClusterState(sys.argv[1], worker_id="a", heartbeat=0.2, worker_ttl=10.0) as a:
        await a.hold_app("voxflow")
        print("held", flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


async def _holder(url: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, url, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"held\n"
    return proc


async def _names(state: ClusterState) -> list[str]:
    return [str(c.get("name", "")) for c in await state.redis.client_list()]


async def _connected(state: ClusterState, want: set[str]) -> None:
    """Until Redis shows connections named ``want`` (the liveness link opens in the
    background), at most 30 s."""
    for _ in range(1500):
        if want <= set(await _names(state)):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no connections named {want}: {await _names(state)}")


async def _link(state: ClusterState, name: str) -> str:
    """The id of the connection named ``name`` once Redis shows it (at most 30 s)."""
    await _connected(state, {name})
    clients = await state.redis.client_list()
    return str(next(c["id"] for c in clients if c.get("name") == name))


async def test_a_dropped_liveness_connection_is_reopened_after_50_ms_each_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The re-open wait doubles only while re-opening fails: a connection that re-opened and
    was dropped again waits 50 ms again (the waits asked for, not the time taken)."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    monkeypatch.setattr(liveness, "asyncio", SimpleNamespace(sleep=sleep))
    async with running_redis(tmp_path) as rs, ClusterState(rs.url, worker_id="b") as b:
        link = LivenessLink(rs.url, "voxflow:", "a", every=10.0)  # no BLPOP returns meanwhile
        running = asyncio.ensure_future(link.run(lambda: False))
        try:
            for n in range(1, 5):
                await b.redis.execute_command("CLIENT", "KILL", "ID", await _link(b, link.name))
                for _ in range(1500):
                    if len(waits) == n:
                        break
                    await asyncio.sleep(0.02)
            await _link(b, link.name)
            assert waits == [0.05] * 4
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await link.aclose()


async def test_a_killed_holder_is_gone_at_once_when_all_its_connections_closed(
    tmp_path: Path,
) -> None:
    async with running_redis(tmp_path) as rs, ClusterState(rs.url, worker_id="b") as b:
        b.deaths.confirm = 60.0
        proc = await _holder(rs.url)
        try:
            await _connected(b, {live_name("voxflow:", "a"), conn_name("voxflow:", "a")})
            standby = asyncio.ensure_future(b.hold_app("voxflow"))
            await asyncio.sleep(0.5)  # it lives: b has seen its named connections
            assert not standby.done()
        finally:
            proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            await proc.wait()
        await asyncio.wait_for(standby, 20)
        took = time.monotonic() - killed
        assert b.deaths.at_once == 1 and took < 10.0, took  # ~0.05 s; the window is 60 s
        assert await b.redis.get("voxflow:app:voxflow") == b"b"


async def test_a_live_holder_whose_liveness_connection_drops_keeps_its_name(
    tmp_path: Path,
) -> None:
    async with running_redis(tmp_path) as rs, ClusterState(rs.url, worker_id="b") as b:
        b.deaths.confirm = 60.0
        proc = await _holder(rs.url)
        try:
            # bounded here, not by pytest's 120 s: a stuck await then fails naming its line
            # (CI hung at standby.cancel() twice: a cancellation redis-py swallowed, now raised
            # by ClusterState._op: test_cluster_standby_cancel.py)
            async with asyncio.timeout(60):
                await _connected(b, {live_name("voxflow:", "a")})
                standby = asyncio.ensure_future(b.hold_app("voxflow"))
                await asyncio.sleep(0.3)
                for _ in range(5):  # its liveness connection killed again and again: re-opened
                    link = await _link(b, live_name("voxflow:", "a"))  # ~50 ms; more on a busy box
                    await b.redis.execute_command("CLIENT", "KILL", "ID", link)
                    await asyncio.sleep(0.2)
                assert not standby.done() and b.deaths.at_once == 0
                assert await b.redis.get("voxflow:app:voxflow") == b"a"
                standby.cancel()
                await asyncio.gather(standby, return_exceptions=True)
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
