"""A soak run: many concurrent calls on the sandbox under faults, then "is anything left?".

:func:`run_soak` serves a dialling flow and a menu flow with a real ``FlowServer`` on a
``VoxtraApp`` over the embedded sandbox, and places ``calls`` calls ``concurrency`` at a time:
callers hang up at random moments (while the dial rings, once bridged, in the menu), the
events socket is dropped, REST answers bursts of 5xx, some dials are busy. When every call is
over it checks that nothing is left: the app's registry, its dialled legs, its handler and
background tasks, the sandbox's channels and bridges. Memory is measured with ``tracemalloc``
between a warm-up batch and the end (bytes per 1,000 calls), and as RSS. ``tests/leaks`` runs
it short, ``bench/soak.py`` long.
"""

from __future__ import annotations

import asyncio
import fnmatch
import gc
import random
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxflow.errors import CallEndedError
from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.sandbox.caller import SimCall
from voxflow.sandbox.server import Sandbox
from voxflow.telephony.app import VoxtraApp
from voxflow.testing.holders import holders

__all__ = ["SOAK_FLOWS", "SoakConfig", "SoakReport", "run_soak"]

SOAK_FLOWS = {
    "dial": """\
flow soakdial "dial an operator":
    answers "100"

state start:
    answer
    dial "PJSIP/operator" timeout 5s:
        on answered -> done
        on busy, noanswer, failed -> done

state done:
    hangup "done"
""",
    "busy": """\
flow soakbusy "dial a busy line":
    answers "101"

state start:
    answer
    dial "PJSIP/busy" timeout 5s:
        on answered -> done
        on busy, noanswer, failed -> done

state done:
    hangup "done"
""",
    "menu": """\
flow soakmenu "a menu":
    answers "200"

state start:
    answer
    say "Welcome."
    menu "Press 1." timeout 1s:
        1 -> done
        on noinput, nomatch -> retry
        on exhausted -> done

state done:
    hangup "done"
""",
}


@dataclass
class SoakConfig:
    """What to run. Fault periods are in seconds (0: never)."""

    calls: int = 400
    concurrency: int = 200
    warmup: int = 200
    answer_delay: float = 0.2
    drop_socket_every: float = 1.5
    fail_5xx_every: float = 0.7
    fail_burst: int = 3
    seed: int = 14
    request_timeout: float = 120.0
    """The app's ARI deadlines (each request, the events socket's handshake). The sandbox and
    the callers share the app's process and event loop: on a loaded machine (load ~12 on 2
    cores) a request waited for the loop more than the 10 s default, every answer, hang-up and
    reconnect timed out and was retried, the retries kept the loop saturated, and calls were
    still ringing when the settle gave up. Timeouts are not one of the soak's faults."""
    settle_timeout: float = 30.0
    """After a batch: how long nothing may change (no call ends) before what is left counts
    as left behind."""


@dataclass
class SoakReport:
    """What a soak run measured; ``leftovers`` must be empty."""

    calls: int = 0
    seconds: float = 0.0
    socket_drops: int = 0
    fault_bursts: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    leftovers: dict[str, list[str]] = field(default_factory=dict)
    traced_bytes_per_1000: float = 0.0
    app_bytes_per_1000: float = 0.0
    rss_kb_per_1000: float = 0.0
    rss_start_kb: int = 0
    rss_end_kb: int = 0
    live_call_objects: dict[str, int] = field(default_factory=dict)
    live_call_holders: list[str] = field(default_factory=list)  # what held one (``holders``)

    def lines(self) -> list[str]:
        """The report, for humans."""
        rate = self.calls / self.seconds if self.seconds else 0.0
        return [
            f"calls {self.calls} in {self.seconds:.1f} s ({rate:.0f} calls/s), "
            f"socket drops {self.socket_drops}, 5xx bursts {self.fault_bursts}",
            "outcomes " + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())),
            f"left behind: {self.leftovers or 'nothing'}; per-call objects still alive: "
            f"{self.live_call_objects or 'none'}",
            f"memory per 1,000 calls after warm-up: {self.traced_bytes_per_1000 / 1e6:+.3f} MB "
            f"traced ({self.app_bytes_per_1000 / 1e6:+.3f} MB by the app's own code); RSS "
            f"{self.rss_start_kb / 1024:.1f} -> {self.rss_end_kb / 1024:.1f} MB "
            f"({self.rss_kb_per_1000 / 1024:+.2f} MB per 1,000 calls)",
            *self._holder_lines(),
        ]

    def _holder_lines(self) -> list[str]:
        held = self.live_call_holders
        return ["what holds one of them:", *held] if held else []


def _rss_kb() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() // 1024
    except OSError:  # not Linux: the peak is the best we have
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def leftovers(sb: Sandbox, app: VoxtraApp, server: FlowServer) -> dict[str, list[str]]:
    """Everything still alive on either side (empty when the run left nothing behind): the
    app's sessions, legs, handlers, background tasks and drivers; the sandbox's channels and
    bridges."""
    found = {
        "sessions": sorted(app.sessions),
        "legs": [str(len(app._legs))] if len(app._legs) else [],
        "handlers": sorted(app._handler_tasks),
        # per-call background work (hang-ups, teardowns, a handler's grace): a grace task still
        # waiting holds its finished handler task, counted in live_call_objects otherwise
        "tasks": sorted(t.get_name() for t in app._tasks),
        "drivers": sorted(server.drivers),
        "channels": sorted(f"{c.name} {c.state}" for c in sb.pbx.channels.values()),
        "bridges": sorted(sb.pbx.bridges),
    }
    return {k: v for k, v in found.items() if v}


async def _faults(sb: Sandbox, cfg: SoakConfig, report: SoakReport, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    next_drop = loop.time() + cfg.drop_socket_every
    next_5xx = loop.time() + cfg.fail_5xx_every
    while not stop.is_set():
        await asyncio.sleep(0.05)
        now = loop.time()
        if cfg.drop_socket_every and now >= next_drop:
            if sb.faults.drop_events_socket("voxflow"):
                report.socket_drops += 1
            next_drop = now + cfg.drop_socket_every
        if cfg.fail_5xx_every and now >= next_5xx:
            sb.faults.fail_next_requests(cfg.fail_burst, 503)
            report.fault_bursts += 1
            next_5xx = now + cfg.fail_5xx_every


async def _one_call(sb: Sandbox, rng: random.Random, n: int) -> None:
    kind = rng.random()
    to = "100" if kind < 0.6 else "101" if kind < 0.7 else "200"
    caller = f"+1555{n:07d}"
    call: SimCall = await sb.place_call(from_=caller, to=to, app="voxflow", wait_app=10)
    if to != "200":
        await asyncio.sleep(rng.uniform(0.02, 0.6))  # during the dial, or once bridged
        await call.hangup()
        return
    await asyncio.sleep(rng.uniform(0.05, 0.5))
    if rng.random() < 0.5:
        await call.press("1")
    else:
        await call.hangup()
    await call.wait_hangup(30)


async def _batch(sb: Sandbox, cfg: SoakConfig, rng: random.Random, start: int, n: int) -> None:
    sem = asyncio.Semaphore(cfg.concurrency)

    async def guarded(i: int) -> None:
        async with sem:
            try:
                await _one_call(sb, rng, i)
            except (TimeoutError, Exception) as exc:  # a failed placement is an outcome too
                # CallEndedError: the flow ended the call (a 5xx burst) before the caller pressed
                if not isinstance(exc, TimeoutError | OSError | RuntimeError | CallEndedError):
                    raise

    await asyncio.gather(*(guarded(start + i) for i in range(n)))


async def _settle(sb: Sandbox, app: VoxtraApp, server: FlowServer, idle: float) -> None:
    """Wait until nothing is left, or nothing has changed for ``idle`` s: on a loaded machine
    calls go on ending long after their batch, and each end is progress (a fixed deadline
    reported calls that were still ending as left behind)."""
    loop = asyncio.get_running_loop()
    left = leftovers(sb, app, server)
    deadline = loop.time() + idle
    while left and loop.time() < deadline:
        await asyncio.sleep(0.05)
        now = leftovers(sb, app, server)
        if now != left:
            left, deadline = now, loop.time() + idle


async def _under_faults(
    sb: Sandbox, cfg: SoakConfig, report: SoakReport, batch: Coroutine[Any, Any, None]
) -> None:
    """Run ``batch`` while faults are injected; no fault is left pending after it."""
    stop = asyncio.Event()
    faults = asyncio.ensure_future(_faults(sb, cfg, report, stop))
    try:
        await batch
    finally:
        stop.set()
        await faults
        sb.faults.clear()


async def run_soak(cfg: SoakConfig) -> SoakReport:
    """Run the soak described by ``cfg``; see the module doc. ``ValueError`` when nothing
    would be measured (``warmup`` is not below ``calls``: the calls include the warm-up)."""
    if not 0 <= cfg.warmup < cfg.calls:
        raise ValueError(
            f"a soak needs calls > warmup >= 0 (the calls include the warm-up): "
            f"calls {cfg.calls}, warmup {cfg.warmup}"
        )
    report = SoakReport()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, text in SOAK_FLOWS.items():
            p = Path(tmp) / f"{name}.flow"
            p.write_text(text)
            paths.append(p)
        reg = FlowRegistry()
        reg.load(paths)
        async with Sandbox(
            port=0, answer_delay=cfg.answer_delay, preload_sounds=False, record_heard=False
        ) as sb:
            app = VoxtraApp(
                sb.ari_url, sb.user, sb.password, "voxflow",
                request_timeout=cfg.request_timeout, event_wait=1.0, reconnect_initial=0.05,
                reconnect_max=0.2, retry_initial=0.05, retry_max=0.5,
            )  # fmt: skip
            server = FlowServer(app, reg, Settings(grace_period=5), results_kept=100)
            stop = asyncio.Event()
            serving = asyncio.ensure_future(server.serve(stop))
            try:  # whatever happens, the app stops before the sandbox it talks to
                await sb.wait_app("voxflow", 30)
                await _measure(sb, app, server, cfg, report)
            finally:
                stop.set()
                await serving
    return report


async def _measure(
    sb: Sandbox, app: VoxtraApp, server: FlowServer, cfg: SoakConfig, report: SoakReport
) -> None:
    """The warm-up batch, then the measured batch (traced by ``tracemalloc``) under faults;
    fills ``report``."""
    rng = random.Random(cfg.seed)
    t0 = time.monotonic()
    await _batch(sb, cfg, rng, 0, cfg.warmup)
    await _settle(sb, app, server, cfg.settle_timeout)
    _forget_finished(sb)
    gc.collect()
    tracemalloc.start(10)
    traced0, rss0 = tracemalloc.get_traced_memory()[0], _rss_kb()
    snap0 = tracemalloc.take_snapshot()
    await _under_faults(sb, cfg, report, _batch(sb, cfg, rng, cfg.warmup, cfg.calls - cfg.warmup))
    await _settle(sb, app, server, cfg.settle_timeout)
    _forget_finished(sb)
    gc.collect()
    traced1, rss1 = tracemalloc.get_traced_memory()[0], _rss_kb()
    app_growth = _app_growth(snap0, tracemalloc.take_snapshot())
    tracemalloc.stop()
    report.seconds = time.monotonic() - t0
    report.calls = cfg.calls
    measured = max(1, cfg.calls - cfg.warmup)
    report.traced_bytes_per_1000 = (traced1 - traced0) * 1000 / measured
    report.app_bytes_per_1000 = app_growth * 1000 / measured
    report.rss_start_kb, report.rss_end_kb = rss0, rss1
    report.rss_kb_per_1000 = (rss1 - rss0) * 1000 / measured
    report.leftovers = leftovers(sb, app, server)
    report.live_call_objects, report.live_call_holders = _live_call_objects()
    report.outcomes = _outcomes(server)


def _forget_finished(sb: Sandbox) -> None:
    """The sandbox keeps finished calls (and far ends, and a request log) for inspection: that
    is the test PBX's memory, not the app's, so it is dropped before each measurement."""
    for cid, call in list(sb.calls.items()):
        if call.ended:
            del sb.calls[cid]
    sb.outbound_calls.clear()
    while sb._outbound_q is not None and not sb._outbound_q.empty():
        sb._outbound_q.get_nowait()
    sb.rest_api.http_log.clear()


_NOT_THE_APP = (
    "*/voxflow/sandbox/*",  # the test PBX shares the process
    "*/voxflow/testing/soak.py",  # the callers
    "*/aiohttp/*",  # connection pools and parser buffers (bounded by the connector limit)
)


def _app_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> int:
    """Bytes still held that voxflow's own code allocated between the snapshots (not the
    sandbox, the soak's callers, aiohttp's pools, nor pydantic's bounded JSON string cache)."""
    is_app = _AppTraceback(_json_cache_line())
    return _app_bytes(after, is_app) - _app_bytes(before, is_app)


def _app_bytes(snap: tracemalloc.Snapshot, is_app: _AppTraceback) -> int:
    """Bytes of ``snap`` whose traceback passes ``is_app`` (judged once per distinct traceback:
    tracemalloc's own ``filter_traces`` matches every frame of every trace, minutes in a
    process that has run hundreds of tests)."""
    return sum(st.size for st in snap.statistics("traceback") if is_app(st.traceback))


class _AppTraceback:
    """Whether an allocation's traceback is voxflow's own: a frame in ``*/voxflow/*``, none in
    :data:`_NOT_THE_APP`, and not pydantic's JSON cache (``voxflow/ari/models.py`` at the
    validating line)."""

    def __init__(self, json_cache_line: int) -> None:
        self._json_cache_line = json_cache_line
        self._kind: dict[str, str] = {}

    def _file_kind(self, filename: str) -> str:
        kind = self._kind.get(filename)
        if kind is None:
            if any(fnmatch.fnmatch(filename, p) for p in _NOT_THE_APP):
                kind = "excluded"
            elif fnmatch.fnmatch(filename, "*/voxflow/*"):
                kind = "app"
            else:
                kind = "other"
            self._kind[filename] = kind
        return kind

    def __call__(self, traceback: tracemalloc.Traceback) -> bool:
        app = False
        for frame in traceback:
            kind = self._file_kind(frame.filename)
            if kind == "excluded":
                return False
            if kind == "app":
                if frame.lineno == self._json_cache_line and frame.filename.endswith(
                    "/voxflow/ari/models.py"
                ):
                    return False
                app = True
        return app


def _json_cache_line() -> int:
    """The line of ``voxflow/ari/models.py`` that runs pydantic's JSON validation (jiter keeps a
    bounded cache of the strings it decoded: channel ids fill it, then it stops growing)."""
    import inspect

    from voxflow.ari import models

    lines, start = inspect.getsourcelines(models._validate_json)
    for i, line in enumerate(lines):
        if "_VALIDATE_JSON(" in line:
            return start + i
    return 0


def _live_call_objects() -> tuple[dict[str, int], list[str]]:
    """Per-call objects the garbage collector still finds (sessions, drivers, call tasks), and
    what holds the first one found (``holders``: types and names, no values)."""
    from voxflow.runtime.driver import CallDriver
    from voxflow.telephony.session import CallSession

    counts = {"CallSession": 0, "CallDriver": 0, "call tasks": 0}
    first: object | None = None
    for obj in gc.get_objects():
        if isinstance(obj, CallSession):
            counts["CallSession"] += 1
        elif isinstance(obj, CallDriver):
            counts["CallDriver"] += 1
        elif isinstance(obj, asyncio.Task) and obj.get_name().startswith("call-"):
            counts["call tasks"] += 1
        else:
            continue
        first = obj if first is None else first
    held = holders(first) if first is not None else []
    del first
    return {k: v for k, v in counts.items() if v}, held


def _outcomes(server: FlowServer) -> dict[str, int]:
    """Every call's outcome (``results`` keeps only the newest calls; its counts keep all)."""
    out: dict[str, Any] = dict(server.results.by_outcome)
    out["total"] = server.results.total
    return out
