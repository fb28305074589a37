"""Calls whose worker dies between seeing the hang-up and claiming the end: are their ends lost?

Each round starts a redis-server-backed pair of ``voxflow run --no-audio`` workers on the
sandbox (classic mode, ``failover_ttl`` ``--ttl``): A serves the application with
``VOXFLOW_FAULT=before_end_claim`` (it kills itself with SIGKILL when it is about to write its
first end claim), B stands by. ``--calls`` callers wait in the menu (checkpointed there), then all
hang up at once: A dies at the first claim, with every call's end still to run. B takes the
application over and reaps them. Counted per round: ``call.ended`` webhooks received (distinct
keys, and repeats), ``on hangup`` requests, calls left in the registry; the time from the
hang-ups to each call's ``call.ended`` (p50/p99 over every round).

    .venv/bin/python bench/cluster_unserved.py [--calls 20] [--rounds 3] [--ttl 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web
from procs import free_port

from voxflow.runtime.checkpoint import Checkpoint
from voxflow.sandbox.server import Sandbox

FLOW = """\
flow unserved "ends once":
    answers "100"

var r: map

on hangup:
    http post "{url}/on-hangup" into r

state start:
    answer
    goto menu

state menu:
    menu "Press 1." timeout 120s:
        1 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"
"""


async def _worker(
    sb: Sandbox, tmp: Path, redis_url: str, hook: str, fault: str | None
) -> asyncio.subprocess.Process:
    env = {**os.environ, "VOXFLOW_ARI_PASSWORD": sb.password, "VOXFLOW_WEBHOOK_URL": hook}
    env.pop("VOXFLOW_FAULT", None)
    if fault:
        env["VOXFLOW_FAULT"] = fault
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from voxflow.cli.main import main; main()", "run",
        str(tmp / "bench.flow"), "--ari-url", sb.ari_url, "--ari-user", sb.user,
        "--redis", redis_url, "--no-audio", "--config", str(tmp / "voxflow.toml"), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def _until(cond: Callable[[], Awaitable[bool] | bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        ok = cond()
        if inspect.isawaitable(ok):
            ok = await ok
        if ok:
            return
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _round(
    n: int, ttl: float, tmp: Path, hooks: list[tuple[str, str, str, float]], url: str
) -> tuple[list[float], dict[str, int]]:
    """One round on a fresh Redis and sandbox: the latencies and the counts."""
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    rproc = await asyncio.create_subprocess_exec(
        exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp), "--save", "",
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    redis_url = f"redis://127.0.0.1:{port}/0"
    r = aioredis.Redis.from_url(redis_url)
    procs: list[asyncio.subprocess.Process] = []
    hooks.clear()
    try:
        await _until(lambda: _ping(r), 10, "redis")
        async with Sandbox(port=0, preload_sounds=False) as sb:
            procs.append(await _worker(sb, tmp, redis_url, f"{url}/hooks", "before_end_claim"))
            await sb.wait_app("voxflow", 60)
            procs.append(await _worker(sb, tmp, redis_url, f"{url}/hooks", None))

            async def two_workers() -> bool:
                return len([k async for k in r.scan_iter(match="voxflow:worker:*")]) == 2

            await _until(two_workers, 60, "the standby")
            calls = [await sb.place_call(from_=f"+1555{i:04d}", to="100") for i in range(n)]

            async def all_in_menu() -> bool:
                raws = await r.mget([f"voxflow:checkpoint:{c.id}" for c in calls])
                return all(x is not None and Checkpoint.from_json(x).state == "menu" for x in raws)

            await _until(all_in_menu, 60, "every call in its menu")
            t0 = time.monotonic()
            await asyncio.gather(*(c.hangup() for c in calls))
            await _until(lambda: procs[0].returncode is not None, 30, "A's death")
            ids = {c.id for c in calls}

            def all_ended() -> bool:
                return ids <= {cid for ev, cid, _, _ in hooks if ev == "call.ended"}

            await _until(all_ended, 60 + 3 * ttl, "every call.ended")
            await asyncio.sleep(1.0)  # repeats, if any, come now
            ended = [(cid, key, t) for ev, cid, key, t in hooks if ev == "call.ended"]
            first: dict[str, float] = {}
            for cid, _, t in ended:
                first.setdefault(cid, t)
            keys = Counter(key for _, key, _ in ended)
            left = len([k async for k in r.scan_iter(match="voxflow:call:*")])
            counts = {
                "calls": n,
                "ended": len(first),
                "repeats": sum(v - 1 for v in keys.values()),
                "on_hangup": sum(1 for ev, _, _, _ in hooks if ev == "on-hangup"),
                "left": left,
                "killed": int(procs[0].returncode == -9),
            }
            return [first[c] - t0 for c in first], counts
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
            await p.communicate()
        await r.aclose()
        rproc.kill()
        await rproc.communicate()


async def _ping(r: aioredis.Redis) -> bool:
    try:
        return bool(await r.ping())
    except (OSError, aioredis.RedisError):
        return False


async def main(args: argparse.Namespace) -> None:
    hooks: list[tuple[str, str, str, float]] = []  # (event, call id, key, received at)

    async def hook(request: web.Request) -> web.Response:
        if request.path == "/on-hangup":
            hooks.append(("on-hangup", "", request.headers.get("Idempotency-Key", ""), 0.0))
            return web.json_response({})
        body = await request.json()
        key = request.headers.get("Idempotency-Key", "")
        hooks.append((str(body["event"]), str(body["call_id"]), key, time.monotonic()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    lat: list[float] = []
    try:
        for i in range(args.rounds):
            with tempfile.TemporaryDirectory() as d:
                tmp = Path(d)
                (tmp / "bench.flow").write_text(FLOW.replace("{url}", url))
                (tmp / "voxflow.toml").write_text(f"[cluster]\nfailover_ttl = {args.ttl}\n")
                got, counts = await _round(args.calls, args.ttl, tmp, hooks, url)
            lat += got
            print(f"round {i + 1}: {counts}", flush=True)
    finally:
        await runner.cleanup()
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    print(
        f"hang-up -> call.ended over {len(lat)} calls: p50 {statistics.median(lat):.2f} s, "
        f"p99 {p99:.2f} s (failover_ttl {args.ttl} s; load {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ttl", type=float, default=1.0)
    asyncio.run(main(ap.parse_args()))
