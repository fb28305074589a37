"""Whole calls with audio: how many concurrent calls one worker core carries.

    .venv/bin/python bench/calls.py [--counts 25,50,100,200] [--variants interpreter,handler]
        [--speak-every 4] [--pacers loop,thread] [--gc python,slack] [--fifo] [--repeat 3]
        (--pacers and --gc default to what ``voxflow run`` uses: thread and slack)
        [--census] [--stt-decoders 3] [--stt-slice 320]

The capacity figure set at 500 calls, the old default (loop pacer, Python's collector) beside the
new one (thread pacer, collections in its slack) and the two mixed, with ratios against the first,
in ~3.3 min: ``--counts 500 --variants interpreter --pacers loop,thread --gc python,slack
--speak-every 0 --fifo``.

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
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import gc
import itertools
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from budget import ok, repeated
from cpu_split import CpuSplit, children_cpu
from gc_watch import GarbageCensus, GcWatch, tracked_by_type
from late_ticks import LateTicks, tick_line
from loop_probe import FIFO_PRIORITY, BareLoopProbe
from procs import free_port, wait_up
from rt_share import RtShare, other_real_time

from voxflow.ari.models import ChannelDtmfReceived
from voxflow.media import stt_pocketsphinx
from voxflow.media.callmedia import CallMedia
from voxflow.media.gc_slack import SlackCollector, SlackStats
from voxflow.media.pacer import OutboundStream, Pacer, install_pacer, shared_pacer
from voxflow.media.pacer_thread import ThreadPacer
from voxflow.media.pacing import make_pacer
from voxflow.media.stt_pocketsphinx import DECODERS_PER_DECISION, PocketSphinxSTT
from voxflow.media.transport import PortRange, RtpSocket
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
AUTH = {"Authorization": "Basic " + base64.b64encode(b"voxflow:voxflow").decode()}
MENU = "For sales, press 1 or say sales. For support, press 2 or say support. For billing, press 3."
BILLING = "To pay your bill, press 1. To hear your balance, press 2. To go back, press 9."
SPOKEN = "billing"  # what a speaking caller says (pre-synthesized by the sandbox at set-up)
DEFAULT_GC = gc.get_threshold()
GC_THRESHOLDS: tuple[int, ...] = ()  # --gc-thresholds, set in main()
CENSUS = False  # --census, set in main()
PEER_NICE = -20  # --fifo: the sandbox and callers (Asterisk's part) ahead of other processes
SPLIT = CpuSplit()  # the worker's CPU by part; metered code paths installed in main()


# --------------------------------------------------------------- callers (their own process)


def _speaks(i: int, every: int) -> bool:
    """Whether caller ``i`` answers by voice (one caller in ``every``; 0: none)."""
    return every > 0 and i % every == every - 1


async def _one_caller(http: aiohttp.ClientSession, i: int, speaks: bool) -> dict[str, Any]:
    body = {"from": f"+1555{i:07d}", "to": "100", "app": "voxflow", "wait_app": 60}
    async with http.post("/sandbox/calls", json=body) as r:
        placed = await r.json()
        if r.status != 201:
            return {"failed": f"refused: {placed.get('message')}"}
    cid = placed["id"]

    async def experience() -> list[dict[str, Any]]:
        async with http.get(f"/sandbox/calls/{cid}") as r:
            return list((await r.json())["experience"])

    async def audio_count(at_least: int, deadline: float) -> list[dict[str, Any]]:
        while time.monotonic() < deadline:
            exp = await experience()
            if sum(e["type"] == "audio" for e in exp) >= at_least:
                return exp
            await asyncio.sleep(0.1)
        raise TimeoutError

    deadline = time.monotonic() + 60
    try:
        # Into the menu prompt: audio that starts >= 0.9 s after the first (the welcome lasts
        # 0.92-0.96 s; under load the caller may hear it in pieces), or audio still heard 1.0 s
        # after the first started (the interpreter may queue the menu right behind the welcome:
        # one stretch of audio, no quiet tick between), then half a second of it.
        first_heard: float | None = None
        while True:
            exp = await audio_count(1, deadline)
            heard = [e for e in exp if e["type"] == "audio"]
            first_heard = first_heard or time.monotonic()
            s0 = heard[0]["start"]
            if heard[-1]["start"] >= s0 + 0.9 or any(
                e["end"] is not None and e["end"] >= s0 + 1.0 for e in heard
            ):
                break
            if heard[-1]["end"] is None and time.monotonic() - first_heard >= 1.0:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        if speaks:  # barges in by voice; returns once the words have all been sent
            async with http.post(f"/sandbox/calls/{cid}/say", json={"text": SPOKEN}):
                pass
            await asyncio.sleep(3.0)  # end-pointing, recognition, then the billing prompt
        else:
            async with http.post(f"/sandbox/calls/{cid}/press", json={"digits": "3"}):
                pass
            await asyncio.sleep(2.0)  # the billing prompt plays (timed at the worker)
        exp = await experience()
        ended = [e for e in exp if e["type"] == "hangup"]
        acted: list[float] = [
            e.get("end") or e["t"] for e in exp if e["type"] in ("pressed", "said")
        ]
        heard = [e for e in exp if e["type"] == "audio" and acted and (
            e["end"] is None or e["end"] > acted[0] + 0.5)]  # fmt: skip
        async with http.post(f"/sandbox/calls/{cid}/hangup", json={}):
            pass
        if ended:
            return {"failed": f"the call ended: {ended[0]}"}
        if not heard:
            return {"failed": f"nothing heard after the {'answer' if speaks else 'key'}"}
        return {"spoke": True} if speaks else {}
    except TimeoutError:
        pass
    async with http.post(f"/sandbox/calls/{cid}/hangup", json={}):
        pass
    return {"failed": "the menu prompt never came within 60 s"}


async def _callers(base: str, n: int, speak_every: int) -> None:
    conn = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(base, headers=AUTH, connector=conn) as http:
        results = await asyncio.gather(
            *(_one_caller(http, i, _speaks(i, speak_every)) for i in range(n))
        )
    print(json.dumps(results))


# --------------------------------------------------------------- the worker (this process)


class SendClock:
    """Records when each RtpSocket sends (the worker's outgoing RTP, from whichever thread sends
    it) and the RTP timestamp sent, per socket."""

    def __init__(self) -> None:
        self.times: dict[int, array.array[float]] = defaultdict(lambda: array.array("d"))
        self.stamps: dict[int, array.array[int]] = defaultdict(lambda: array.array("q"))
        self._orig = (RtpSocket.send, RtpSocket.send_from_thread)

        clock = self

        def timed(orig: Any) -> Any:
            def send(sock: RtpSocket, data: bytes) -> None:
                clock.times[id(sock)].append(time.monotonic())
                clock.stamps[id(sock)].append(int.from_bytes(data[4:8], "big"))
                orig(sock, data)

            return send

        RtpSocket.send = timed(RtpSocket.send)  # type: ignore[method-assign]  # instrumentation
        RtpSocket.send_from_thread = timed(RtpSocket.send_from_thread)  # type: ignore[method-assign]

    def close(self) -> None:
        RtpSocket.send, RtpSocket.send_from_thread = self._orig  # type: ignore[method-assign]

    def error_p99_ms(self) -> float:
        """p99 |send interval - RTP timestamp interval| between consecutive packets of a stream
        (RFC 3550's D: within a prompt |interval - 20 ms|; across a pause the timestamp jumps by
        the pause, so only the send's own lateness counts). Pauses over 1 s are left out (the
        caller's own gaps, and a packet handed to the loop after a full buffer)."""
        allerr = self._errors()[0]
        return float(np.percentile(allerr, 99) * 1000) if len(allerr) else 0.0

    def _errors(self) -> tuple[Any, Any]:
        """Every interval's error (s) and when it ended (monotonic s)."""
        errs, ends = [], []
        for key, t in self.times.items():
            sent = np.array(t)
            d = np.diff(sent)
            dts = np.mod(np.diff(np.array(self.stamps[key])), 2**32) / 8000
            keep = dts < 1.0
            errs.append(np.abs(d[keep] - dts[keep]))
            ends.append(sent[1:][keep])
        if not errs:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(errs), np.concatenate(ends)

    def over_budget_line(self, start: float) -> str:
        """Where the intervals over 2 ms are: how many, and the seconds (since ``start``) that
        hold the most, e.g. ``1893 of 497000 intervals over 2 ms; 4.0 s: 1220, 12.0 s: 500``."""
        err, end = self._errors()
        bad = end[err > 0.002] - start
        secs = Counter(round(float(b), 1) for b in bad)  # by the tenth of a second
        top = ", ".join(f"{s:.1f} s: {k}" for s, k in sorted(secs.most_common(12)))
        return f"{len(bad)} of {len(err)} intervals over 2 ms; by second: {top}"


class PromptClock:
    """Worker-side key -> next prompt: when the app got the caller's "3" (ChannelDtmfReceived
    handed to its dispatcher) and when the first RTP packet of the billing prompt left. For a
    spoken answer, end of speech -> next prompt: the recognition's own ``latency_ms`` (end of
    the caller's speech -> its result: the end-pointer's silence and the decoding) plus the
    result -> the billing prompt's first RTP packet."""

    def __init__(self, app: VoxtraApp, sends: SendClock) -> None:
        self.sends = sends
        self.key: dict[str, float] = {}
        self.prompt: dict[str, tuple[int, float]] = {}  # channel -> (socket id, say() called)
        self.queued: dict[str, float] = {}  # channel -> the billing prompt's first frame queued
        watched: dict[int, str] = {}  # id(outbound stream) -> channel, from say(BILLING) on
        self.heard: dict[str, tuple[float, float, str]] = {}  # channel -> (result at, ms, text)
        on_event = app.events._on_event

        def timed_event(event: Any) -> None:
            if isinstance(event, ChannelDtmfReceived) and event.digit == "3":
                self.key.setdefault(event.channel.id, time.monotonic())
            on_event(event)

        app.events._on_event = timed_event
        self._say = CallMedia.say
        clock, say = self, self._say

        async def timed_say(media: CallMedia, text: str, **kw: Any) -> Any:
            if text == BILLING and media.socket is not None:
                clock.prompt[media.ctx.channel_id] = (id(media.socket), time.monotonic())
                watched[id(media.outbound)] = media.ctx.channel_id
            return await say(media, text, **kw)

        CallMedia.say = timed_say  # type: ignore[method-assign,assignment]  # instrumentation
        self._enqueue = OutboundStream.enqueue
        enqueue = self._enqueue

        def timed_enqueue(stream: OutboundStream, data: bytes) -> None:
            channel = watched.pop(id(stream), None)
            if channel is not None:
                clock.queued[channel] = time.monotonic()
            enqueue(stream, data)

        OutboundStream.enqueue = timed_enqueue  # type: ignore[method-assign,assignment]  # bench
        self._recognize = CallMedia.recognize
        recognize = self._recognize

        async def timed_recognize(media: CallMedia, *args: Any, **kw: Any) -> Any:
            heard = await recognize(media, *args, **kw)
            if heard is not None:
                ms = heard.latency_ms or 0.0
                clock.heard[media.ctx.channel_id] = (time.monotonic(), ms, heard.text)
            return heard

        CallMedia.recognize = timed_recognize  # type: ignore[method-assign,assignment]  # bench

    def close(self) -> None:
        OutboundStream.enqueue = self._enqueue  # type: ignore[method-assign]  # restores it
        CallMedia.say = self._say  # type: ignore[method-assign]  # restores the method
        CallMedia.recognize = self._recognize  # type: ignore[method-assign]  # restores it

    def speech_latencies_ms(self) -> list[float]:
        """End of speech -> the next prompt's first packet, per spoken answer that led to it."""
        out = []
        for channel, (at, ms, _) in self.heard.items():
            sock_called = self.prompt.get(channel)
            if sock_called is None or channel in self.key:
                continue
            sock, called = sock_called
            first = next((t for t in self.sends.times.get(sock, ()) if t >= called), None)
            if first is not None:
                out.append(ms + (first - at) * 1000)
        return out

    def latencies_ms(self) -> list[float]:
        out = []
        for channel, (sock, called) in self.prompt.items():
            key = self.key.get(channel)
            first = next((t for t in self.sends.times.get(sock, ()) if t >= called), None)
            if key is not None and first is not None:
                out.append((first - key) * 1000)
        return out

    def parts_ms(self) -> list[tuple[float, ...]]:
        """Key -> next prompt per call, in three parts (ms): the key handed to the dispatcher ->
        ``say`` called (signalling and the interpreter), -> the prompt's first frame queued (the
        prompt cache; a pass of the loop when ``say`` leaves it to its ``_play`` task), -> that
        frame's packet sent (the pacer's next tick)."""
        out = []
        for channel, (sock, called) in self.prompt.items():
            key, queued = self.key.get(channel), self.queued.get(channel)
            first = next((t for t in self.sends.times.get(sock, ()) if t >= called), None)
            if key is None or queued is None or first is None:
                continue
            times = (key, called, queued, first)
            out.append(tuple(1000 * (b - a) for a, b in itertools.pairwise(times)))
        return out

    def split_line(self) -> str:
        """The parts' p50/p99, and their mean over the slowest 1% of calls."""
        parts = np.array(self.parts_ms()).reshape(-1, 3)
        if not len(parts):
            return "key -> prompt: no call timed"
        total = parts.sum(axis=1)
        slow = parts[total >= np.percentile(total, 99)].mean(axis=0)
        names = ("key->say", "say->queued", "queued->sent")
        each = ", ".join(
            f"{n} {np.percentile(parts[:, i], 50):.1f}/{np.percentile(parts[:, i], 99):.1f}"
            for i, n in enumerate(names)
        )
        worst = " + ".join(f"{v:.1f}" for v in slow)
        return f"key -> prompt p50/p99 (ms): {each}; slowest 1%: {worst}"


class DecoderBuilds:
    """Counts the pocketsphinx decoders built while it is installed, and their CPU (a build
    holds the GIL throughout, ~0.5 s: the loop, pacer included, stands still meanwhile)."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self._orig = PocketSphinxSTT._new_decoder
        meter, orig = self, self._orig

        def new_decoder(stt: PocketSphinxSTT) -> Any:
            started = time.thread_time()
            try:
                return orig(stt)
            finally:
                meter.count += 1
                meter.seconds += time.thread_time() - started

        # a bench meter in place of the method (same call shape; mypy sees self's type twice)
        PocketSphinxSTT._new_decoder = new_decoder  # type: ignore[method-assign,assignment]

    def close(self) -> None:
        PocketSphinxSTT._new_decoder = self._orig  # type: ignore[method-assign]  # restored


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
) -> list[dict[str, float]]:
    """One worker serving ``variant`` for every N in turn, after a warm-up of 2 calls, one of
    them spoken (a running worker has its prompts cached and its decoders built: ``voxflow
    run`` builds one decision's pocketsphinx decoders before it serves, as here), then
    ``gc.freeze()`` as ``voxflow run`` does before serving. ``pacer``: ``loop`` (the asyncio
    ``Pacer``) or ``thread`` (``ThreadPacer``); ``gc_mode``: ``python`` (Python's own timing) or
    ``slack`` (``SlackCollector``: after a tick's sends), as ``[media] pacer`` and ``gc``."""
    pacer, _, switch_ms = pacer.partition("@")  # thread@5: a 5 ms switch interval (Python's)
    made = make_pacer(pacer, gc_mode)
    if switch_ms and isinstance(made, ThreadPacer):
        made.switch_interval = float(switch_ms) / 1000
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
        await _calls(base, 2, 2)  # warm-up
        gc.freeze()  # what voxflow run does once it is set up (docs/media-performance.md)
        if GC_THRESHOLDS:  # --gc-thresholds: fewer collections during the load
            gc.set_threshold(*GC_THRESHOLDS)
            if made.collector is not None:
                made.collector.thresholds = GC_THRESHOLDS  # type: ignore[assignment]  # 3 ints
        return [await _measure(app, base, n, speak_every, made.collector) for n in counts]
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


async def _calls(base: str, n: int, speak_every: int) -> tuple[list[dict[str, Any]], float]:
    """Run ``n`` scripted callers: their results, and this process's children's CPU seconds
    taken once they are done but before their process is waited for (so it is not in it)."""
    ari = base.removesuffix("/ari")
    callers = subprocess.Popen(  # noqa: ASYNC220 - the bench's own child
        [sys.executable, __file__, "--callers", ari, str(n), str(speak_every)],
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
    app: VoxtraApp, base: str, n: int, speak_every: int, collector: SlackCollector | None
) -> dict[str, float]:
    sends = SendClock()
    prompts = PromptClock(app, sends)
    built = DecoderBuilds()
    waits0 = _pool_waits(app)
    if collector is not None:  # the load's collections only, not the warm-up's
        collector.stats = SlackStats([0, 0, 0])
    census = GarbageCensus() if CENSUS else contextlib.nullcontext()
    counting = asyncio.ensure_future(_census(n)) if CENSUS else None
    pauses = GcWatch(shared_pacer())
    late = LateTicks()
    started = time.monotonic()  # GcWatch's "at" and over_budget_line count from here
    fifo = os.sched_getscheduler(0) == os.SCHED_FIFO
    rt = RtShare(os.getpid(), OTHER_CPU) if fifo else contextlib.nullcontext()
    with rt, BareLoopProbe(WORKER_CPU, fifo) as probe, SPLIT as split, census:  # split ends first
        cpu0, wall0 = time.process_time(), time.monotonic()
        results, split.children_end = await _calls(base, n, speak_every)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    if counting is not None and isinstance(census, GarbageCensus):
        counting.cancel()
        print(f"{'':>11} {n:>6} {census.line(n)}")
    slack = ""
    if collector is not None:
        st = collector.stats
        slack = (f"; in the slack: {'/'.join(map(str, st.collections))}, {st.deferred} ticks "
                 f"deferred, {st.forced} forced, longest {1000 * st.longest:.1f} ms, garbage "
                 f"found {'/'.join(map(str, st.found))}")  # fmt: skip
    p = shared_pacer()
    lead = f"; pacer build {1000 * p.build_lead:.1f} ms, wake lag {1000 * p.wake_lag:.1f} ms"
    pauses.close()
    print(f"{'':>11} {n:>6} {pauses.summary()}{slack}{lead}")
    print(f"{'':>11} {n:>6} {prompts.split_line()}")
    print(f"{'':>11} {n:>6} send error: {sends.over_budget_line(started)}")
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
    lat = prompts.latencies_ms()
    why = Counter(str(r["failed"])[:60] for r in results if "failed" in r)
    if why:
        print(f"{'':>11} {n:>6} failed: " + "; ".join(f"{k} x{v}" for k, v in why.items()))
    texts = Counter(text for _, _, text in prompts.heard.values())
    if texts:
        print(f"{'':>11} {n:>6} recognised: " + "; ".join(f"{k!r} x{v}" for k, v in texts.items()))
    spoken = prompts.speech_latencies_ms()
    speakers = sum(bool(r.get("spoke")) for r in results)
    per_call_s = {f"cpu_{p}": 1000 * s / (n * wall) for p, s in split.seconds.items()}
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
        "cpu_ms_per_call_s": 1000 * cpu / (n * wall),
        "bare_p99": probe.figures()["p99_ms"],
    }


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


def _label(combo: tuple[str, str, str], combos: list[tuple[str, str, str]]) -> str:
    """``interpreter/thread+slack``: the parts that differ between the combinations run."""
    kind, pacer, gc_mode = combo
    label = kind + (f"/{pacer}" if len({c[1] for c in combos}) > 1 else "")
    return label + (f"+{gc_mode}" if len({c[2] for c in combos}) > 1 else "")


async def _side_by_side(
    base: str, n: int, combos: list[tuple[str, str, str]], speak_every: int, best: dict[str, int]
) -> dict[tuple[str, str, str], dict[str, float]]:
    """``n`` calls on each combination (variant, pacer, gc), one after the other, each on a fresh
    worker; then each against the first combination of its variant (the baseline), and the
    interpreter against the handler."""
    rows: dict[tuple[str, str, str], dict[str, float]] = {}
    for combo in combos:
        (r,) = await _variant(base, [n], combo[0], speak_every, combo[1], combo[2])
        rows[combo] = r
        label = _label(combo, combos)
        print(_row(label, r) + f"   load {os.getloadavg()[0]:.1f}")
        if ok(r):
            best[label] = max(best.get(label, 0), n)
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


async def main(args: argparse.Namespace) -> None:
    print("command:", " ".join([".venv/bin/python", *sys.argv]))
    global GC_THRESHOLDS, CENSUS
    CENSUS = args.census
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
        for n in [int(c) for c in args.counts.split(",")]:
            runs = [await _side_by_side(base, n, combos, args.speak_every, best)
                    for _ in range(args.repeat)]  # fmt: skip
            if args.repeat > 1:
                for line in repeated(n, [_label(c, combos) for c in combos], combos, runs):
                    print(line)
        for label in dict.fromkeys(_label(c, combos) for c in combos):
            print(f"{label}: most concurrent calls within budget: {best.get(label, 0)}")
        print(await _stt_cost())
    finally:
        sandbox.terminate()
        sandbox.wait()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--callers":
        asyncio.run(_callers(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        sys.exit(0)
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
        "with Python's 5 ms switch interval instead of its 0.5 ms",
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
        "--speak-every",
        type=int,
        default=4,
        help="one caller in this many answers by voice instead of a key (0: keys only)",
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
    args = ap.parse_args()
    STT_DECODERS = args.stt_decoders
    stt_pocketsphinx._SLICE_BYTES = args.stt_slice  # the module's slice size (bench only)
    asyncio.run(main(args))
