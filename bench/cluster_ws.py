"""Failover time of the outbound-websocket modes: a worker killed with SIGKILL while calls wait in
a menu, behind HAProxy (docs/deploy/haproxy.cfg, addresses changed).

Each round starts a redis-server, the sandbox, two ``voxflow run --ari-mode MODE --redis
--no-audio`` worker processes and HAProxy in front of them; ``--calls`` calls reach the flow's
menu (the registry says so), the worker serving most of them gets SIGKILL, and for each of its
calls the time from the kill until Asterisk gets the menu prompt's play request again (Asterisk
re-connected the call's websocket through HAProxy, the other worker adopted the call and
re-entered its state; as in bench/cluster.py; the caller hears it once the prompt the dead
worker started has ended, as Asterisk queues playbacks) is recorded. Prints p50/p99 over every
moved call of every round, and how many calls did not end normally.

    .venv/bin/python bench/cluster_ws.py [--mode per_call|persistent] [--calls 10] [--rounds 3]
        [--interval 0.5]

``--interval``: websocket_client.conf ``reconnect_interval`` (s; Asterisk's example: 500 ms).
The sandbox re-connects a dropped per-call socket at once, a persistent one after the interval.

Measured on the shared 2-core box (load average 12-14), 0 calls lost each time:
--mode per_call --calls 20 --rounds 3: p50 0.28 s, p99 0.68 s (30 moved calls);
--mode persistent --calls 20 --rounds 3: p50 0.72-0.95 s, p99 1.51-1.65 s (60 moved calls);
with --interval 0.1: p50 0.36 s, p99 0.47 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from procs import MENU_FLOW, free_port, redis_server, wait_up

from voxflow.cluster import ClusterState
from voxflow.sandbox.outbound import OutboundWebsocket
from voxflow.sandbox.server import Sandbox

HAPROXY = Path(__file__).resolve().parents[1] / "docs" / "deploy" / "haproxy.cfg"
USER, PASSWORD = "asterisk", "bench-secret"
_DRAINS: set[asyncio.Future[bytes]] = set()


async def _line(stream: asyncio.StreamReader, pattern: str) -> str:
    async with asyncio.timeout(60):
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise RuntimeError(f"the worker exited before printing {pattern!r}")
            m = re.search(pattern, line)
            if m:
                return m[1]


async def _worker(
    tmp: Path, flow: Path, mode: str, url: str
) -> tuple[asyncio.subprocess.Process, str, int, int]:
    """A worker process: (process, worker id, websocket port, metrics port)."""
    port = free_port()
    env = {**os.environ, "VOXFLOW_ARI_PASSWORD": PASSWORD}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from voxflow.cli.main import main; main()", "run", str(flow),
        "--ari-mode", mode, "--listen", f"127.0.0.1:{port}", "--ari-user", USER, "--redis", url,
        "--no-audio", "--metrics-port", "0", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    wid = await _line(proc.stdout, r"cluster mode: worker (\S+)")
    metrics = int(await _line(proc.stdout, r"metrics on http://127\.0\.0\.1:(\d+)/metrics"))
    await wait_up(port)
    _DRAINS.add(asyncio.ensure_future(proc.stdout.read()))  # drained until it exits
    return proc, wid, port, metrics


async def _haproxy(
    tmp: Path, servers: list[tuple[int, int]]
) -> tuple[asyncio.subprocess.Process, int]:
    exe = shutil.which("haproxy", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if exe is None:
        sys.exit("haproxy is not installed (apt-get install -y haproxy)")
    port = free_port()
    text = HAPROXY.read_text()
    text = re.sub(r"(?m)^(\s*)bind 0\.0\.0\.0:8765$", rf"\1bind 127.0.0.1:{port}", text)
    text = re.sub(r"(?m)^\s*(server w\d|default-server) .*\n", "", text)
    text += "".join(
        f"    server w{i} 127.0.0.1:{ws} check port {m} inter 200ms fall 1 rise 1\n"
        for i, (ws, m) in enumerate(servers)
    )
    (tmp / "haproxy.cfg").write_text(text)
    proc = await asyncio.create_subprocess_exec(
        exe, "-db", "-f", str(tmp / "haproxy.cfg"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await wait_up(port)
    return proc, port


def _plays(sb: Sandbox, cid: str) -> int:
    """Play requests Asterisk got for the call (the dead worker's, then the resumed one's)."""
    prefix = f"/channels/{cid}/play"
    return sum(1 for _, path in list(sb.rest_api.ws_log) if path.startswith(prefix))


async def _round(tmp: Path, mode: str, n: int, interval: float) -> tuple[list[float], int]:
    flow = tmp / "failover.flow"
    flow.write_text(MENU_FLOW)
    redis, url = await redis_server(tmp)
    procs: list[asyncio.subprocess.Process] = [redis]
    try:
        workers = [await _worker(tmp, flow, mode, url) for _ in range(2)]
        procs += [w[0] for w in workers]
        lb, port = await _haproxy(tmp, [(w[2], w[3]) for w in workers])
        procs.append(lb)
        probe = ClusterState(url, worker_id="bench-probe")
        async with Sandbox(port=0, preload_sounds=False) as sb:
            kind = "persistent" if mode == "persistent" else "per_call_config"
            sb.add_outbound_websocket(OutboundWebsocket(
                "voxflow", f"ws://127.0.0.1:{port}/voxflow", USER, PASSWORD,
                connection_type=kind, reconnect_interval=interval, reconnect_attempts=4,
                close_after_end=0.2,
            ))  # fmt: skip
            if mode == "persistent":
                await sb.wait_app("voxflow", 30)
            calls = [await sb.place_call(from_=f"+1555{i:06d}", to="100") for i in range(n)]
            for _ in range(3000):
                entries = await probe.call_entries()
                if len(entries) == n and all(e.state == "menu" for e in entries):
                    break
                await asyncio.sleep(0.01)
            where = {e.id: e.worker for e in entries}
            victim = max(workers, key=lambda w: list(where.values()).count(w[1]))
            moved = [c for c in calls if where[c.id] == victim[1]]
            victim[0].send_signal(signal.SIGKILL)
            killed = time.monotonic()
            await victim[0].wait()
            resumed: dict[str, float] = {}
            deadline = killed + 30
            while len(resumed) < len(moved) and time.monotonic() < deadline:
                for c in moved:
                    if c.id not in resumed and _plays(sb, c.id) >= 2:
                        resumed[c.id] = time.monotonic() - killed
                await asyncio.sleep(0.005)
            for c in calls:
                await c.press("1")
            causes = await asyncio.gather(*(c.wait_hangup(30) for c in calls))
            lost = sum(cause != 16 for cause in causes) + len(moved) - len(resumed)
            await probe.redis.aclose()
            return list(resumed.values()), lost
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
            await p.wait()


async def main(args: argparse.Namespace) -> None:
    times: list[float] = []
    lost = 0
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            t, n_lost = await _round(Path(tmp), args.mode, args.calls, args.interval)
        times += t
        lost += n_lost
        print(f"round {r + 1}: {len(t)} calls moved and resumed, {n_lost} lost")
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(
        f"{args.mode} failover (SIGKILL -> resumed state's play request) over {len(times)} calls: "
        f"p50 {statistics.median(times):.2f} s, p99 {p99:.2f} s, max {times[-1]:.2f} s; "
        f"lost {lost}"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("per_call", "persistent"), default="per_call")
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--interval", type=float, default=0.5, help="reconnect_interval (s)")
    asyncio.run(main(ap.parse_args()))
