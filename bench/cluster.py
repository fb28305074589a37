"""The cluster mode's cost and failover, with whole calls (ARI, audio) on real worker processes.

Every mode starts a redis-server (free 127.0.0.1 port, temp dir), the sandbox (this process, with
the scripted callers and a webhook receiver) and ``voxflow run FLOW --app NAME [--redis URL]``
worker processes (audio on: espeak-ng prompts streamed as RTP, DTMF). A call: the caller waits
for the menu prompt's audio, presses 1, the flow hangs up. A call counts as completed when the
caller saw that and its ``call.ended`` webhook (outcome completed) arrived exactly once, as a
receiver dropping repeats by ``Idempotency-Key`` sees it (the failover soak counts the two apart,
and the repeats it dropped). Worker CPU is read from
/proc (user + system, children included) around the measured calls.

    .venv/bin/python bench/cluster.py scale [--workers 1,2,4] [--calls 200] [--per-worker 20]

N workers, each serving its own application name on the sandbox (classic mode: one worker per
name per node), ``--per-worker`` concurrent callers each: calls per second (wall), worker CPU per
call, calls per worker-core-second (1 / CPU per call), Redis commands per call.

    .venv/bin/python bench/cluster.py overhead [--calls 200] [--concurrency 20] [--repeat 3]
        [--kinds short,ivr] [--before CHECKOUT]

Side by side: per round, one worker without ``--redis`` (``plain``) and one with it
(``clustered``; ``--before CHECKOUT``: a third, with ``--redis``, running that checkout's
voxflow) each serve the same number of calls of the same kind, ``--concurrency`` at a time
each, all at the same time, so that they share the box's load. Printed: each worker's CPU per
whole call (user + system of the worker process, from /proc, over the measured calls and
their last writes), the ratio to the plain worker of the same round (median over rounds), the
median call duration, and the Redis round trips per clustered call. ``--concurrency`` warm-up
calls per worker run first (prompts cached, connection pools grown).

    .venv/bin/python bench/cluster.py failover [--calls 1000] [--kill-every 100] [--ttl 3]
        [--before CHECKOUT] [--rounds 1]

One worker serves, one stands by (same app name). Calls flow at ``--concurrency``; after every
``--kill-every`` calls placed, the serving worker gets SIGKILL and a new standby starts (new
calls wait until it stands by: it warms its prompts and decoders first, seconds on a loaded
box). A caller listens to the menu ``--listen`` s (1.5) before pressing 1; a kill comes once
every call in progress has heard its menu prompt start (at most 10 s: mid-menu, as issue 20
says). For each call in progress at a kill: the time from the kill until it hears its state's
prompt again (p50/p99 over every kill; those killed before their first prompt, set up from
scratch by the standby, are counted apart too). Per kill, where that time went: the standby's
take-over timeline (its log line, voxflow.cluster.takeover) from the kill: the killed process reaped
(``exited``: the bench's ``waitpid``, itself late on a loaded box), dead worker seen gone, name
held, events socket connected, channels listed, orphans swept; per call (p50): adopted,
checkpoint read, state entered, media up, prompt's first frame queued; and heard (the caller's
ear). Lost calls: calls the caller did not see end normally (1 pressed, the flow hung up); end
webhooks missing or repeated are counted apart. ``--before CHECKOUT``: soaks alternate, each on
a fresh cluster, with the workers running this checkout's code and that one's (``--rounds``
each); printed: both variants' p50/p99 (median over rounds) and their ratios.

``--no-audio``: workers without speech (the menu plays ``sound:vm-login`` instead);
``--no-warm-prompts``: standbys that synthesize their prompts on first use. BENCH_LOGS=DIR
keeps the workers' logs there. Figures and load averages: docs/deploy.md, "Capacity planning".
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
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from ivr_calls import copy_ivr, ivr_calls
from procs import free_port

from voxflow.cluster import ClusterState, node_app
from voxflow.sandbox.caller import SimCall
from voxflow.sandbox.server import Sandbox

FLOW = """\
flow bench "a welcome, a menu past the first state":
    answers "100"

state start:
    answer
    goto menu

state menu:
    menu "Press 1 to finish the call." timeout 20s:
        1 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"
"""
# --no-audio: no prompt is heard (the menu's text is only in the transcript): a playback first
FLOW_NO_AUDIO = FLOW.replace('    menu "Press', '    play "sound:vm-login"\n    menu "Press')
TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its waited-for children (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / TICK


@dataclass
class Cluster:
    """The redis-server, the sandbox, the webhooks received and the worker processes."""

    tmp: Path
    redis_url: str
    sb: Sandbox
    hooks: list[dict[str, Any]]
    hook_url: str
    workers: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    logs: dict[int, Path] = field(default_factory=dict)
    _ports: int = 20000

    audio: bool = True
    warm: bool = True

    async def worker(
        self, app: str, *, redis: bool = True, ttl: float = 3.0, code: str | None = None
    ) -> int:
        """Start ``voxflow run`` serving ``app`` (standing by if another holds it); returns once
        it is in the registry (started up: serving or standing by). ``code``: a checkout whose
        ``voxflow`` the worker runs instead of this one's (its working directory: first on
        ``sys.path``)."""
        config = self.tmp / f"w{self._ports}.toml"
        config.write_text(f"[cluster]\nfailover_ttl = {ttl}\n")
        env = {
            **os.environ,
            "VOXFLOW_ARI_PASSWORD": self.sb.password,
            "VOXFLOW_WEBHOOK_URL": self.hook_url,
            "VOXFLOW_RTP_PORTS": f"{self._ports}-{self._ports + 999}",
        }
        self._ports += 1000
        args = ["--redis", self.redis_url] if redis else []
        args += [] if self.audio else ["--no-audio"]
        args += [] if self.warm else ["--no-warm-prompts"]
        logs = os.environ.get("BENCH_LOGS") or str(self.tmp)  # a directory for the workers' logs
        log_path = f"{logs}/worker-{self._ports}.log"
        err = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from voxflow.cli.main import main; main()", "run",
            str(self.tmp / "bench.flow"), "--ari-url", self.sb.ari_url, "--ari-user", self.sb.user,
            "--app", app, "--config", str(config), *args, env=env, cwd=code,
            stdout=asyncio.subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        os.close(err)
        self.workers[app + f"#{proc.pid}"] = proc
        self.logs[proc.pid] = Path(log_path)
        if redis:
            state = ClusterState(self.redis_url, worker_id="bench-probe")
            try:
                while not any(w.id.endswith(f"-{proc.pid}") for w in await state.workers()):
                    if proc.returncode is not None:
                        sys.exit(f"worker {proc.pid} exited with {proc.returncode}")
                    await asyncio.sleep(0.05)
            finally:
                await state.redis.aclose()
        return proc.pid

    def ended(self) -> Counter[str]:
        """Completed ``call.ended`` webhooks per call, repeats of a key counted once."""
        return Counter(call for call, _ in self._ended_keys())

    def repeats(self) -> int:
        """Completed ``call.ended`` webhooks that repeated a key already received."""
        return len(self._ended_keys(distinct=False)) - len(self._ended_keys())

    def _ended_keys(self, distinct: bool = True) -> list[tuple[str, str]]:
        got = [
            (str(h["call_id"]), str(h.get("_key", "")))
            for h in self.hooks
            if h["event"] == "call.ended" and h["data"]["outcome"] == "completed"
        ]
        return list(dict.fromkeys(got)) if distinct else got

    async def redis_commands(self) -> int:
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            return int((await client.info("stats"))["total_commands_processed"])
        finally:
            await client.aclose()


async def _wait_ping(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        for _ in range(500):
            try:
                await client.ping()
                return
            except (OSError, aioredis.RedisError):
                await asyncio.sleep(0.02)
    finally:
        await client.aclose()


@asynccontextmanager
async def cluster(audio: bool = True, *, ivr: bool = False) -> AsyncIterator[Cluster]:
    """Redis, the sandbox and the webhook receiver; the workers are killed at the end. ``ivr``:
    the workers run flows/main_ivr.flow (bench/ivr_calls.py) instead of this bench's flow."""
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("redis-server is not installed (apt-get install -y redis-server)")
    hooks: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        body["_key"] = request.headers.get("Idempotency-Key", "")
        hooks.append(body)
        return web.Response(status=204)

    web_app = web.Application()
    web_app.router.add_post("/hooks", hook)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bench.flow").write_text(FLOW if audio else FLOW_NO_AUDIO)
        if ivr:
            copy_ivr(Path(tmp), "bench.flow")
        port = free_port()
        rproc = await asyncio.create_subprocess_exec(
            exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", "",
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        c: Cluster | None = None
        try:
            await _wait_ping(url)
            async with Sandbox(port=0, preload_sounds=False) as sb:
                c = Cluster(Path(tmp), url, sb, hooks, hook_url, audio=audio)
                yield c
        finally:
            for proc in c.workers.values() if c else ():
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            rproc.kill()
            await rproc.wait()
            await runner.cleanup()


def prompts(call: SimCall) -> int:
    """How many prompts the caller has started hearing: stretches of audio, or (--no-audio)
    playbacks started."""
    exp = call.experience()
    if any(e["type"] == "playback" for e in exp):
        return sum(e["type"] == "playback" and e["state"] == "playing" for e in exp)
    return sum(e["type"] == "audio" for e in exp)


async def one_call(
    sb: Sandbox, app: str, i: int, placed: list[SimCall] | None = None, listen: float = 0.0
) -> SimCall:
    """The menu prompt heard (``listen`` s of it), 1 pressed, the flow hangs up (``placed``
    gets the call at once)."""
    call = await sb.place_call(from_=f"+1555{i:07d}", to="100", app=app, wait_app=30)
    if placed is not None:
        placed.append(call)
    try:
        await asyncio.wait_for(_heard(call, 1), 60)
        await asyncio.sleep(listen)  # a caller listening to the menu before pressing
        for _ in range(5):  # like a caller, press again when the prompt comes again (failover)
            heard = prompts(call)
            await call.press("1")
            hangup = asyncio.ensure_future(call.wait_hangup(60))
            again = asyncio.ensure_future(_heard(call, heard + 1))
            await asyncio.wait({hangup, again}, return_when=asyncio.FIRST_COMPLETED)
            again.cancel()
            if hangup.done():
                hangup.result()
                break
            hangup.cancel()
    except Exception as exc:  # a lost call is counted by its missing end, not raised
        if os.environ.get("BENCH_LOGS"):
            print(f"caller of {call.id}: {exc!r}")
        if not call.ended:
            await call.hangup()
    return call


async def _heard(call: SimCall, n: int) -> None:
    """Until the caller has heard ``n`` prompts start (or the call ended)."""
    while prompts(call) < n and not call.ended:  # noqa: ASYNC110 - no sandbox event for it
        await asyncio.sleep(0.02)


async def calls(c: Cluster, apps: list[str], n: int, concurrency: int) -> list[SimCall]:
    """``n`` calls over ``apps`` (round robin), ``concurrency`` at a time."""
    sem = asyncio.Semaphore(concurrency)

    async def limited(i: int) -> SimCall:
        async with sem:
            return await one_call(c.sb, apps[i % len(apps)], i)

    return list(await asyncio.gather(*(limited(i) for i in range(n))))


def completed(call: SimCall) -> bool:
    """The caller's view: it pressed 1 and the flow hung up after its last press (no error, no
    menu timeout)."""
    exp = call.experience()
    pressed = [e["t"] for e in exp if e["type"] == "pressed"]
    ends = [e for e in exp if e["type"] == "hangup"]
    return bool(pressed and ends and ends[0]["by"] == "pbx" and ends[0]["t"] - pressed[-1] < 15)


async def settle(c: Cluster, placed: list[SimCall], timeout: float = 20.0) -> int:
    """Wait for the calls' end webhooks; returns how many calls lack exactly one."""
    ids = {call.id for call in placed}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ids <= set(c.ended()):
            break
        await asyncio.sleep(0.1)
    ended = c.ended()
    return sum(ended[i] != 1 for i in ids)


async def workers_up(c: Cluster, apps: list[str], concurrency: int = 0) -> None:
    """Wait for the apps; warm-up calls (prompts cached). ``concurrency``: that many at once,
    so that the workers' connection pools (Redis, aiohttp) have grown before the measured
    calls: a long-running worker opens them once, not per call."""
    for app in apps:
        await c.sb.wait_app(app, 120)
    n = max(2 * len(apps), concurrency)
    await calls(c, apps, n, n)


async def scale(args: argparse.Namespace) -> None:
    print(f"{'workers':>7} {'calls':>6} {'lost':>5} {'conc':>5} {'calls/s':>8} "
          f"{'cpu ms/call':>11} {'calls/core-s':>12} {'redis cmd/call':>14}")  # fmt: skip
    for n in [int(x) for x in args.workers.split(",")]:
        async with cluster(not args.no_audio) as c:
            apps = [f"voxflow{k}" for k in range(n)]
            pids = [await c.worker(app) for app in apps]
            await workers_up(c, apps)
            idle0, t_idle = await c.redis_commands(), time.monotonic()
            await asyncio.sleep(3.0)  # heartbeats and liveness polls alone
            idle_rate = (await c.redis_commands() - idle0 - 1) / (time.monotonic() - t_idle)
            cpu0, cmd0, t0 = sum(map(_cpu, pids)), await c.redis_commands(), time.monotonic()
            placed = await calls(c, apps, args.calls, args.per_worker * n)
            wall = time.monotonic() - t0
            lost = sum(not completed(call) for call in placed) + await settle(c, placed)
            cpu = sum(map(_cpu, pids)) - cpu0
            cmds = await c.redis_commands() - cmd0 - 1 - idle_rate * (time.monotonic() - t0)
        per_call = cpu / args.calls
        print(f"{n:>7} {args.calls:>6} {lost:>5} {args.per_worker * n:>5} "
              f"{args.calls / wall:>8.1f} {per_call * 1000:>11.1f} {1 / per_call:>12.1f} "
              f"{cmds / args.calls:>14.1f}")  # fmt: skip
    print("lost: calls not completed (caller's view) or without exactly one call.ended webhook")
    print("redis cmd/call: the calls' own commands (the idle rate of heartbeats subtracted)")


async def overhead(args: argparse.Namespace) -> None:
    """Worker CPU per whole call without and with --redis, side by side: per round, one worker
    of each serves its own calls, all at the same time (same sandbox, same load), for this
    bench's short calls and for main_ivr calls with audio; Redis round trips per call of the
    clustered worker (MONITOR). ``--before CHECKOUT``: a third worker, with --redis, runs that
    checkout's voxflow."""
    kinds = args.kinds.split(",")
    names = ["plain", "clustered", *(["before"] if args.before else [])]
    per: dict[tuple[str, str], list[float]] = {(k, w): [] for k in kinds for w in names}
    took: dict[tuple[str, str], list[float]] = {(k, w): [] for k in kinds for w in names}
    trips: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(args.repeat):
        for kind in kinds:
            got, rt = await _overhead_round(args, kind, names)
            for name, (cpu, lost, wall) in got.items():
                per[kind, name].append(cpu)
                took[kind, name].append(wall)
                print(f"round {r + 1} {kind} {name}: {cpu:.2f} ms CPU per call, call "
                      f"{wall:.2f} s (median), {lost} lost")  # fmt: skip
            trips[kind].append(rt)
            load = " ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"round {r + 1} {kind}: {rt:.2f} Redis round trips per clustered call; load "
                  f"average {load}")  # fmt: skip
    med = statistics.median
    print(f"\nworker CPU per whole call, medians of {args.repeat} rounds; ratio: median of the "
          "rounds' ratios to the plain worker (no Redis) serving at the same time")  # fmt: skip
    print(f"{'calls':<38} {'worker':<10} {'CPU':>8} {'added':>8} {'ratio':>6} {'call s':>7}")
    for kind in kinds:
        base = per[kind, "plain"]
        label = {"short": f"short ({'' if args.no_audio else 'one prompt, '}~2 s)",
                 "ivr": "main_ivr with audio (~5 s, 3 prompts)"}[kind]  # fmt: skip
        for name in names:
            mine = per[kind, name]
            ratio = med([b / a for a, b in zip(base, mine, strict=True)])
            print(f"{label:<38} {name:<10} {med(mine):>6.2f}ms {med(mine) - med(base):>+6.2f}ms "
                  f"{ratio:>6.3f} {med(took[kind, name]):>7.2f}")  # fmt: skip
        print(f"{label:<38} Redis round trips per clustered call: {med(trips[kind]):.2f}")


async def _overhead_round(
    args: argparse.Namespace, kind: str, names: list[str]
) -> tuple[dict[str, tuple[float, int, float]], float]:
    """One round: the workers ``names`` (``plain``: no Redis; ``clustered``: ``--redis``;
    ``before``: ``--redis`` on ``args.before``'s code), each serving its own application name,
    warmed up; then each serves ``n`` calls, ``--concurrency`` at a time, all at once. Per
    worker: CPU ms per call, calls lost, median call duration (s); and the Redis round trips
    per call of the workers with Redis."""
    ivr = kind == "ivr"
    n = args.ivr_calls if ivr else args.calls
    async with cluster(ivr or not args.no_audio, ivr=ivr) as c:
        pids = {
            name: await c.worker(
                name, redis=name != "plain", code=args.before if name == "before" else None
            )
            for name in names
        }
        for name in names:
            await c.sb.wait_app(name, 120)
        await asyncio.gather(*(_served(c, name, args.concurrency, args.concurrency, ivr)
                               for name in names))  # warm-up  # fmt: skip
        async with _round_trips(c.redis_url) as counted:
            cpu0 = {name: _cpu(pid) for name, pid in pids.items()}
            served = dict(zip(names, await asyncio.gather(
                *(_served(c, name, n, args.concurrency, ivr) for name in names)
            ), strict=True))  # fmt: skip
            missing = {name: await settle(c, served[name][2]) for name in names}
            await asyncio.sleep(0.5)  # the ends' last writes (a tick may wait 0.2 s)
            cpu = {name: (_cpu(pid) - cpu0[name]) / n * 1000 for name, pid in pids.items()}
    got = {name: (cpu[name], served[name][0] + missing[name], served[name][1]) for name in names}
    return got, counted[0] / n / (len(names) - 1)


async def _served(
    c: Cluster, app: str, n: int, concurrency: int, ivr: bool
) -> tuple[int, float, list[SimCall]]:
    """``n`` calls to ``app``: (lost, median call duration in s, the calls (short calls))."""
    if ivr:
        durations: list[float] = []
        lost = await ivr_calls(c.sb, app, n, concurrency, durations)
        return lost, statistics.median(durations), []
    placed = await calls(c, [app], n, concurrency)
    lost = sum(not completed(call) for call in placed)
    return lost, statistics.median(_span(call) for call in placed), placed


def _span(call: SimCall) -> float:
    """Seconds from the call's creation to its hang-up, as the caller saw them."""
    ends = [float(e["t"]) for e in call.experience() if e["type"] == "hangup"]
    return ends[0] if ends else 0.0


@asynccontextmanager
async def _round_trips(url: str) -> AsyncIterator[list[int]]:
    """Counts the commands clients send Redis in the block (``MONITOR``; the commands run
    inside scripts not counted): ``[count]``."""
    counted = [0]
    client = aioredis.Redis.from_url(url)

    async def watch() -> None:
        async with client.monitor() as m:
            async for cmd in m.listen():
                if cmd.get("client_type") != "lua":
                    counted[0] += 1

    task = asyncio.ensure_future(watch())
    await asyncio.sleep(0.2)
    try:
        yield counted
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()


@dataclass
class Soak:
    """The failover soak's state: the serving and standby workers, calls placed, timings."""

    c: Cluster
    ttl: float
    code: str | None = None
    """A checkout whose voxflow the workers run (``--before``); None: this one's."""
    placed: list[SimCall] = field(default_factory=list)
    failover: list[float] = field(default_factory=list)
    unstarted: list[float] = field(default_factory=list)
    """The failover times of calls that had heard no prompt yet at the kill (in ``failover``)."""
    kills: int = 0
    killed_at: list[float] = field(default_factory=list)
    breakdowns: list[dict[str, float]] = field(default_factory=list)
    one_at_a_time: asyncio.Lock = field(default_factory=asyncio.Lock)


async def _holder(c: Cluster, key: str) -> int | None:
    client = aioredis.Redis.from_url(c.redis_url)
    try:
        raw = await client.get(f"voxflow:app:{key}")
    finally:
        await client.aclose()
    text = raw.decode() if isinstance(raw, bytes) else raw
    return int(text.rsplit("-", 1)[1]) if text else None


async def _standby_ready(s: Soak) -> None:
    """Until a worker other than the application name's holder stands by (it warms prompts
    and decoders first: seconds on a loaded box), at most 120 s."""
    key = node_app(s.c.sb.ari_url, "voxflow")
    for _ in range(2400):
        holder = await _holder(s.c, key)
        live = [p for p, proc in s.c.logs.items() if p != holder and _alive(s.c, p)]
        if any("standby: app" in s.c.logs[p].read_text() for p in live):
            return
        await asyncio.sleep(0.05)
    print("no worker stands by after 120 s")


async def _in_menu(s: Soak) -> None:
    """Until every call in progress has heard its menu prompt start (at least 0.2 s, at most
    10 s: a call its worker has not reached by then is killed before its first prompt)."""
    await asyncio.sleep(0.2)  # the calls placed with this one are in progress
    for _ in range(490):
        if all(prompts(call) >= 1 for call in s.placed if not call.ended):
            return
        await asyncio.sleep(0.02)


def _alive(c: Cluster, pid: int) -> bool:
    return any(p.pid == pid and p.returncode is None for p in c.workers.values())


async def _registry_left(state: ClusterState, wait: float) -> tuple[int, str]:
    """Call entries still in the registry after up to ``wait`` s (ends are written in the
    workers' next ticks), and how long it took to empty."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while True:
        left = len(await state.call_entries())
        if left == 0 or loop.time() - t0 >= wait:
            took = loop.time() - t0
            return left, (f"empty after {took:.1f} s" if left == 0 else f"after {wait:g} s")
        await asyncio.sleep(0.2)


async def _kill(s: Soak) -> None:
    """SIGKILL the serving worker once the standby is up; time each live call's next prompt;
    start a new standby."""
    async with s.one_at_a_time:  # the standby of the previous kill is in the registry
        await _kill_now(s)


async def _kill_now(s: Soak) -> None:
    key = node_app(s.c.sb.ari_url, "voxflow")
    procs = {p.pid: p for p in s.c.workers.values() if p.returncode is None}
    for _ in range(500):
        pid = await _holder(s.c, key)
        if pid in procs:
            break
        await asyncio.sleep(0.01)
    else:
        print(f"no live worker holds {key} (holder {pid}): no kill")
        return
    live = [call for call in s.placed if not call.ended]
    heard = {call.id: prompts(call) for call in live}
    procs[pid].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    s.killed_at.append(time.time())
    s.kills += 1
    await procs[pid].wait()
    exited = time.monotonic() - killed  # the kernel reaped it: its sockets are closed

    async def resumed(call: SimCall) -> None:
        while not call.ended:
            if prompts(call) > heard[call.id]:
                s.failover.append(time.monotonic() - killed)
                if not heard[call.id]:  # killed before its first prompt: set up from scratch
                    s.unstarted.append(s.failover[-1])
                return
            await asyncio.sleep(0.01)

    first = len(s.failover)
    await asyncio.gather(*(resumed(call) for call in live))
    delays = sorted(s.failover[first:])
    await _breakdown(s, key, set(procs) - {pid}, s.killed_at[-1], delays, exited)
    await s.c.worker("voxflow", ttl=s.ttl, code=s.code)  # the next standby


_TIMELINE = re.compile(r"take-over timeline \(s after the death was seen at ([\d.]+)\): (.*)")


async def _breakdown(
    s: Soak, key: str, standbys: set[int], killed: float, heard: list[float], exited: float
) -> None:
    """Print where this kill's failover time went: the standby's take-over timeline (its log
    line, :mod:`voxflow.cluster.takeover`) from the kill, and the callers' ears."""
    got: re.Match[str] | None = None
    for _ in range(400):  # the line comes once every resumed call's prompt started (<= 15 s)
        pid = await _holder(s.c, key)
        if pid in standbys:
            got = _TIMELINE.search(s.c.logs[pid].read_text())
            if got:
                break
        await asyncio.sleep(0.05)
    if got is None:
        print(f"kill {s.kills}: no take-over timeline in the standby's log")
        return
    dead = float(got[1]) - killed
    row = {"exited": exited, "dead seen": dead}
    for name, value in re.findall(r"([a-z]+) ([\d.]+)(?:/[\d.]+)?", got[2]):
        row[name] = dead + float(value)
    if heard:
        row["heard"] = statistics.median(heard)
    s.breakdowns.append(row)
    points = ", ".join(f"{k} {v:.2f}" for k, v in row.items())
    worst = f"; max heard {heard[-1]:.2f}" if heard else ""
    print(f"kill {s.kills} (s after the kill; calls: p50): {points}{worst}")


async def failover(args: argparse.Namespace) -> None:
    """The soak; with ``--before CHECKOUT``, ``--rounds`` times each, alternating, with the
    workers running this checkout's code and then that one's; medians and ratios."""
    variants: list[tuple[str, str | None]] = [("now", None)]
    if args.before:
        variants.append(("before", args.before))  # made absolute by main()
    got: dict[str, list[Summary]] = {name: [] for name, _ in variants}
    for r in range(args.rounds):
        for name, code in variants:
            print(f"--- round {r + 1}, {name} ({code or 'this checkout'}), load average "
                  f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
            got[name].append(await _soak(args, code))
    if len(variants) == 1 and args.rounds == 1:
        return
    print("side by side (median over rounds; p50/p99 of kill -> prompt heard again):")
    for name, rows in got.items():
        p50 = statistics.median(x.p50 for x in rows)
        p99 = statistics.median(x.p99 for x in rows)
        print(f"  {name}: p50 {p50:.2f} s, p99 {p99:.2f} s, lost {sum(x.lost for x in rows)}, "
              f"rounds {[f'{x.p50:.2f}/{x.p99:.2f}' for x in rows]}")  # fmt: skip
    if args.before:
        now, before = got["now"], got["before"]
        for what in ("p50", "p99"):
            a = statistics.median(getattr(x, what) for x in now)
            b = statistics.median(getattr(x, what) for x in before)
            print(f"  {what} now / before: {a / b:.2f}" if b else f"  {what}: before is 0")


@dataclass
class Summary:
    """One soak's failover figures."""

    p50: float
    p99: float
    lost: int


async def _soak(args: argparse.Namespace, code: str | None) -> Summary:
    async with cluster(not args.no_audio) as c:
        c.warm = not args.no_warm_prompts
        s = Soak(c, args.ttl, code)
        await c.worker("voxflow", ttl=args.ttl, code=code)
        await workers_up(c, ["voxflow"])
        await c.worker("voxflow", ttl=args.ttl, code=code)  # stands by
        sem = asyncio.Semaphore(args.concurrency)
        killing: list[asyncio.Task[None]] = []

        placing = asyncio.Event()  # cleared while the next standby warms up
        placing.set()

        async def limited(i: int) -> None:
            async with sem:
                if i and i % args.kill_every == 0:  # calls in progress at the kill, on a standby
                    placing.clear()
                    async with s.one_at_a_time:
                        await _standby_ready(s)
                    placing.set()
                await placing.wait()
                call = one_call(c.sb, "voxflow", i, s.placed, args.listen)
                call_task = asyncio.ensure_future(call)
                if i and i % args.kill_every == 0:
                    await _in_menu(s)  # the calls in progress listen to their menu
                    killing.append(asyncio.ensure_future(_kill(s)))
                await call_task

        await asyncio.gather(*(limited(i) for i in range(args.calls)))
        await asyncio.gather(*killing)
        hooks_missing = await settle(c, s.placed)
        ended = c.ended()
        none = sum(ended[call.id] == 0 for call in s.placed)
        lost = [call for call in s.placed if not completed(call)]
        if os.environ.get("BENCH_LOGS"):
            for call in lost:
                exp = call.experience()
                print("lost", call.id, [(e["t"], e["type"], e.get("by", "")) for e in exp])
        state = ClusterState(c.redis_url, worker_id="bench-probe")
        left, emptied = await _registry_left(state, 10.0)
        await state.redis.aclose()
    if s.breakdowns:
        names = list(dict.fromkeys(k for row in s.breakdowns for k in row))
        med = {k: statistics.median(r[k] for r in s.breakdowns if k in r) for k in names}
        print(
            f"where the time goes (median over {len(s.breakdowns)} kills, s after the kill; "
            "calls: their p50): " + ", ".join(f"{k} {v:.2f}" for k, v in med.items())
        )
    f = sorted(s.failover)
    p99 = f[min(len(f) - 1, int(len(f) * 0.99))] if f else float("nan")
    p50 = statistics.median(f) if f else 0.0
    print(
        f"{args.calls} calls, {s.kills} workers killed (SIGKILL), failover_ttl {args.ttl:g} s: "
        f"lost {len(lost)}, calls without exactly one call.ended webhook {hooks_missing} "
        f"({none} without, {hooks_missing - none} with two or more; {c.repeats()} repeats "
        "dropped by Idempotency-Key), "
        f"left in the registry {left} ({emptied}); failover (kill -> the call's prompt "
        f"heard again) over {len(f)} calls: p50 {p50:.2f} s, "
        f"p99 {p99:.2f} s, max {f[-1] if f else 0:.2f} s; {len(s.unstarted)} of them "
        f"killed before their first prompt (max {max(s.unstarted, default=0):.2f} s)"
    )
    return Summary(p50, p99, len(lost))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    sc = sub.add_parser("scale")
    sc.add_argument("--workers", default="1,2,4")
    sc.add_argument("--calls", type=int, default=200)
    sc.add_argument("--per-worker", type=int, default=20, help="concurrent calls per worker")
    ov = sub.add_parser("overhead")
    ov.add_argument("--calls", type=int, default=200)
    ov.add_argument("--concurrency", type=int, default=20)
    ov.add_argument("--repeat", type=int, default=3)
    ov.add_argument("--ivr-calls", type=int, default=60, help="main_ivr calls per round")
    ov.add_argument("--kinds", default="short,ivr", help="short, ivr or both (short,ivr)")
    ov.add_argument(
        "--before", metavar="CHECKOUT", help="a third worker (--redis) runs this checkout's code"
    )
    fo = sub.add_parser("failover")
    fo.add_argument("--calls", type=int, default=1000)
    fo.add_argument("--kill-every", type=int, default=100)
    fo.add_argument("--concurrency", type=int, default=20)
    fo.add_argument("--ttl", type=float, default=3.0, help="[cluster] failover_ttl (seconds)")
    fo.add_argument(
        "--no-warm-prompts", action="store_true", help="workers run --no-warm-prompts (cold)"
    )
    fo.add_argument(
        "--before", metavar="CHECKOUT", help="alternate with soaks whose workers run that code"
    )
    fo.add_argument("--rounds", type=int, default=1, help="soaks per variant")
    fo.add_argument(
        "--listen", type=float, default=1.5, help="s a caller listens to the menu before pressing"
    )
    for p in (sc, ov, fo):
        p.add_argument("--no-audio", action="store_true", help="workers run --no-audio")
    args = ap.parse_args()
    if getattr(args, "before", None):
        args.before = os.path.abspath(args.before)  # the workers run with it as their cwd
    print("command:", " ".join([".venv/bin/python", *sys.argv]))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    run = {"scale": scale, "overhead": overhead, "failover": failover}[args.mode]
    asyncio.run(run(args))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
