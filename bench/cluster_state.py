"""The cluster state's own CPU per call: ClusterState alone against a real redis-server.

    .venv/bin/python bench/cluster_state.py [--calls 1000] [--concurrency 20] [--repeat 3]

Each call does what a short call does to the cluster state: start (``begin``), a checkpoint
10 ms later, another 20 ms after, the end claim with its ``call.ended``, the end; ``--concurrency``
at a time. Printed: this process's CPU per call (no ARI, no media: only the cluster mode's
work) and Redis round trips per call (``MONITOR``, the commands inside scripts not counted).
Run it against another checkout with ``PYTHONPATH=<checkout>`` (only public ClusterState
methods are used). Figures: docs/deploy.md, "Capacity planning".
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time

import redis.asyncio as aioredis
from procs import free_port

from voxflow.cluster import ClusterState
from voxflow.compiler import compile_flow
from voxflow.ir.models import Flow
from voxflow.runtime.checkpoint import Checkpoint

FLOW = (
    'flow tiny "a tiny flow":\n    answers "100"\n\nstate start:\n    answer\n    hangup "done"\n'
)


async def _call(state: ClusterState, flow: Flow, h: str, i: int) -> None:
    cid = f"c{i}"
    await state.begin(cid, flow, h)
    await asyncio.sleep(0.01)
    state.save(cid, Checkpoint(h, "menu", {"n": i}, metadata={}))
    await asyncio.sleep(0.02)
    state.save(cid, Checkpoint(h, "done", {"n": i}, metadata={}))
    await state.claim_end(cid, (f"{cid}:call.ended", b'{"event":"call.ended","timestamp":1}'))
    await state.end(cid, "completed")


async def _round(url: str, flow: Flow, n: int, concurrency: int) -> tuple[float, float]:
    """(CPU ms per call, round trips per call) over ``n`` calls after a warm-up."""
    counted = [0]
    probe = aioredis.Redis.from_url(url)

    async def watch() -> None:
        async with probe.monitor() as m:
            async for cmd in m.listen():
                counted[0] += cmd.get("client_type") != "lua"

    async with ClusterState(url, worker_id="bench") as state:
        h = await state.publish(flow)
        sem = asyncio.Semaphore(concurrency)

        async def limited(i: int) -> None:
            async with sem:
                await _call(state, flow, h, i)

        await asyncio.gather(*(limited(i) for i in range(2 * concurrency)))  # pools grown
        task = asyncio.ensure_future(watch())
        await asyncio.sleep(0.2)
        c0, counted[0] = time.process_time(), 0
        await asyncio.gather(*(limited(i) for i in range(10**6, 10**6 + n)))
        cpu = (time.process_time() - c0) / n * 1000
        trips = counted[0] / n
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await probe.aclose()
    return cpu, trips


async def main(args: argparse.Namespace) -> None:
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("redis-server is not installed (apt-get install -y redis-server)")
    flow = compile_flow(FLOW, "tiny.flow").flow
    assert flow is not None
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = await asyncio.create_subprocess_exec(
            exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", "",
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        try:
            await asyncio.sleep(0.3)
            got = [
                await _round(url, flow, args.calls, args.concurrency) for _ in range(args.repeat)
            ]
        finally:
            proc.kill()
            await proc.wait()
    for i, (cpu, trips) in enumerate(got):
        print(f"round {i + 1}: {cpu:.3f} ms CPU per call, {trips:.2f} Redis round trips per call")
    print(
        f"median of {args.repeat}: {statistics.median(c for c, _ in got):.3f} ms CPU per call, "
        f"{statistics.median(t for _, t in got):.2f} round trips per call"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    parsed = ap.parse_args()
    print("command:", " ".join([".venv/bin/python", *sys.argv]))
    asyncio.run(main(parsed))
