"""A real redis-server for the cluster tests: started on a free 127.0.0.1 port in a temp dir."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from voxflow.cluster import ClusterState
from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.sandbox.server import Sandbox
from voxflow.telephony.app import VoxtraApp


@dataclass
class RedisServer:
    """A running redis-server: its URL and process."""

    url: str
    port: int
    proc: asyncio.subprocess.Process

    async def stop(self) -> None:
        """Kill it (as if the Redis host died)."""
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_redis(tmp: Path, port: int | None = None) -> RedisServer:
    """Start redis-server (no persistence) and wait until it answers PING."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail(
            "redis-server is not installed: `apt-get install -y redis-server` (see .ci/run)"
        )
    port = port or _free_port()
    await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp),
        "--save", "", "--appendonly", "no",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = aioredis.Redis.from_url(url)
    try:
        for _ in range(500):
            try:
                if await client.ping():
                    return RedisServer(url, port, proc)
            except (RedisError, OSError):
                if proc.returncode is not None:
                    break
                await asyncio.sleep(0.01)
        proc.kill()
        await proc.wait()
        pytest.fail(f"redis-server did not start on 127.0.0.1:{port}")
    finally:
        await client.aclose()


@asynccontextmanager
async def running_redis(tmp: Path) -> AsyncIterator[RedisServer]:
    """A redis-server for the block."""
    server = await start_redis(tmp / "redis")
    try:
        yield server
    finally:
        await server.stop()


async def until(cond: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Wait (real seconds, polling the loop) until ``cond()``; fail with ``what`` otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def worker(
    sb: Sandbox, flow: Path, state: ClusterState, *, settings: Settings | None = None
) -> AsyncIterator[FlowServer]:
    """An in-process worker (VoxtraApp + FlowServer in cluster mode) serving ``flow`` on the
    sandbox's app ``voxflow`` until the block exits; yields once its start-up sweep is done."""
    reg = FlowRegistry()
    reg.load([flow])
    kw: dict[str, Any] = {"event_wait": 2.0, "reconnect_initial": 0.05, "reconnect_max": 0.2}
    app = VoxtraApp(sb.ari_url, sb.user, sb.password, "voxflow", **kw)
    server = FlowServer(app, reg, settings or Settings(grace_period=2), store=state)
    stop = asyncio.Event()
    task = asyncio.ensure_future(server.serve(stop))
    try:
        await sb.wait_app("voxflow", 20)
        await until(lambda: app.sweeps > 0 or task.done(), 20, "worker started")
        if task.done():
            task.result()
        yield server
    finally:
        stop.set()
        await task
