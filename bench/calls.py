"""Whole calls with audio: how many concurrent calls one worker core carries.

    .venv/bin/python bench/calls.py [--counts 25,50,100,200] [--variants interpreter,handler]

The sandbox runs as its own process (``voxflow sandbox``) pinned to one core, with the scripted
callers (a third process, talking to the sandbox's control API) on that core too; the worker is
this process, pinned to the other core, beside a bare 20 ms asyncio loop (``loop_probe.py``)
that shows what the machine itself does to a timer on that core meanwhile.

Each call runs ``flows/main_ivr.flow`` on the real interpreter (``FlowServer``) with audio:
espeak-ng prompts (through the worker's prompt cache) streamed as paced mu-law RTP, VAD and
pocketsphinx listening for the menu's speech choices, DTMF from the caller. The caller waits for
the main menu's prompt, presses 3 (billing), and hangs up once the billing menu's prompt starts
playing. The ``handler`` variant serves the same calls with a hand-written ``CallSession`` handler
making the same calls (the floor for interpreter overhead).

Reported per N: failed calls (the caller heard no audio after its key, or the call ended on its
own), key -> next prompt p50/p99 at the worker (the caller's "3" handed to the app's dispatcher
-> the billing prompt's first RTP packet sent; the sandbox's forwarding to the ear is not
counted), RTP send-interval error of the worker's sends within prompts (p99 |interval - 20 ms|),
and the worker's CPU per call-second. A load passes with zero failed calls, p99 send error
<= 2 ms and p99 key -> prompt <= 50 ms; the largest passing N is printed per variant.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from cpu_split import CpuSplit, children_cpu
from loop_probe import BareLoopProbe
from procs import free_port, wait_up

from voxflow.ari.models import ChannelDtmfReceived
from voxflow.media.callmedia import CallMedia
from voxflow.media.stt_pocketsphinx import PocketSphinxSTT
from voxflow.media.transport import PortRange, RtpSocket
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.media.vad import WebRtcVad
from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
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
SPLIT = CpuSplit()  # the worker's CPU by part; metered code paths installed in main()


# --------------------------------------------------------------- callers (their own process)


async def _one_caller(http: aiohttp.ClientSession, i: int) -> dict[str, Any]:
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
        # Into the menu prompt: the second prompt's audio (it starts >= 1 s after the welcome's;
        # the caller hears each prompt as one stretch of audio), then half a second of it.
        while True:
            exp = await audio_count(1, deadline)
            starts = [e["start"] for e in exp if e["type"] == "audio"]
            if starts[-1] >= starts[0] + 1.0:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        async with http.post(f"/sandbox/calls/{cid}/press", json={"digits": "3"}):
            pass
        await asyncio.sleep(2.0)  # the billing prompt plays (timed at the worker)
        exp = await experience()
        ended = [e for e in exp if e["type"] == "hangup"]
        pressed = [e for e in exp if e["type"] == "pressed"]
        heard = [e for e in exp if e["type"] == "audio" and pressed and (
            e["end"] is None or e["end"] > pressed[0]["t"] + 0.5)]  # fmt: skip
        async with http.post(f"/sandbox/calls/{cid}/hangup", json={}):
            pass
        if ended:
            return {"failed": f"the call ended: {ended[0]}"}
        if not heard:
            return {"failed": "nothing heard after the key"}
        return {}
    except TimeoutError:
        pass
    async with http.post(f"/sandbox/calls/{cid}/hangup", json={}):
        pass
    return {"failed": "the menu prompt never came within 60 s"}


async def _callers(base: str, n: int) -> None:
    conn = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(base, headers=AUTH, connector=conn) as http:
        results = await asyncio.gather(*(_one_caller(http, i) for i in range(n)))
    print(json.dumps(results))


# --------------------------------------------------------------- the worker (this process)


class SendClock:
    """Records when each RtpSocket sends (the worker's outgoing RTP), per socket."""

    def __init__(self) -> None:
        self.times: dict[int, array.array[float]] = defaultdict(lambda: array.array("d"))
        self._orig = RtpSocket.send

        clock = self
        orig = self._orig

        def send(sock: RtpSocket, data: bytes) -> None:
            clock.times[id(sock)].append(time.monotonic())
            orig(sock, data)

        RtpSocket.send = send  # type: ignore[method-assign,assignment]  # bench instrumentation

    def close(self) -> None:
        RtpSocket.send = self._orig  # type: ignore[method-assign]  # restores the method

    def error_p99_ms(self) -> float:
        """p99 |interval - 20 ms| between consecutive sends within a prompt (gaps > 60 ms are
        between prompts, not pacing errors)."""
        errs = []
        for t in self.times.values():
            d = np.diff(np.array(t))
            d = d[d < 0.06]
            errs.append(np.abs(d - 0.02))
        allerr = np.concatenate(errs) if errs else np.zeros(1)
        return float(np.percentile(allerr, 99) * 1000) if len(allerr) else 0.0


class PromptClock:
    """Worker-side key -> next prompt: when the app got the caller's "3" (ChannelDtmfReceived
    handed to its dispatcher) and when the first RTP packet of the billing prompt left."""

    def __init__(self, app: VoxtraApp, sends: SendClock) -> None:
        self.sends = sends
        self.key: dict[str, float] = {}
        self.prompt: dict[str, tuple[int, float]] = {}  # channel -> (socket id, say() called)
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
            return await say(media, text, **kw)

        CallMedia.say = timed_say  # type: ignore[method-assign,assignment]  # instrumentation

    def close(self) -> None:
        CallMedia.say = self._say  # type: ignore[method-assign]  # restores the method

    def latencies_ms(self) -> list[float]:
        out = []
        for channel, (sock, called) in self.prompt.items():
            key = self.key.get(channel)
            first = next((t for t in self.sends.times.get(sock, ()) if t >= called), None)
            if key is not None and first is not None:
                out.append((first - key) * 1000)
        return out


async def _handwritten(call: CallSession) -> None:
    """The same calls as the flow makes for this path, by hand."""
    await call.answer()
    await call.say("Thank you for calling Acme.", barge_in=BargeIn("any"))
    phrases = ["sales", "support", "billing", "pay my bill", "operator", "agent"]
    while True:
        got = await call.say(MENU, barge_in=BargeIn("any"))
        digit = got.digit or await call.listen_dtmf(timeout=5)
        if digit == "3":
            break
        if digit is None:
            await call.listen(5, phrases=phrases)
    await call.say(BILLING, barge_in=BargeIn("any"))
    await call.listen_dtmf(timeout=5)
    await call.hangup()


def _app(base: str) -> VoxtraApp:
    return VoxtraApp(
        base, "voxflow", "voxflow", "voxflow",
        tts=EspeakTTS(sample_rate=8000), stt=PocketSphinxSTT(), vad=WebRtcVad(),
        media_options={"rtp_ports": PortRange(30000, 39999)},
    )  # fmt: skip


async def _variant(base: str, counts: list[int], variant: str) -> list[dict[str, float]]:
    """One worker serving ``variant`` for every N in turn, after a warm-up of 2 calls (a
    running worker has its prompts cached and its decoders built)."""
    app = _app(base)
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
        await _calls(base, 2)  # warm-up
        return [await _measure(app, base, n) for n in counts]
    finally:
        stop.set()
        await serving


async def _calls(base: str, n: int) -> tuple[list[dict[str, Any]], float]:
    """Run ``n`` scripted callers: their results, and this process's children's CPU seconds
    taken once they are done but before their process is waited for (so it is not in it)."""
    callers = subprocess.Popen(  # noqa: ASYNC220 - the bench's own child
        [sys.executable, __file__, "--callers", base.removesuffix("/ari"), str(n)],
        stdout=subprocess.PIPE,
    )
    if OTHER_CPU is not None:
        os.sched_setaffinity(callers.pid, {OTHER_CPU})
    def finish() -> tuple[bytes, float]:
        assert callers.stdout is not None
        out = callers.stdout.read()  # to EOF: the callers are done
        kids = children_cpu()
        callers.wait()
        return out, kids

    out, kids = await asyncio.get_running_loop().run_in_executor(None, finish)
    return list(json.loads(out)), kids


async def _measure(app: VoxtraApp, base: str, n: int) -> dict[str, float]:
    sends = SendClock()
    prompts = PromptClock(app, sends)
    with BareLoopProbe(WORKER_CPU) as probe, SPLIT as split:  # the split ends before the probe
        cpu0, wall0 = time.process_time(), time.monotonic()
        results, split.children_end = await _calls(base, n)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    sends.close()
    prompts.close()
    lat = prompts.latencies_ms()
    per_call_s = {f"cpu_{p}": 1000 * s / (n * wall) for p, s in split.seconds.items()}
    return {
        **per_call_s,
        "n": float(n),
        "failed": float(sum("failed" in r for r in results)),
        "key_p50": float(np.percentile(lat, 50)) if lat else float("nan"),
        "key_p99": float(np.percentile(lat, 99)) if lat else float("nan"),
        "send_p99": sends.error_p99_ms(),
        "cpu_ms_per_call_s": 1000 * cpu / (n * wall),
        "bare_p99": probe.figures()["p99_ms"],
    }


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


def _ok(r: dict[str, float]) -> bool:
    return r["failed"] == 0 and r["send_p99"] <= 2.0 and r["key_p99"] <= 50.0


async def main(args: argparse.Namespace) -> None:
    print("command:", " ".join([".venv/bin/python", *sys.argv]))
    port = free_port()
    exe = Path(sys.executable).with_name("voxflow")
    sandbox = subprocess.Popen(  # noqa: ASYNC220 - the bench's own child
        [str(exe), "sandbox", "--port", str(port)], stdout=subprocess.DEVNULL
    )
    if OTHER_CPU is not None and WORKER_CPU is not None:
        os.sched_setaffinity(sandbox.pid, {OTHER_CPU})
        os.sched_setaffinity(0, {WORKER_CPU})
    base = f"http://127.0.0.1:{port}/ari"
    try:
        await wait_up(port)
        print(f"worker on cpu {WORKER_CPU}, sandbox and callers on cpu {OTHER_CPU}")
        print(f"{'variant':>11} {'calls':>6} {'failed':>6} {'key p50':>8} {'key p99':>8} "
              f"{'send p99':>8} {'cpu ms/call-s':>13} {'= sig':>6} {'+ media':>7} {'+ tts':>6} "
              f"{'+ stt':>6} {'bare p99':>8}")  # fmt: skip
        SPLIT.install()
        best: dict[str, int] = {}
        counts = [int(c) for c in args.counts.split(",")]
        for variant in args.variants.split(","):
            for r in await _variant(base, counts, variant):
                mark = "" if _ok(r) else "   <- over budget"
                print(
                    f"{variant:>11} {r['n']:>6.0f} {r['failed']:>6.0f} {r['key_p50']:>8.1f} "
                    f"{r['key_p99']:>8.1f} {r['send_p99']:>8.2f} "
                    f"{r['cpu_ms_per_call_s']:>13.2f} {r['cpu_signalling']:>6.2f} "
                    f"{r['cpu_media']:>7.2f} {r['cpu_tts']:>6.2f} {r['cpu_stt']:>6.2f} "
                    f"{r['bare_p99']:>8.2f}{mark}"
                )
                if _ok(r):
                    best[variant] = int(r["n"])
        for variant in args.variants.split(","):
            print(f"{variant}: most concurrent calls within budget: {best.get(variant, 0)}")
        print(await _stt_cost())
    finally:
        sandbox.terminate()
        sandbox.wait()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--callers":
        asyncio.run(_callers(sys.argv[2], int(sys.argv[3])))
        sys.exit(0)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="25,50,100,200")
    ap.add_argument("--variants", default="interpreter,handler")
    asyncio.run(main(ap.parse_args()))
