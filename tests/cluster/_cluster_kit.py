"""What the cluster tests share: a real redis-server (started on a free 127.0.0.1 port in a temp
dir), in-process and subprocess workers, a webhook receiver, and the menu flow that the failover
tests interrupt past its first state."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import forked
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from http_kit import local_http
from redis.exceptions import RedisError

from voxflow.cluster import ClusterState
from voxflow.compiler import compile_flow
from voxflow.ir.models import Flow
from voxflow.runtime.checkpoint import Checkpoint
from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.sandbox.server import Sandbox
from voxflow.telephony.app import VoxtraApp

MENU_FLOW = """\
flow failover "resumes where it was":
    answers "100"

var picked: string = "none"

state start:
    answer
    play "sound:hello-world"
    set picked = "early"
    goto menu

state menu:
    play "sound:vm-login"
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    if picked == "early":
        play "sound:goodbye"
    hangup "done"
"""
"""A call waits in ``menu`` with ``picked`` set by ``start``: a resumed call replays vm-login."""


TINY_FLOW = """\
flow tiny "a tiny flow":
    answers "100"

state start:
    answer
    hangup "done"
"""


def tiny_flow() -> Flow:
    """:data:`TINY_FLOW` compiled (a flow to store, route and checkpoint against)."""
    flow = compile_flow(TINY_FLOW, "tiny.flow").flow
    assert flow is not None
    return flow


def played(sb: Sandbox, cid: str) -> list[str]:
    """The sounds the caller heard start, in order (the one A started, cut by nobody, ends
    before B's queued replay starts, as on Asterisk)."""
    exp = sb.calls[cid].experience()
    return [str(e["uri"]) for e in exp if e["type"] == "playback" and e["state"] == "playing"]


async def line_matching(stream: asyncio.StreamReader, pattern: str) -> re.Match[str]:
    """The first line of a worker's ``stream`` matching ``pattern`` (fails after 60 s)."""
    async with asyncio.timeout(60):
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"the worker exited before printing {pattern!r}")
            m = re.search(pattern, line)
            if m:
                return m


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


async def start_redis(
    tmp: Path, port: int | None = None, *, aof: bool = False, durable: bool = False
) -> RedisServer:
    """Start redis-server and wait until it answers PING. No persistence unless ``aof``
    (append-only file in ``tmp``: a restart in the same directory keeps the data, but a kill
    may lose the last second of writes). ``durable``: each write is fsynced before its reply,
    so a kill loses nothing answered (~6 ms a write on a loaded disk, against ~0.1)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail(
            "redis-server is not installed: `apt-get install -y redis-server` (see .ci/run)"
        )
    port = port or _free_port()
    await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp),
        "--save", "", "--appendonly", "yes" if aof else "no",
        # everysec (the default) postpones writing while a background fsync is slow (a loaded
        # disk): an answered write can be lost to a kill
        "--appendfsync", "always" if durable else "everysec",
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


async def workers_registered(r: aioredis.Redis, n: int, timeout: float = 60.0) -> None:
    """Until ``n`` workers are in the registry; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len([k async for k in r.scan_iter(match="voxflow:worker:*")]) != n:
        if loop.time() > deadline:
            raise AssertionError(f"{n} workers never were in the registry together")
        await asyncio.sleep(0.02)


async def checkpointed(
    r: aioredis.Redis, call_id: str, state: str, timeout: float = 60.0, **variables: object
) -> None:
    """Until the call's checkpoint is ``state`` with ``variables``; fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        raw = await r.get(f"voxflow:checkpoint:{call_id}")
        if raw is not None:
            cp = Checkpoint.from_json(raw)
            if cp.state == state and all(cp.variables.get(k) == v for k, v in variables.items()):
                return
        if loop.time() > deadline:
            raise AssertionError(f"call {call_id} never checkpointed in {state} with {variables}")
        await asyncio.sleep(0.02)


async def checkpointed_at(
    url: str, call_id: str, state: str, timeout: float = 60.0, **variables: object
) -> None:
    """:func:`checkpointed` over a client of its own to the Redis at ``url``."""
    r = aioredis.Redis.from_url(url)
    try:
        await checkpointed(r, call_id, state, timeout, **variables)
    finally:
        await r.aclose()


async def outbox_empty(r: aioredis.Redis, timeout: float = 30.0) -> None:
    """Until no webhook waits in the outbox; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await r.hlen("voxflow:outbox"):
        if loop.time() > deadline:
            raise AssertionError(f"the outbox still holds {await r.hgetall('voxflow:outbox')}")
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


async def worker_process(
    sb: Sandbox,
    flows: Path,
    redis_url: str,
    config: Path,
    webhook_url: str | None = None,
    *,
    fault: str | None = None,
    ari_url: str | None = None,
    log: Path | None = None,
) -> forked.Forked:
    """``voxflow run FLOWS --redis URL --no-audio`` on the sandbox (or ``ari_url``: a node
    list), in its own process (the test may SIGKILL it); its settings file is ``config``, its
    log goes to ``log`` or next to it (``worker-<ns>.log``, kept by pytest's tmp_path for a
    failure's post-mortem). ``fault``: the process kills itself at that fault point
    (``VOXFLOW_FAULT``, :mod:`voxflow.faults`). Forked from a process that has imported
    voxflow (:mod:`forked`: ~1.2 s of CPU less per worker)."""
    env = {**os.environ, "VOXFLOW_ARI_PASSWORD": sb.password}
    env.pop("VOXFLOW_WEBHOOK_URL", None)
    env.pop("VOXFLOW_FAULT", None)
    if fault:
        env["VOXFLOW_FAULT"] = fault
    if webhook_url:
        env["VOXFLOW_WEBHOOK_URL"] = webhook_url
    log = log or config.parent / f"worker-{time.monotonic_ns()}.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        return await forked.spawn(
            "run", str(flows),
            "--ari-url", ari_url or sb.ari_url, "--ari-user", sb.user, "--redis", redis_url,
            "--no-audio",
            "--config", str(config), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=fd,
        )  # fmt: skip
    finally:
        os.close(fd)


Got = list[tuple[str, str, str, bytes]]
"""What a :func:`post_recorder` got: (path, X-Voxflow-Event, Idempotency-Key, body) per POST."""


@asynccontextmanager
async def post_recorder(
    answer: Callable[[str, Got], dict[str, Any]] = lambda path, got: {},
    check: Callable[[web.Request, bytes], None] = lambda request, body: None,
    status: Callable[[], int] = lambda: 200,
) -> AsyncIterator[tuple[str, Got]]:
    """An HTTP server on 127.0.0.1 recording every POST (any path) in order; each is ``check``ed
    (e.g. a webhook's signature) and answered with ``answer(path, got so far)`` as JSON, with
    the HTTP status ``status()``."""
    got: Got = []

    async def any_post(request: web.Request) -> web.Response:
        body = await request.read()
        check(request, body)
        h = request.headers
        got.append((request.path, h.get("X-Voxflow-Event", ""), h.get("Idempotency-Key", ""), body))
        return web.json_response(answer(request.path, got), status=status())

    async with local_http("/{tail:.*}", any_post) as base:
        yield base, got


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """An HTTP server on 127.0.0.1 collecting the webhooks' JSON bodies (each with its
    ``Idempotency-Key`` as ``_key``: see :func:`by_key`)."""
    got: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        body["_key"] = request.headers.get("Idempotency-Key", "")
        got.append(body)
        return web.Response(status=204)

    async with local_http("/hooks", hook) as base:
        yield f"{base}/hooks", got


def by_key(hooks: list[dict[str, Any]], event: str) -> Counter[str]:
    """Per call id, its ``event`` webhooks as a receiver that drops repeats by
    ``Idempotency-Key`` counts them (a worker killed after the receiver's 2xx but before
    removing its outbox entry has it sent again, with the same key: docs/deploy.md)."""
    keyed = {(str(h["call_id"]), str(h.get("_key", ""))) for h in hooks if h["event"] == event}
    return Counter(call for call, _ in keyed)
