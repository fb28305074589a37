"""Interpreter benchmark: the flow interpreter against a hand-written CallSession handler.

    .venv/bin/python bench/interpreter.py [--calls 300] [--repeat 3] [--load 2000]

The sandbox runs in its own process (``voxflow sandbox``) and the scripted callers in another,
so the CPU measured (``time.process_time`` of this process) is the app's only: VoxtraApp, REST
and events client, and either the interpreter running a menu flow or a hand-written handler
making the same CallSession calls (answer, welcome, wait for a digit, a reply, hang up). There
is no TTS: the handler's ``say`` raises at once; the interpreter sees the app has no TTS and
only writes its prompts to the transcript (what ``voxflow run --no-audio`` shows). Variants
alternate, ``--repeat`` times; medians and the ratio are printed (goal: interpreter /
handler <= 1.3).

Then ``--load`` concurrent calls on the interpreter in this one process: once all calls are up
and waiting in the menu, the callers press one key each, ``--press-rate`` keys per second in all
(spread evenly). Measured per call: from the ChannelDtmfReceived event being handed to the app's
dispatcher (after the websocket read and JSON decode, so neither the sandbox nor the socket is
counted) to the app calling its REST client for the next ARI command on that channel (the
hang-up; before the HTTP request is written, so the sandbox's answer time is not counted either).
That is the interpreter's reaction time plus any wait in this process's event loop behind other
calls' work. p50/p99/max printed (goal p99 <= 5 ms), with the app's CPU use during the presses: near
100 % means the rate saturates the process and p99 measures queueing, not the interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from loop_probe import BareLoopProbe
from procs import free_port, wait_up

from voxflow.ari.models import ChannelDtmfReceived
from voxflow.errors import CallEndedError
from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.telephony.app import VoxtraApp

MENU = """flow bench_menu "Bench menu":
    answers "100"
    timeout 5s

state main:
    answer
    say "Welcome to Acme."
    menu "Press 1 for sales or 2 for support.":
        1 -> sales
        2 -> support
        on noinput, nomatch -> retry
        on exhausted:
            hangup "no input"

state sales:
    say "Sales here."
    hangup

state support:
    say "Support here."
    hangup
"""


# ------------------------------------------------------------------ callers (child process)


async def _callers(base: str, n: int, press_after_all: bool, rate: float) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(b"voxflow:voxflow").decode()}
    conn = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(base, headers=auth, connector=conn) as http:

        async def place(i: int) -> str:
            # wait_app: the worker may still be starting; a call placed before its events
            # socket is open is refused (409), which would make the figures meaningless.
            body = {"from": f"+1555{i:07d}", "to": "100", "app": "voxflow", "wait_app": 60}
            async with http.post("/sandbox/calls", json=body) as r:
                answer = await r.json()
                if r.status != 201:
                    raise SystemExit(f"call {i} refused ({r.status}): {answer.get('message')}")
                return str(answer["id"])

        async def state(cid: str) -> dict[str, Any]:
            async with http.get(f"/sandbox/calls/{cid}") as r:
                return dict(await r.json())

        async def press(cid: str) -> None:
            async with http.post(f"/sandbox/calls/{cid}/press", json={"digits": "2"}):
                pass

        async def until(cid: str, pred: Any) -> None:
            for _ in range(6000):
                if pred(await state(cid)):
                    return
                await asyncio.sleep(0.05)

        def answered(s: dict[str, Any]) -> bool:
            return any(e["type"] == "answered" for e in s["experience"]) or s["state"] == "ended"

        ids = await asyncio.gather(*(place(i) for i in range(n)))
        await asyncio.gather(*(until(c, answered) for c in ids))
        if press_after_all:
            await asyncio.sleep(1.0)
        presses = []
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for k, c in enumerate(ids):  # evenly spread: ``rate`` presses per second
            delay = t0 + k / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            presses.append(asyncio.ensure_future(press(c)))
        await asyncio.gather(*presses)
        await asyncio.gather(*(until(c, lambda s: s["state"] == "ended") for c in ids))


def _spawn_callers(
    base: str, n: int, press_after_all: bool, rate: float = 1000.0
) -> subprocess.Popen[bytes]:
    args = [sys.executable, __file__, "--callers", base, str(n), str(int(press_after_all))]
    args.append(str(rate))
    return subprocess.Popen(args)


# ------------------------------------------------------------------ the app side


async def _handwritten(session: Any) -> None:
    try:
        await session.answer()
        for text in ("Welcome to Acme.", "Press 1 for sales or 2 for support."):
            try:
                await session.say(text)
            except RuntimeError:
                pass  # no TTS: the same failed say the interpreter makes
        digit = await session.listen_dtmf(timeout=5.0)
        try:
            await session.say("Sales here." if digit == "1" else "Support here.")
        except RuntimeError:
            pass
        await session.hangup("normal")
    except CallEndedError:
        pass


async def _phase(base_ari: str, flow_file: Path, n: int, variant: str) -> float:
    """App CPU seconds per call for ``n`` calls of ``variant``."""
    app = VoxtraApp(base_ari, "voxflow", "voxflow", "voxflow")
    done = 0
    all_done = asyncio.Event()
    if variant == "handler":

        @app.default()
        async def handler(session: Any) -> None:
            nonlocal done
            await _handwritten(session)
            done += 1
            if done == n:
                all_done.set()

        stop = asyncio.Event()
        serving: asyncio.Future[Any] = asyncio.ensure_future(_serve_app(app, stop))
        watcher: asyncio.Future[Any] | None = None
    else:
        reg = FlowRegistry()
        reg.load([flow_file])
        server = FlowServer(app, reg, Settings(grace_period=5))
        stop = asyncio.Event()
        serving = asyncio.ensure_future(server.serve(stop))

        async def watch() -> None:
            while len(server.results) < n:  # noqa: ASYNC110 - polled, not on the measured path
                await asyncio.sleep(0.05)
            all_done.set()

        watcher = asyncio.ensure_future(watch())
    await asyncio.sleep(1.0)  # connected
    gc.collect()
    cpu0 = time.process_time()
    callers = _spawn_callers(base_ari.removesuffix("/ari"), n, False)
    await asyncio.wait_for(all_done.wait(), 300)
    cpu = time.process_time() - cpu0
    await asyncio.get_running_loop().run_in_executor(None, callers.wait)
    stop.set()
    await serving
    if watcher is not None:
        await watcher
    return cpu / n


async def _serve_app(app: VoxtraApp, stop: asyncio.Event) -> None:
    async with app:
        await stop.wait()


async def _load(base_ari: str, flow_file: Path, n: int, rate: float) -> tuple[list[float], float]:
    app = VoxtraApp(base_ari, "voxflow", "voxflow", "voxflow")
    reg = FlowRegistry()
    reg.load([flow_file])
    server = FlowServer(app, reg, Settings(grace_period=5))
    received: dict[str, float] = {}
    lat: list[float] = []
    on_event = app.events._on_event

    window: list[tuple[float, float]] = []  # (wall, cpu) at the first and latest press

    def timed_event(event: Any) -> None:
        if isinstance(event, ChannelDtmfReceived):
            received[event.channel.id] = time.perf_counter()
            mark = (time.perf_counter(), time.process_time())
            window[min(len(window), 1) :] = [mark]  # keep the first, replace the latest
        on_event(event)

    app.events._on_event = timed_event
    request = app.rest.request

    async def timed_request(method: str, path: str, **kw: Any) -> Any:
        parts = path.split("/")
        if len(parts) > 2 and parts[1] == "channels":
            t = received.pop(parts[2], None)
            if t is not None:
                lat.append((time.perf_counter() - t) * 1000.0)
        return await request(method, path, **kw)

    app.rest.request = timed_request  # type: ignore[method-assign]
    stop = asyncio.Event()
    serving = asyncio.ensure_future(server.serve(stop))
    await asyncio.sleep(1.0)
    callers = _spawn_callers(base_ari.removesuffix("/ari"), n, True, rate)
    _pin(callers.pid, OTHER_CPU)
    with BareLoopProbe(APP_CPU) as probe:
        t0 = time.monotonic()
        while len(server.results) < n and time.monotonic() - t0 < 600:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await asyncio.get_running_loop().run_in_executor(None, callers.wait)
    print(f"  {probe.describe()}")
    stop.set()
    await serving
    outcomes = {r.outcome for r in server.results.values()}
    print(f"  {len(server.results)} calls ended, outcomes {sorted(outcomes)}")
    busy = 0.0
    if len(window) == 2 and window[1][0] > window[0][0]:
        busy = (window[1][1] - window[0][1]) / (window[1][0] - window[0][0])
    return lat, busy


_CPUS = sorted(os.sched_getaffinity(0))
APP_CPU = _CPUS[0] if len(_CPUS) > 1 else None  # the app here; sandbox and callers elsewhere
OTHER_CPU = _CPUS[1] if len(_CPUS) > 1 else None


def _pin(pid: int, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(pid, {cpu})


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))]


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    exe = Path(sys.executable).with_name("voxflow")
    sandbox = subprocess.Popen([str(exe), "sandbox", "--port", str(port)])  # noqa: ASYNC220
    _pin(sandbox.pid, OTHER_CPU)
    _pin(0, APP_CPU)
    flow_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_menu_{os.getpid()}.flow"
    flow_file.write_text(MENU)
    base = f"http://127.0.0.1:{port}/ari"
    try:
        await wait_up(port)
        print(f"load average {os.getloadavg()[0]:.2f}; sandbox in pid {sandbox.pid}")
        runs: dict[str, list[float]] = {"handler": [], "interpreter": []}
        for r in range(args.repeat):
            for variant in ("handler", "interpreter"):
                per_call = await _phase(base, flow_file, args.calls, variant)
                runs[variant].append(per_call)
                print(f"  run {r + 1} {variant:11s}: {per_call * 1e3:.3f} ms CPU per call")
        h, i = statistics.median(runs["handler"]), statistics.median(runs["interpreter"])
        print(
            f"CPU per call (median of {args.repeat}, {args.calls} calls each): handler "
            f"{h * 1e3:.3f} ms, interpreter {i * 1e3:.3f} ms, ratio {i / h:.2f} (goal <= 1.3)"
        )
        if args.load:
            lat, busy = await _load(base, flow_file, args.load, args.press_rate)
            print(
                f"{args.load} concurrent calls, {args.press_rate:g} key presses/s: DTMF event -> "
                f"next ARI command ({len(lat)} samples): "
                f"p50 {_pct(lat, 0.5):.2f} ms, p99 {_pct(lat, 0.99):.2f} ms, "
                f"max {max(lat):.2f} ms (goal p99 <= 5 ms); app CPU while pressed {busy:.0%}"
            )
    finally:
        sandbox.terminate()
        sandbox.wait()
        flow_file.unlink(missing_ok=True)
    print(json.dumps({"command": "python bench/interpreter.py " + " ".join(sys.argv[1:])}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--callers":
        asyncio.run(_callers(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", float(sys.argv[5])))
        sys.exit(0)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--load", type=int, default=2000)
    ap.add_argument(
        "--press-rate", type=float, default=250.0, help="key presses per second in the load run"
    )
    asyncio.run(main(ap.parse_args()))
