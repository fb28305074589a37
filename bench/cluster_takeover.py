"""Take-over time of the classic mode, in-process standby: a worker killed with SIGKILL while
calls wait in a menu (``bench/cluster.py failover`` measures it with worker processes, audio
and the caller's ear, over a 1,000-call soak).

Each round starts a redis-server (free 127.0.0.1 port, temp dir), the sandbox, worker A
(``voxflow run --redis --no-audio`` in its own process) and a standby worker B in this process
(``ClusterState.hold_app`` waiting for A's hold on the app name). ``--calls`` calls reach the
flow's menu (their checkpoints say so), A gets SIGKILL, and for each call the time from the kill
until B has re-entered its menu (the resumed prompt's play request sent) is recorded. Prints
p50/p99 over every call of every round, and how many calls were lost (did not end completed).

    .venv/bin/python bench/cluster_takeover.py [--calls 20] [--rounds 3] [--ttl 3]

The standby is built before the kill (flows loaded, app made), as ``voxflow run`` is while it
waits. Measured on the shared 2-core box (load average 11-16), 0 calls lost each time:
--calls 20 --rounds 3 --ttl 3: p50 0.91 s, p99 0.96 s; --rounds 3 again: p50 1.01 s, p99 1.16 s;
--ttl 10: p50 0.76 s, p99 1.41 s (load 16). The standby takes the name 0.19-0.23 s after the
kill (whatever the TTL); the rest is the take-over itself (events socket, sweep of the 20
calls' media channels and bridges, the 20 resumed calls' Redis reads and prompts). Before the
liveness connections (voxflow.cluster.liveness) the TTL decided: --ttl 3 p50 3.04 s, p99
3.12 s; --ttl 1 p50 1.01 s.

    .venv/bin/python bench/cluster_takeover.py --overhead 2000

measures the CPU the cluster mode adds per call (registry entry and checkpoint read in one
pipelined round trip, the checkpoints written by the background writer, the end's DELETE) on a
5-event call through the interpreter alone: 79-83 us/call without, +551 to +724 us/call with
(three runs; the box is shared).

A killed worker's named Redis connection closes with it, so the standby takes the application
name at once (``ClusterState.hold_app``); the app-name hold's TTL (``[cluster] failover_ttl``)
remains the backstop for a stalled or cut-off worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from procs import MENU_FLOW, redis_server

from voxflow.cluster import ClusterState, node_app
from voxflow.compiler import compile_flow
from voxflow.ir.models import Flow
from voxflow.runtime import events as ev
from voxflow.runtime.checkpoint import Checkpoint, checkpoint_of, flow_hash
from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.runtime.step import RunState, initial_state, step
from voxflow.sandbox.server import Sandbox
from voxflow.telephony.app import VoxtraApp


async def _until(cond: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("bench: timed out")
        await asyncio.sleep(0.005)


async def _round(tmp: Path, n: int, ttl: float) -> tuple[list[float], int]:
    flow = tmp / "failover.flow"
    flow.write_text(MENU_FLOW)
    config = tmp / "voxflow.toml"
    config.write_text(f"[cluster]\nfailover_ttl = {ttl}\n")
    rproc, url = await redis_server(tmp)
    try:
        b = ClusterState(url, heartbeat=ttl / 3, worker_ttl=ttl)
        async with Sandbox(port=0, preload_sounds=False) as sb, b:
            env = {**os.environ, "VOXFLOW_ARI_PASSWORD": sb.password}
            a = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from voxflow.cli.main import main; main()", "run",
                str(flow), "--ari-url", sb.ari_url, "--ari-user", sb.user, "--redis", url,
                "--no-audio", "--config", str(config), env=env, stdout=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            await sb.wait_app("voxflow", 60)
            calls = [await sb.place_call(from_=f"+1555{i:06d}", to="100") for i in range(n)]
            ids = {c.id for c in calls}
            for _ in range(3000):
                entries = await b.call_entries()
                if len(entries) == n and all(e.state == "menu" for e in entries):
                    break
                await asyncio.sleep(0.01)
            # the standby is built before the kill, as `voxflow run` is: flows loaded, app made
            reg = FlowRegistry()
            reg.load([flow])
            app = VoxtraApp(sb.ari_url, sb.user, sb.password, "voxflow", event_wait=2.0)
            server = FlowServer(app, reg, Settings(grace_period=5), store=b)
            standby = asyncio.ensure_future(b.hold_app(node_app(sb.ari_url, "voxflow")))
            await asyncio.sleep(0.2)
            a.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            await a.wait()
            await standby
            took = time.monotonic() - killed
            print(f"  the standby took the app name {took:.2f} s after the kill")
            resumed: dict[str, float] = {}
            stop = asyncio.Event()
            task = asyncio.ensure_future(server.serve(stop))

            def scan() -> bool:
                for cid, d in list(server.drivers.items()):
                    if cid not in resumed and d.state.state_name == "menu":
                        resumed[cid] = time.monotonic() - killed
                return ids <= set(resumed)

            await _until(scan, 60)
            for c in calls:
                await c.press("1")
            await _until(lambda: ids <= set(server.results), 60)
            lost = sum(server.results[i].outcome != "completed" for i in ids)
            stop.set()
            await task
            return list(resumed.values()), lost
    finally:
        rproc.kill()
        await rproc.wait()


def _one_call(flow: Flow, i: int, after_step: Callable[[RunState], None] | None) -> int:
    """Run one call of FLOW through step() (ops answered at once, "1" pressed at the menu);
    returns the number of events fed."""
    call = ev.CallInfo(f"call-{i}", "+15550100", "100", "inbound")
    state, cmds = step(flow, initial_state(flow, call), ev.Start())
    fed = 1
    pressed = False
    while not state.ended:
        if after_step is not None:
            after_step(state)
        ops = [c for c in cmds if isinstance(c, ev.Op) and not isinstance(c, ev.StartTimer)]
        if state.awaits_caller and not pressed:
            state, cmds, pressed = *step(flow, state, ev.Dtmf("1")), True
        elif ops:
            state, cmds = step(flow, state, ev.OpDone(ops[0].cid))
        else:
            break
        fed += 1
    return fed


def _saver(store: ClusterState, cid: str, fhash: str) -> Callable[[RunState], None]:
    """What FlowServer does after each step in cluster mode."""
    last: list[Checkpoint | None] = [None]

    def save(st: RunState) -> None:
        cp = checkpoint_of(st, fhash)
        if cp is not None and cp != last[0]:
            last[0] = cp
            store.save(cid, cp)

    return save


async def overhead(n: int) -> None:
    """CPU per call of the interpreter alone vs with checkpoints written to a real Redis."""
    flow = compile_flow(MENU_FLOW, "failover.flow").flow
    assert flow is not None
    with tempfile.TemporaryDirectory() as tmp:
        rproc, url = await redis_server(Path(tmp))
        try:
            async with ClusterState(url) as store:
                fhash = flow_hash(flow)
                t0 = time.process_time()
                events = sum(_one_call(flow, i, None) for i in range(n))
                plain = (time.process_time() - t0) / n
                t0 = time.process_time()
                for i in range(n):
                    await store.begin(f"call-{i}", flow, fhash)
                    save = _saver(store, f"call-{i}", fhash)
                    _one_call(flow, i, save)
                    await asyncio.sleep(0)  # the writer runs
                    await store.end(f"call-{i}", "completed")
                with_cp = (time.process_time() - t0) / n
        finally:
            rproc.kill()
            await rproc.wait()
    print(
        f"{n} calls, {events / n:.0f} events each: interpreter {plain * 1e6:.0f} us/call; with "
        f"checkpoints, registry and end in Redis {with_cp * 1e6:.0f} us/call "
        f"(+{(with_cp - plain) * 1e6:.0f} us per call)"
    )


async def main(args: argparse.Namespace) -> None:
    if args.overhead:
        await overhead(args.overhead)
        return
    times: list[float] = []
    lost = 0
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            t, n_lost = await _round(Path(tmp), args.calls, args.ttl)
        times += t
        lost += n_lost
        print(f"round {r + 1}: {len(t)} calls resumed, {n_lost} lost")
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(
        f"failover (SIGKILL -> resumed state re-entered) over {len(times)} calls: "
        f"p50 {statistics.median(times):.2f} s, p99 {p99:.2f} s, max {times[-1]:.2f} s; "
        f"lost {lost}"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ttl", type=float, default=3.0, help="[cluster] failover_ttl (seconds)")
    ap.add_argument("--overhead", type=int, metavar="CALLS", help="measure checkpoint CPU instead")
    asyncio.run(main(ap.parse_args()))
