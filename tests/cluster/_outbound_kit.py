"""Worker processes in the outbound-websocket modes behind HAProxy, for the cluster tests.

``voxflow run --ari-mode per_call|persistent --listen --redis --metrics-port`` in its own process
(killed with SIGKILL by the tests), HAProxy (Debian's package) with docs/deploy/haproxy.cfg
(addresses changed; health-checked on each worker's /readyz).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import forked
from _cluster_kit import (
    MENU_FLOW,
    _free_port,
    by_key,
    line_matching,
    played,
    running_redis,
    until,
    webhook_receiver,
)

from voxflow.cluster import ClusterState
from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.sandbox import SimCall
from voxflow.sandbox.outbound import OutboundWebsocket
from voxflow.sandbox.server import Sandbox
from voxflow.telephony.app import VoxtraApp

CONFIG = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "haproxy.cfg"
WS_USER, WS_PASSWORD = "asterisk", "ws-secret"


@dataclass
class WorkerProc:
    """A worker process: its id in the registry, websocket port and metrics URL."""

    proc: forked.Forked
    worker_id: str
    port: int
    metrics: str
    drain: asyncio.Task[None]
    out: list[str]

    async def kill(self) -> None:
        """kill -9: the kernel closes its sockets; nothing is cleaned up."""
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        self.drain.cancel()
        await asyncio.gather(self.drain, return_exceptions=True)

    async def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit (its stdout read to the end); returns the exit code."""
        self.proc.terminate()
        rc = await asyncio.wait_for(self.proc.wait(), timeout)
        await asyncio.wait_for(self.drain, timeout)
        return rc


async def _accepting(port: int) -> None:
    """Wait until 127.0.0.1:``port`` accepts connections (the worker's websocket server)."""
    async with asyncio.timeout(60):
        while True:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                await writer.wait_closed()
                return
            await asyncio.sleep(0.05)


async def _collect(stream: asyncio.StreamReader, out: list[str]) -> None:
    while line := await stream.readline():
        out.append(line.decode(errors="replace"))


async def start_worker(
    flow: Path,
    mode: str,
    redis_url: str,
    tmp: Path,
    *,
    webhook_url: str = "",
    drain: str = "finish",
    fault: str = "",
    cluster: str = "",
) -> WorkerProc:
    """``voxflow run`` in ``mode`` listening on a free 127.0.0.1 port; waits until it is ready.
    ``fault``: its ``VOXFLOW_FAULT`` (:mod:`voxflow.faults`); ``cluster``: more lines of its
    ``[cluster]`` settings."""
    port = _free_port()
    await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
    config = tmp / "voxflow.toml"
    config.write_text(f'[cluster]\nfailover_ttl = 1.0\ndrain = "{drain}"\n{cluster}')
    env = {**os.environ, "VOXFLOW_ARI_PASSWORD": WS_PASSWORD, "PYTHONUNBUFFERED": "1"}
    env.pop("VOXFLOW_FAULT", None)
    if fault:
        env["VOXFLOW_FAULT"] = fault
    if webhook_url:
        env["VOXFLOW_WEBHOOK_URL"] = webhook_url
    with (tmp / "stderr.log").open("wb") as log:  # the worker's own log, for a failing test
        proc = await forked.spawn(
            "run", str(flow),
            "--ari-mode", mode, "--listen", f"127.0.0.1:{port}", "--ari-user", WS_USER,
            "--redis", redis_url, "--no-audio", "--metrics-port", "0", "--config", str(config),
            env=env, stdout=asyncio.subprocess.PIPE, stderr=log,
        )  # fmt: skip
    assert proc.stdout is not None
    try:
        worker_id = (await line_matching(proc.stdout, r"cluster mode: worker (\S+)"))[1]
        metrics = (
            await line_matching(proc.stdout, r"metrics on (http://127\.0\.0\.1:\d+)/metrics")
        )[1]
        await line_matching(proc.stdout, r"^serving ")
        await _accepting(port)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    out: list[str] = []
    reader = asyncio.ensure_future(_collect(proc.stdout, out))
    return WorkerProc(proc, worker_id, port, metrics, reader, out)


@contextlib.asynccontextmanager
async def workers(
    n: int,
    flow: Path,
    mode: str,
    redis_url: str,
    tmp: Path,
    *,
    webhook_url: str = "",
    drain: str = "finish",
    fault_first: str = "",
    cluster: str = "",
) -> AsyncIterator[list[WorkerProc]]:
    """``n`` worker processes (started one after the other), killed when the block exits;
    ``fault_first``: the first one's ``VOXFLOW_FAULT``."""
    procs: list[WorkerProc] = []
    try:
        for i in range(n):
            fault = "" if i else fault_first
            w = await start_worker(
                flow, mode, redis_url, tmp / f"w{i}", webhook_url=webhook_url, drain=drain,
                fault=fault, cluster=cluster,
            )  # fmt: skip
            procs.append(w)
        yield procs
    finally:
        for w in procs:
            await w.kill()


@contextlib.asynccontextmanager
async def haproxy(tmp: Path, ws: list[WorkerProc]) -> AsyncIterator[int]:
    """HAProxy with docs/deploy/haproxy.cfg on a free port, the workers as its servers (each
    checked on its /readyz every 200 ms, down after 3 failed checks); yields once it listens."""
    exe = shutil.which("haproxy", path="/usr/sbin:/usr/bin:/sbin:/bin")
    assert exe is not None, "haproxy is not installed (apt-get install haproxy; see .ci/run)"
    port = _free_port()
    text = CONFIG.read_text()
    text = re.sub(r"(?m)^(\s*)bind 0\.0\.0\.0:8765$", rf"\1bind 127.0.0.1:{port}", text)
    text = re.sub(r"(?m)^\s*(server w\d|default-server) .*\n", "", text)
    text += "".join(
        f"    server w{i} 127.0.0.1:{w.port} check port {w.metrics.rsplit(':', 1)[1]}"
        " inter 200ms fall 3 rise 1\n"  # one slow check on a loaded box is not a death
        for i, w in enumerate(ws)
    )
    cfg = tmp / "haproxy.cfg"
    cfg.write_text(text)
    proc = await asyncio.create_subprocess_exec(
        exe, "-db", "-f", str(cfg),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await _accepting(port)
        yield port
    finally:
        proc.terminate()
        await proc.wait()


async def scrape(url: str) -> str:
    """GET ``url`` (a worker's /metrics)."""
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        assert r.status == 200
        return await r.text()


async def all_in_menu(probe: ClusterState, n: int) -> dict[str, str]:
    """Wait until the registry shows ``n`` calls in the menu; returns call id -> worker id."""
    for _ in range(1500):
        entries = await probe.call_entries()
        if len(entries) == n and all(e.state == "menu" for e in entries):
            return {e.id: e.worker for e in entries}
        await asyncio.sleep(0.02)
    raise AssertionError(f"the calls did not all reach the menu: {await probe.call_entries()}")


async def settled(
    sb: Sandbox, probe: ClusterState, hooks: list[dict[str, Any]], ids: set[str]
) -> None:
    """Each call started and ended once (webhooks), the registry is empty, the node clean."""

    await until(lambda: by_key(hooks, "call.ended") == Counter(ids), 20, "every end webhook")
    # start and end once per call across the two workers, as a receiver dropping repeats by
    # Idempotency-Key sees them
    assert by_key(hooks, "call.started") == Counter(ids), hooks
    for cid in ids:
        ends = [h for h in hooks if h["call_id"] == cid and h["event"] == "call.ended"]
        assert {h["data"]["outcome"] for h in ends} == {"completed"}
    for _ in range(250):
        if await probe.call_entries() == []:
            break
        await asyncio.sleep(0.02)
    assert await probe.call_entries() == []
    try:
        await until(lambda: not sb.pbx.channels and not sb.pbx.bridges, 10, "node clean")
    except AssertionError:
        raise AssertionError(f"left: {sb.pbx.channels} {sb.pbx.bridges}") from None


CLOSE_AFTER_END = 3.0
"""Seconds after a call's StasisEnd the node closes its per-call socket: Asterisk 22's
(/work/shared/ari/observed-behaviour.md, outbound websockets). A call that comes back from the
dialplan within them re-enters Stasis on a new socket while the old one is still open."""


def outbound_ws(port: int, kind: str) -> OutboundWebsocket:
    """The sandbox's websocket_client.conf for HAProxy on ``port`` (quick reconnects; per-call
    sockets closed :data:`CLOSE_AFTER_END` s after their call's StasisEnd)."""
    return OutboundWebsocket(
        "voxflow", f"ws://127.0.0.1:{port}/voxflow", WS_USER, WS_PASSWORD,
        connection_type=kind, reconnect_interval=0.2, reconnect_attempts=4,
        close_after_end=CLOSE_AFTER_END,
    )  # fmt: skip


def connect_per_call(sb: Sandbox, port: int) -> None:
    """Make ``sb`` connect out per call to ``port`` (a balancer in front of in-process
    :func:`per_call_worker` s), quick to retry; each socket closed :data:`CLOSE_AFTER_END` s
    after its call's StasisEnd."""
    sb.add_outbound_websocket(OutboundWebsocket(
        "voxflow", f"ws://127.0.0.1:{port}/voxflow", "asterisk", "secret",
        connection_type="per_call_config", reconnect_interval=0.05, reconnect_attempts=4,
        close_after_end=CLOSE_AFTER_END,
    ))  # fmt: skip


RESUMED = ["sound:hello-world", "sound:vm-login", "sound:vm-login", "sound:goodbye"]
"""What the caller of a call that moved mid-menu hears: the menu twice (MENU_FLOW)."""
UNMOVED = ["sound:hello-world", "sound:vm-login", "sound:goodbye"]


async def finish_calls(sb: Sandbox, calls: list[SimCall], moved: list[SimCall]) -> None:
    """Every caller presses 1; each call ends normally (cause 16), the ``moved`` ones having
    heard their menu twice, the others once."""
    for c in calls:
        await c.press("1")
    for c in calls:
        assert await c.wait_hangup(20) == 16
    for c in calls:
        assert played(sb, c.id) == (RESUMED if c in moved else UNMOVED), c.id


@dataclass
class OutboundRig:
    """Redis, one sandbox node, a webhook receiver, two workers behind HAProxy, the node's
    websocket_client.conf pointing at HAProxy, and a read-only ``probe`` of the registry."""

    sb: Sandbox
    probe: ClusterState
    hooks: list[dict[str, Any]]
    ws: list[WorkerProc]

    async def place(self, n: int, prefix: str) -> tuple[list[SimCall], dict[str, str]]:
        """``n`` calls from ``prefix``0.. to 100, once all wait in the menu (call id -> worker)."""
        calls = [await self.sb.place_call(from_=f"{prefix}{i}", to="100") for i in range(n)]
        return calls, await all_in_menu(self.probe, n)

    def busiest(self, where: dict[str, str]) -> WorkerProc:
        """The worker serving most of the calls (per_call: leastconn spreads them, unless a
        health check was slow; persistent: the one worker holding the application's socket)."""
        return max(self.ws, key=lambda w: list(where.values()).count(w.worker_id))

    async def settled(self, calls: list[SimCall]) -> None:
        """As :func:`settled` for ``calls``."""
        await settled(self.sb, self.probe, self.hooks, {c.id for c in calls})


@contextlib.asynccontextmanager
async def outbound_cluster(
    tmp: Path,
    mode: str,
    *,
    drain: str = "finish",
    fault_first: str = "",
    cluster: str = "",
    flow_text: str = MENU_FLOW,
) -> AsyncIterator[OutboundRig]:
    """An :class:`OutboundRig` running ``flow_text`` (MENU_FLOW) in ``mode`` (per_call or
    persistent); ``fault_first``, ``cluster``: as :func:`workers`."""
    flow = tmp / "menu.flow"
    flow.write_text(flow_text)
    async with (
        running_redis(tmp) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        webhook_receiver() as (hook_url, hooks),
        workers(
            2,
            flow,
            mode,
            rs.url,
            tmp,
            webhook_url=hook_url,
            drain=drain,
            fault_first=fault_first,
            cluster=cluster,
        ) as ws,
        haproxy(tmp, ws) as port,
    ):
        probe = ClusterState(rs.url, worker_id="probe")  # reads only
        try:
            sb.add_outbound_websocket(
                outbound_ws(port, "per_call_config" if mode == "per_call" else mode)
            )
            if mode == "persistent":
                await sb.wait_app("voxflow", 30)
            yield OutboundRig(sb, probe, hooks, ws)
        finally:
            await probe.redis.aclose()


@contextlib.asynccontextmanager
async def per_call_worker(
    flow: Path,
    state: ClusterState,
    hook_url: str,
    *,
    link_grace: float = 0.5,
    mode: str = "per_call",
) -> AsyncIterator[FlowServer]:
    """An in-process ``per_call`` (or ``mode``) worker in cluster mode (link grace 0.5 s unless
    told), listening on a free 127.0.0.1 port (``server.app.links.server.port``), webhooks to
    ``hook_url``."""
    reg = FlowRegistry()
    reg.load([flow])
    app = VoxtraApp(
        "", "asterisk", "secret", "voxflow", mode=mode, listen=("127.0.0.1", 0),
        event_wait=2.0, link_grace=link_grace, handler_grace=0.2,
    )  # fmt: skip
    server = FlowServer(app, reg, Settings(grace_period=2, webhook_url=hook_url), store=state)
    stop = asyncio.Event()
    task = asyncio.ensure_future(server.serve(stop))
    try:
        await until(lambda: app.links is not None and app.links.server.port > 0, 20, "listening")
        yield server
    finally:
        stop.set()
        await task
