"""Whole calls with audio: how many concurrent calls one worker core carries.

    .venv/bin/python bench/calls.py [--counts 25,50,100,200] [--variants interpreter,handler]
        [--speak-every 4] [--pacers loop,thread] [--gc python,slack] [--fifo] [--repeat 3]
        (--pacers and --gc default to what ``voxflow run`` uses: thread and slack)
        [--census] [--stt-decoders 3] [--stt-slice 320] [--arrivals burst,ramp@25] [--hold S]
        [--stt-log FILE]
        [--before CHECKOUT] [--loop-trace]

The capacity figure set at 500 calls, the old default (loop pacer, Python's collector) beside the
new one (thread pacer, collections in its slack) and the two mixed, with ratios against the first,
in ~3.3 min: ``--counts 500 --variants interpreter --pacers loop,thread --gc python,slack
--speak-every 0 --fifo``. A prompt waits for the pacer's next 20 ms tick; ``--pacers
thread,thread/now`` runs beside it a pacer that starts a prompt on an idle line at once (its first
packet sent when it is queued, ``Pacer.start_now``: measured, not the default).

The sandbox runs as its own process (``voxflow sandbox``) pinned to one core, with the scripted
callers (a third process, talking to the sandbox's control API) on that core too; the worker is
this process, pinned to the other core, beside a bare 20 ms asyncio loop (``loop_probe.py``)
that shows what the machine itself does to a timer on that core meanwhile.

Each call runs ``flows/main_ivr.flow`` on the real interpreter (``FlowServer``) with audio:
espeak-ng prompts (through the worker's prompt cache) streamed as paced mu-law RTP, VAD and
pocketsphinx listening for the menu's speech choices, DTMF from the caller. The caller waits for
the main menu's prompt, presses 3 (billing) or, one caller in ``--speak-every``, says "billing"
(espeak-ng, synthesized once at set-up into the sandbox's cache; it barges in by voice, so the
worker's VAD, end-pointing and pocketsphinx run), and hangs up once the billing menu's prompt
has played a while. The ``handler`` variant serves the same calls with a hand-written
``CallSession`` handler making the same calls (the floor for interpreter overhead); for every N
both variants run, one after the other on a fresh worker each, and a line gives their ratio.

Reported per N: failed calls (the caller heard no audio after its key, or the call ended on its
own), key -> next prompt p50/p99 at the worker (the caller's "3" handed to the app's dispatcher
-> the billing prompt's first RTP packet sent; the sandbox's forwarding to the ear is not
counted; a line splits it: key -> ``say`` called -> first frame queued -> sent), RTP
send-interval error of the worker's sends within prompts (p99 |interval - 20 ms|),
and the worker's CPU per call-second split into signalling, media, TTS and STT; for spoken
answers the misheard count, end of speech -> next prompt p50/p99 and the pocketsphinx decoders
built during the load. A load passes with zero failed calls, p99 send error <= 2 ms and p99 key
-> prompt <= 50 ms; the largest passing N is printed per variant, and with ``--repeat`` in how
many of the runs each combination passed, with the medians. Every load also says where its
collections ran (``gc_watch.py``: Python's own while streams were live or with none, those over
5 ms and when) and where its send errors over 2 ms fall; ``--census`` counts the tracked objects
and the load's cyclic garbage by type (those runs' figures do not count). ``--stt-decoders``: the
worker's pocketsphinx pool (``[media] stt_decoders``), all built before the warm-up;
``--stt-slice``: bytes of audio per pocketsphinx ``process_raw`` call (default 320, one 10 ms
frame; 1280: the 40 ms of before).

``--arrivals`` (``call_callers.py``): ``burst`` (the default, as before: all N callers placed at
once, each hangs up once it heard its next prompt, so every spoken answer comes within ~2 s) or
``ramp@R`` (R calls a second; each caller then stays on the line ``--hold`` s, by default the
ramp's length, so N calls are live at once); several run side by side, each row naming its
model. Every load prints the rate the calls were placed at, the most live at once and the spoken
answers offered a second (mean, and in the busiest second). With ``ramp`` the CPU per
call-second counts each call's own seconds (placed -> hung up); with ``burst`` the load's wall
time per call, as before.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from budget import ok, repeated
from call_callers import SPOKEN, Arrivals, arrivals_line, parse_arrivals
from call_clocks import BILLING, DecoderBuilds, PromptClock, SendClock
from calls_before import not_real_time, ratio_line, run_before
from cpu_split import CpuSplit, children_cpu
from gc_watch import GarbageCensus, GcWatch, tracked_by_type
from late_ticks import LateTicks, tick_line
from loop_probe import FIFO_PRIORITY, BareLoopProbe
from loop_trace import LoopTrace
from procs import free_port, wait_up
from rt_share import RtShare, other_real_time
from stt_capture import capture

from voxflow.media import stt_pocketsphinx
from voxflow.media.gc_slack import SlackCollector, SlackStats
from voxflow.media.pacer import Pacer, install_pacer, shared_pacer
from voxflow.media.pacer_thread import ThreadPacer
from voxflow.media.pacing import make_pacer
from voxflow.media.stt_pocketsphinx import DECODERS_PER_DECISION, PocketSphinxSTT
from voxflow.media.transport import PortRange
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.sandbox.audio import espeak_pcm16_async
from voxflow.telephony.app import VoxtraApp
from voxflow.telephony.session import CallSession
from voxflow.voice.call import BargeIn

ROOT = Path(__file__).resolve().parent.parent
CPUS = sorted(os.sched_getaffinity(0))
WORKER_CPU = CPUS[0] if len(CPUS) > 1 else None
OTHER_CPU = CPUS[1] if len(CPUS) > 1 else None
MENU = "For sales, press 1 or say sales. For support, press 2 or say support. For billing, press 3."
BURST = Arrivals()  # all callers at once (--arrivals burst)
DEFAULT_GC = gc.get_threshold()
GC_THRESHOLDS: tuple[int, ...] = ()  # --gc-thresholds, set in main()
CENSUS = False  # --census, set in main()
LOOP_TRACE = False  # --loop-trace, set in main()
PEER_NICE = -20  # --fifo: the sandbox and callers (Asterisk's part) ahead of other processes
SPLIT = CpuSplit()  # the worker's CPU by part; metered code paths installed in main()


# --------------------------------------------------------------- the worker (this process)


async def _handwritten(call: CallSession) -> None:
    """The same calls as the flow makes for this path, by hand."""
    await call.answer()
    await call.say("Thank you for calling Acme.", barge_in=BargeIn("any"))
    phrases = ["sales", "support", "billing", "pay my bill", "operator", "agent"]
    while True:
        got = await call.say(MENU, barge_in=BargeIn("any"))
        if got.by == "speech" or not got.interrupted:  # a spoken answer, or none yet
            text = await call.listen(5, phrases=phrases, min_confidence=0.5)
            if text in ("billing", "pay my bill"):
                break
            if text:
                continue
        digit = got.digit or await call.listen_dtmf(timeout=5)
        if digit == "3":
            break
    await call.say(BILLING, barge_in=BargeIn("any"))
    await call.listen_dtmf(timeout=5)
    await call.hangup()


STT_DECODERS = DECODERS_PER_DECISION  # the worker's pocketsphinx pool (--stt-decoders)


def _app(base: str) -> VoxtraApp:
    return VoxtraApp(
        base, "voxflow", "voxflow", "voxflow",
        tts=EspeakTTS(sample_rate=8000),
        stt=PocketSphinxSTT(max_decoders=STT_DECODERS),  # VADs: per call, as voxflow run
        media_options={"rtp_ports": PortRange(30000, 39999)},
    )  # fmt: skip


async def _variant(
    base: str,
    counts: list[int],
    variant: str,
    speak_every: int,
    pacer: str = "loop",
    gc_mode: str = "python",
    arrivals: Arrivals = BURST,
) -> list[dict[str, float]]:
    """One worker serving ``variant`` for every N in turn, after a warm-up of 2 calls, one of
    them spoken (a running worker has its prompts cached and its decoders built: ``voxflow
    run`` builds one decision's pocketsphinx decoders before it serves, as here), then
    ``gc.freeze()`` as ``voxflow run`` does before serving. ``pacer``: ``loop`` (the asyncio
    ``Pacer``) or ``thread`` (``ThreadPacer``); ``gc_mode``: ``python`` (Python's own timing) or
    ``slack`` (``SlackCollector``: after a tick's sends), as ``[media] pacer`` and ``gc``."""
    pacer, _, start = pacer.partition("/")  # thread/now: a talkspurt on an idle line at once
    pacer, _, switch_ms = pacer.partition("@")  # thread@5: a 5 ms switch interval (Python's)
    made = make_pacer(pacer, gc_mode)
    if switch_ms and isinstance(made, ThreadPacer):
        made.switch_interval = float(switch_ms) / 1000
    made.start_now = start == "now"
    install_pacer(made)
    app = _app(base)
    assert isinstance(app.stt, PocketSphinxSTT)
    await app.stt.warm_up(STT_DECODERS)  # all built before serving, as voxflow run
    stop = asyncio.Event()
    if variant == "handler":
        app.default()(_handwritten)
        serving = asyncio.ensure_future(_serve_app(app, stop))
    else:
        reg = FlowRegistry()
        reg.load([ROOT / "flows" / "main_ivr.flow"])
        server = FlowServer(app, reg, Settings(grace_period=5))
        serving = asyncio.ensure_future(server.serve(stop))
    try:
        await _calls(base, 2, 2, BURST)  # warm-up
        gc.freeze()  # what voxflow run does once it is set up (docs/media-performance.md)
        if GC_THRESHOLDS:  # --gc-thresholds: fewer collections during the load
            gc.set_threshold(*GC_THRESHOLDS)
            if made.collector is not None:
                made.collector.thresholds = GC_THRESHOLDS  # type: ignore[assignment]  # 3 ints
        return [await _measure(app, base, n, speak_every, made.collector, arrivals) for n in counts]
    finally:
        stop.set()
        await serving
        await shared_pacer().aclose()
        if made.collector is not None:
            made.collector.active(False)
        gc.enable()
        gc.unfreeze()
        gc.set_threshold(*DEFAULT_GC)
        _forget_pacer()


async def _calls(
    base: str, n: int, speak_every: int, arrivals: Arrivals
) -> tuple[list[dict[str, Any]], float]:
    """Run ``n`` scripted callers (``call_callers.py``, arriving as ``arrivals`` says): their
    results, and this process's children's CPU seconds taken once they are done but before their
    process is waited for (so it is not in it)."""
    ari = base.removesuffix("/ari")
    hold = "-" if arrivals.hold is None else str(arrivals.hold)
    script = str(Path(__file__).with_name("call_callers.py"))
    callers = subprocess.Popen(  # noqa: ASYNC220 - the bench's own child
        [sys.executable, script, ari, str(n), str(speak_every), arrivals.label, hold],
        stdout=subprocess.PIPE,
    )
    if OTHER_CPU is not None:
        os.sched_setaffinity(callers.pid, {OTHER_CPU})
    if os.sched_getscheduler(0) == os.SCHED_FIFO:  # --fifo: FIFO is for the worker alone
        os.sched_setscheduler(callers.pid, os.SCHED_OTHER, os.sched_param(0))
        os.setpriority(os.PRIO_PROCESS, callers.pid, PEER_NICE)

    def finish() -> tuple[bytes, float]:
        assert callers.stdout is not None
        out = callers.stdout.read()  # to EOF: the callers are done
        kids = children_cpu()
        callers.wait()
        return out, kids

    out, kids = await asyncio.get_running_loop().run_in_executor(None, finish)
    return list(json.loads(out)), kids


def _pool_waits(app: VoxtraApp) -> int:
    """Recognitions that found no pocketsphinx decoder free and waited for one, so far."""
    return app.stt.stats().waits if isinstance(app.stt, PocketSphinxSTT) else 0


def _forget_pacer() -> None:
    """The next worker gets a fresh shared pacer (the one installed stays otherwise)."""
    install_pacer(Pacer())


async def _measure(
    app: VoxtraApp,
    base: str,
    n: int,
    speak_every: int,
    collector: SlackCollector | None,
    arrivals: Arrivals,
) -> dict[str, float]:
    sends = SendClock()
    prompts = PromptClock(app, sends)
    trace = LoopTrace() if LOOP_TRACE else None
    built = DecoderBuilds()
    waits0 = _pool_waits(app)
    if collector is not None:  # the load's collections only, not the warm-up's
        collector.stats = SlackStats([0, 0, 0])
    census = GarbageCensus() if CENSUS else contextlib.nullcontext()
    counting = asyncio.ensure_future(_census(n)) if CENSUS else None
    pauses = GcWatch(shared_pacer())
    started_now, started_busy = shared_pacer().started_now, shared_pacer().started_busy
    late = LateTicks()
    started = time.monotonic()  # GcWatch's "at" and over_budget_line count from here
    fifo = os.sched_getscheduler(0) == os.SCHED_FIFO
    rt = RtShare(os.getpid(), OTHER_CPU) if fifo else contextlib.nullcontext()
    with rt, BareLoopProbe(WORKER_CPU, fifo) as probe, SPLIT as split, census:  # split ends first
        cpu0, wall0 = time.process_time(), time.monotonic()
        results, split.children_end = await _calls(base, n, speak_every, arrivals)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    if counting is not None and isinstance(census, GarbageCensus):
        counting.cancel()
        print(f"{'':>11} {n:>6} {census.line(n)}")
    slack = ""
    if collector is not None:
        st = collector.stats
        slack = (f"; in the slack: {'/'.join(map(str, st.collections))}, {st.deferred} ticks "
                 f"deferred, {st.forced} forced, {st.oversized} longer than any slack run at once, "
                 f"longest {1000 * st.longest:.1f} ms, garbage "
                 f"found {'/'.join(map(str, st.found))}")  # fmt: skip
    p = shared_pacer()
    lead = (f"; pacer build {1000 * p.build_lead:.1f} ms, wake lag {1000 * p.wake_lag:.1f} ms, "
            f"talkspurts started at once {p.started_now - started_now}, left to the next tick "
            f"(one in flight) {p.started_busy - started_busy}")  # fmt: skip
    pauses.close()
    print(f"{'':>11} {n:>6} {pauses.summary()}{slack}{lead}")
    print(f"{'':>11} {n:>6} {prompts.split_line()}")
    if trace is not None:
        trace.close()
        print(f"{'':>11} {n:>6} {trace.line(prompts.key_say_windows())}")
    print(f"{'':>11} {n:>6} send error: {sends.over_budget_line(started)}")
    print(f"{'':>11} {n:>6} send error: {sends.started_line()}")
    late.close()
    if late.ticks:
        print(f"{'':>11} {n:>6} pacer thread: {late.line()}")
    print(f"{'':>11} {n:>6} {tick_line(list(sends.times.values()), started)}")
    if isinstance(rt, RtShare):
        print(f"{'':>11} {n:>6} {rt.line()}")
        for other in other_real_time(WORKER_CPU, {os.getpid()}):
            print(f"{'':>11} {n:>6} WARNING: another real-time process on the worker's core: "
                  f"{other}; these figures do not count")  # fmt: skip
    sends.close()
    prompts.close()
    built.close()
    waits = _pool_waits(app) - waits0
    print(f"{'':>11} {n:>6} decoder pool: {waits} recognitions waited for a free decoder")
    print(f"{'':>11} {n:>6} {arrivals_line(arrivals, results)}")
    lat = prompts.latencies_ms()
    why = Counter(str(r["failed"])[:60] for r in results if "failed" in r)
    if why:
        print(f"{'':>11} {n:>6} failed: " + "; ".join(f"{k} x{v}" for k, v in why.items()))
    texts = Counter(text for _, _, text in prompts.heard.values())
    if texts:
        print(f"{'':>11} {n:>6} recognised: " + "; ".join(f"{k!r} x{v}" for k, v in texts.items()))
    spoken = prompts.speech_latencies_ms()
    speakers = sum(bool(r.get("spoke")) for r in results)
    call_s = _call_seconds(results, arrivals) or n * wall
    per_call_s = {f"cpu_{p}": 1000 * s / call_s for p, s in split.seconds.items()}
    return {
        **per_call_s,
        "n": float(n),
        "failed": float(sum("failed" in r for r in results)),
        "key_p50": float(np.percentile(lat, 50)) if lat else float("nan"),
        "key_p99": float(np.percentile(lat, 99)) if lat else float("nan"),
        "spoke": float(speakers),
        "decoders_built": float(built.count),
        "build_s": built.seconds,
        "misheard": float(max(0, speakers - len(spoken))),
        "speech_p50": float(np.percentile(spoken, 50)) if spoken else float("nan"),
        "speech_p99": float(np.percentile(spoken, 99)) if spoken else float("nan"),
        "send_p99": sends.error_p99_ms(),
        "cpu_ms_per_call_s": 1000 * cpu / call_s,
        "bare_p99": probe.figures()["p99_ms"],
    }


def _call_seconds(results: list[dict[str, Any]], arrivals: Arrivals) -> float:
    """The load's call-seconds when callers arrive over time (each call's placed -> hung up);
    0 for a burst, whose calls all last the load's wall time (its figure as before)."""
    if arrivals.rate is None:
        return 0.0
    return float(sum(r["ended"] - r["placed"] for r in results if "ended" in r and "placed" in r))


async def _census(n: int) -> None:
    """--census: the objects the collector tracks before the load and once 90 % of its calls
    have audio (counted on the loop: this stalls it, so the run's figures do not count)."""
    total, top = tracked_by_type()
    print(f"{'':>11} {n:>6} tracked at idle (after the freeze): {total}: {top}")
    while shared_pacer().streams < 0.9 * n:  # noqa: ASYNC110 - a count, no event to wait on
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)
    live = shared_pacer().streams
    total, top = tracked_by_type()
    print(f"{'':>11} {n:>6} tracked at {live} streams: {total} ({total / live:.0f} a call): {top}")


async def _serve_app(app: VoxtraApp, stop: asyncio.Event) -> None:
    async with app:
        await stop.wait()


async def _stt_cost(phrase: str = "billing") -> str:
    """CPU of one pocketsphinx recognition of ``phrase`` (espeak-ng) against the main menu's
    grammar, without and with a confidence decision (the callers here only press keys, so the
    per-call split's STT is listening alone; a spoken answer costs this much more)."""
    tts, stt = EspeakTTS(sample_rate=16000), PocketSphinxSTT()
    pcm = b"".join([c async for c in tts.synthesize(phrase)])
    phrases = ["sales", "support", "billing", "pay my bill", "operator", "agent"]
    out = []
    for least in (0.0, 0.5):
        costs = []
        for _ in range(5):
            stream = await stt.open_stream(phrases=phrases, min_confidence=least)
            cpu0 = time.process_time()  # decoding runs in a worker thread, the loop waits
            for i in range(0, len(pcm), 640):  # 20 ms frames, as the media path feeds them
                await stream.feed(pcm[i : i + 640])
            heard = await stream.finish()
            costs.append(1000 * (time.process_time() - cpu0))
            await stream.aclose()
        out.append(f"min_confidence {least:g}: {np.median(costs):.0f} ms ({heard.text!r})")
    return f"STT, one recognition of {phrase!r} ({len(pcm) / 32000:.1f} s): " + ", ".join(out)


_HEADER = (
    f"{'variant':>11} {'calls':>6} {'failed':>6} {'spoke':>5} {'misheard':>8} {'key p50':>7} "
    f"{'key p99':>7} {'speech p50':>10} {'speech p99':>10} {'send p99':>8} "
    f"{'cpu ms/call-s':>13} {'= sig':>6} {'+ media':>7} {'+ tts':>6} {'+ stt':>6} {'bare p99':>8}"
)


def _row(variant: str, r: dict[str, float]) -> str:
    mark = "" if ok(r) else "   <- over budget"
    return (
        f"{variant:>11} {r['n']:>6.0f} {r['failed']:>6.0f} {r['spoke']:>5.0f} "
        f"{r['misheard']:>8.0f} {r['key_p50']:>7.1f} {r['key_p99']:>7.1f} "
        f"{r['speech_p50']:>10.1f} {r['speech_p99']:>10.1f} {r['send_p99']:>8.2f} "
        f"{r['cpu_ms_per_call_s']:>13.2f} {r['cpu_signalling']:>6.2f} {r['cpu_media']:>7.2f} "
        f"{r['cpu_tts']:>6.2f} {r['cpu_stt']:>6.2f} {r['bare_p99']:>8.2f} "
        f"{r['decoders_built']:>5.0f} ({r['build_s']:.1f} s){mark}"
    )


def _pacer_thread_above_loop() -> None:
    """Under ``--fifo`` the pacer's thread runs one priority above the loop thread: FIFO threads
    of one priority never preempt each other, where the kernel's default scheduler lets a thread
    that mostly sleeps (the pacer) preempt a busy one (the loop) when it wakes."""
    run = ThreadPacer._run_thread

    def above(pacer: ThreadPacer) -> None:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(FIFO_PRIORITY + 1))
        run(pacer)

    ThreadPacer._run_thread = above  # type: ignore[method-assign,assignment]  # bench instrumentation


def _normal_priority() -> None:
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def _executor_threads_not_real_time() -> None:
    """``--stt-priority other``: the loop's worker threads (pocketsphinx's decoding, the pool's
    build) run at the default policy, so under ``--fifo`` they decode in what the real-time
    threads leave and never count against the kernel's real-time budget."""
    executor = ThreadPoolExecutor(thread_name_prefix="stt", initializer=_normal_priority)
    asyncio.get_running_loop().set_default_executor(executor)
    print("the worker's executor threads (STT decoding) at SCHED_OTHER")


def _label(combo: tuple[str, str, str], combos: list[tuple[str, str, str]]) -> str:
    """``interpreter/thread+slack``: the parts that differ between the combinations run."""
    kind, pacer, gc_mode = combo
    label = kind + (f"/{pacer}" if len({c[1] for c in combos}) > 1 else "")
    return label + (f"+{gc_mode}" if len({c[2] for c in combos}) > 1 else "")


async def _side_by_side(
    base: str,
    n: int,
    combos: list[tuple[str, str, str]],
    speak_every: int,
    best: dict[str, int],
    arrivals: Arrivals,
) -> dict[tuple[str, str, str], dict[str, float]]:
    """``n`` calls on each combination (variant, pacer, gc), one after the other, each on a fresh
    worker; then each against the first combination of its variant (the baseline), and the
    interpreter against the handler. Every row names its arrival model."""
    rows: dict[tuple[str, str, str], dict[str, float]] = {}
    for combo in combos:
        (r,) = await _variant(base, [n], combo[0], speak_every, combo[1], combo[2], arrivals)
        rows[combo] = r
        label = _label(combo, combos)
        load = os.getloadavg()[0]
        print(_row(label, r) + f"   load {load:.1f}   arrivals {arrivals.label}")
        if ok(r):
            key = f"{label} ({arrivals.label})"
            best[key] = max(best.get(key, 0), n)
    for combo, r in rows.items():
        first = next(c for c in combos if c[0] == combo[0])
        if combo != first:
            b = rows[first]
            print(f"{'':>11} {n:>6} {_label(combo, combos)} / {_label(first, combos)}: send p99 "
                  f"x{r['send_p99'] / b['send_p99']:.2f}, key p99 "
                  f"x{r['key_p99'] / b['key_p99']:.2f}"
                  f", bare p99 x{r['bare_p99'] / b['bare_p99']:.2f}")  # fmt: skip
    firsts = {c[0]: rows[c] for c in reversed(combos)}
    if {"interpreter", "handler"} <= firsts.keys():
        i, h = firsts["interpreter"], firsts["handler"]
        print(f"{'':>11} {n:>6} interpreter / handler: CPU per call-second "
              f"x{i['cpu_ms_per_call_s'] / h['cpu_ms_per_call_s']:.2f}, key p99 "
              f"{i['key_p99'] - h['key_p99']:+.1f} ms, send p99 "
              f"{i['send_p99'] - h['send_p99']:+.2f} ms")  # fmt: skip
    return rows


async def _against_before(
    args: argparse.Namespace,
    base: str,
    n: int,
    combos: list[tuple[str, str, str]],
    best: dict[str, int],
    arrivals: Arrivals,
) -> dict[tuple[str, str, str], dict[str, float]]:
    """One load, run first by the ``--before`` checkout (when given, ``calls_before.py``), then by
    this code; with a line of ratios after / before for the first combination."""
    before = None
    if args.before:
        checkout = Path(args.before)
        with not_real_time():
            before, out = await asyncio.to_thread(
                run_before, checkout, sys.argv[1:], n, arrivals.label, set(CPUS)
            )
        print(f"before ({checkout}):")
        print("\n".join("  " + line for line in out.splitlines() if line.strip()))
        print("after (this checkout):")
    rows = await _side_by_side(base, n, combos, args.speak_every, best, arrivals)
    if args.before:
        first = combos[0]
        print(ratio_line(n, f"{_label(first, combos)} ({arrivals.label})", before, rows[first]))
    return rows


async def main(args: argparse.Namespace) -> None:
    print("command:", " ".join([".venv/bin/python", *sys.argv]))
    global GC_THRESHOLDS, CENSUS, LOOP_TRACE
    CENSUS, LOOP_TRACE = args.census, args.loop_trace
    if args.gc_thresholds:
        GC_THRESHOLDS = tuple(int(x) for x in args.gc_thresholds.split(","))
    port = free_port()
    exe = Path(sys.executable).with_name("voxflow")
    sandbox = subprocess.Popen(  # noqa: ASYNC220 - the bench's own child
        [str(exe), "sandbox", "--port", str(port)], stdout=subprocess.DEVNULL
    )
    if OTHER_CPU is not None and WORKER_CPU is not None:
        os.sched_setaffinity(sandbox.pid, {OTHER_CPU})
        os.sched_setaffinity(0, {WORKER_CPU})
    if args.fifo:  # the worker's threads (and its probe); the callers are set back (_calls)
        os.setpriority(os.PRIO_PROCESS, sandbox.pid, PEER_NICE)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(FIFO_PRIORITY))
        _pacer_thread_above_loop()
        print(f"worker and bare loop at SCHED_FIFO {FIFO_PRIORITY}, pacer thread 1 above; "
              f"sandbox and callers at nice {PEER_NICE}")  # fmt: skip
        if args.stt_priority == "other":
            _executor_threads_not_real_time()
    base = f"http://127.0.0.1:{port}/ari"
    try:
        await wait_up(port)
        print(f"worker on cpu {WORKER_CPU}, sandbox and callers on cpu {OTHER_CPU}")
        print(_HEADER)
        SPLIT.install()
        await espeak_pcm16_async(SPOKEN)  # the spoken answer, synthesized once for the sandbox
        combos = [(v, p, g) for v in args.variants.split(",")
                  for p in args.pacers.split(",") for g in args.gc.split(",")]  # fmt: skip
        best: dict[str, int] = {}
        models = args.models
        for n in [int(c) for c in args.counts.split(",")]:
            for arrivals in models:
                runs = [await _against_before(args, base, n, combos, best, arrivals)
                        for _ in range(args.repeat)]  # fmt: skip
                if args.repeat > 1:
                    labels = [f"{_label(c, combos)} ({arrivals.label})" for c in combos]
                    for line in repeated(n, labels, combos, runs):
                        print(line)
        for arrivals in models:
            for label in dict.fromkeys(_label(c, combos) for c in combos):
                key = f"{label} ({arrivals.label})"
                print(f"{key}: most concurrent calls within budget: {best.get(key, 0)}")
        print(await _stt_cost())
    finally:
        sandbox.terminate()
        sandbox.wait()


def _exit_on_sigterm() -> None:
    """A bench killed with SIGTERM unwinds as an interrupted one does: its ``finally`` blocks stop
    the sandbox and callers it started (a bare SIGTERM left them running)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="25,50,100,200")
    ap.add_argument("--variants", default="interpreter,handler")
    ap.add_argument(
        "--fifo",
        action="store_true",
        help="run the worker and its bare loop at SCHED_FIFO, the sandbox and callers at nice -20 "
        "(a busy shared machine's other processes then delay neither; both are measured alike)",
    )
    ap.add_argument(
        "--gc-thresholds",
        default="",
        help="gc.set_threshold() for the worker after its freeze, e.g. 50000,20,100 (default: "
        "Python's 700,10,10)",
    )
    ap.add_argument(
        "--pacers",
        default="thread",
        help="loop (the asyncio Pacer), thread (ThreadPacer), or both: loop,thread ([media] "
        "pacer; the first listed is the baseline of the ratios); thread@5: the thread pacer "
        "with Python's 5 ms switch interval instead of its 0.5 ms; thread/now (or loop/now): "
        "a prompt on an idle line starts at once (Pacer.start_now) instead of at the next tick",
    )
    ap.add_argument(
        "--gc",
        default="slack",
        help="python (Python's own timing), slack (SlackCollector: after a tick's sends), freeze "
        "(FreezingCollector), or several: python,slack ([media] gc; the first is the baseline)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every load this many times in a row and print, per combination, in how many "
        "runs it met the budget and the medians",
    )
    ap.add_argument(
        "--census",
        action="store_true",
        help="count the objects the collector tracks at idle and at load, and the cyclic "
        "garbage of each load by type (gc.DEBUG_SAVEALL: its figures do not count)",
    )
    ap.add_argument(
        "--loop-trace",
        action="store_true",
        help="time every event-loop callback and split each key -> say() by what ran in it "
        "(loop_trace.py; ~1 us a callback: those runs' latency figures do not count)",
    )
    ap.add_argument(
        "--speak-every",
        type=int,
        default=4,
        help="one caller in this many answers by voice instead of a key (0: keys only)",
    )
    ap.add_argument(
        "--arrivals",
        default="burst",
        help="how the callers arrive: burst (all at once, each hangs up once it heard its next "
        "prompt) or ramp@R (R calls a second, each then stays --hold s on the line, so N are "
        "live at once); several, e.g. burst,ramp@25, run side by side (bench/call_callers.py)",
    )
    ap.add_argument(
        "--before",
        default="",
        help="a checkout (e.g. git archive COMMIT | tar -x -C DIR) whose bench/calls.py runs "
        "every load just before this code does; both rows and the ratios are printed "
        "(calls_before.py)",
    )
    ap.add_argument(
        "--hold",
        type=float,
        default=None,
        help="seconds a caller stays on the line after hearing its next prompt (default: 0 for "
        "burst, the ramp's length N/R for ramp@R)",
    )
    ap.add_argument(
        "--stt-decoders",
        type=int,
        default=DECODERS_PER_DECISION,
        help="the worker's pocketsphinx decoder pool ([media] stt_decoders; ~95 MB each)",
    )
    ap.add_argument(
        "--stt-slice",
        type=int,
        default=stt_pocketsphinx._SLICE_BYTES,
        help="bytes of 16 kHz audio per pocketsphinx process_raw call, which holds the GIL "
        "(default one 10 ms frame; 1280: the 40 ms of before)",
    )
    ap.add_argument(
        "--stt-priority",
        choices=("fifo", "other"),
        default="fifo",
        help="under --fifo, the worker's executor threads (pocketsphinx decoding) inherit "
        "SCHED_FIFO (fifo) or run at the default policy (other: in what the real-time threads "
        "leave, outside the kernel's real-time budget)",
    )
    ap.add_argument(
        "--stt-log",
        metavar="FILE",
        help="log every spoken-answer decision the worker makes, with its evidence (grammar, "
        "check, n-best, confidence, decoders), to FILE, and the audio of any naming another "
        "phrase than 'billing' beside it (bench/stt_capture.py)",
    )
    args = ap.parse_args()
    if args.stt_log:  # the recogniser's decisions, one line each; a misroute's audio kept
        capture(args.stt_log, SPOKEN)
    if args.before and args.stt_priority != "fifo":
        ap.error("--stt-priority is not passed to a --before checkout: run the two apart")
    args.models = [parse_arrivals(a, args.hold) for a in args.arrivals.split(",")]  # or exits
    STT_DECODERS = args.stt_decoders
    stt_pocketsphinx._SLICE_BYTES = args.stt_slice  # the module's slice size (bench only)
    _exit_on_sigterm()
    asyncio.run(main(args))
