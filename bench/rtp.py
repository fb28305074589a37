"""RTP media-path benchmark: concurrent bidirectional 20 ms streams on one core, and barge-in.

Run:  .venv/bin/python bench/rtp.py [--counts 100,250,500,750,1000] [--seconds 5] [--repeat 3]
          [--peer spread|burst] [--trials 20] [--part all|streams|barge-in] [--early 0.0015]
          [--no-pin] [--gc freeze|on]

Part 1 (streams). This process (one event loop = one core) owns N call legs: an RtpSocket each,
an OutboundStream on the ONE shared Pacer, and a JitterBuffer on receive. A peer process (the
"Asterisk" side) sends N paced ulaw streams to us and counts what arrives from us. This process
is pinned to one core and the peer to another (os.sched_setaffinity; --no-pin to leave both to
the scheduler, which then often runs the peer on our core), and after set-up the bench calls
gc.freeze() as a server would after start-up (--gc on to skip). Reported per N: p50/p99/max
send-interval error (|interval - 20 ms| between consecutive sends of the same stream, taken at
our sendto), packets lost in each direction, CPU of this process per stream, and where the error
comes from: p99 jitter of the ticks' first sends, the spread of a tick's send loop (first to last
packet), us per send, GC collections and their longest pause. The largest N whose median over
--repeat runs has p99 <= 2 ms and no loss is the answer.

Part 2 (barge-in). A CallMedia plays a long espeak prompt with BargeIn("speech", min_speech_ms);
the peer speaks at a random moment. Latency = last prompt packet received by the peer minus the
speech onset (first voiced sample sent); the part over min_speech_ms is our reaction time. The ARI
side of CallMedia is a minimal stand-in that answers externalMedia with the peer's RTP address.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import functools
import gc
import multiprocessing as mp
import os
import random
import socket
import statistics
import struct
import sys
import time
from typing import Any

import numpy as np
from loop_probe import BareLoopProbe

from voxflow.media import codecs
from voxflow.media.callmedia import CallMedia
from voxflow.media.jitter import JitterBuffer
from voxflow.media.pacer import OutboundStream, Pacer
from voxflow.media.rtp import RtpPacket
from voxflow.media.transport import RtpSocket
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.media.vad import SpeechDetector, WebRtcVad
from voxflow.voice.call import BargeIn, VoiceContext

FRAME = b"\xff" * 160
EARLY = 0.0015
_ALL_CPUS = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()


# --------------------------------------------------------------------------- peer process


def _peer_main(n: int, seconds: float, conn: Any, burst: bool, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    asyncio.run(_peer(n, seconds, conn, burst))


async def _peer(n: int, seconds: float, conn: Any, burst: bool) -> None:
    loop = asyncio.get_running_loop()
    counts = [0] * n

    class P(asyncio.DatagramProtocol):
        def __init__(self, i: int) -> None:
            self.i = i

        def datagram_received(self, data: bytes, addr: Any) -> None:
            counts[self.i] += 1

    transports = []
    for i in range(n):
        tr, _ = await loop.create_datagram_endpoint(
            functools.partial(P, i), local_addr=("127.0.0.1", 0)
        )
        transports.append(tr)
    conn.send([tr.get_extra_info("sockname")[1] for tr in transports])
    targets: list[int] = conn.recv()
    conn.recv()  # "go": we start streaming together, once the measured side is set up
    # Asterisk runs one 20 ms timer per bridge, started whenever that call began, so its
    # streams arrive spread over the 20 ms period: 20 pacers 1 ms apart. --peer burst sends all
    # streams on one tick (the worst case for us: every inbound packet lands at once). The
    # peer's own timing is not measured: its pacers do not block for precision (early=0).
    groups = 1 if burst else 20
    pacers = []
    frames = int(seconds / 0.02)
    streams = []
    for g in range(groups):
        pacer = Pacer(early=0)
        pacers.append(pacer)
        for i in range(g, n, groups):
            tr = transports[i]
            st = OutboundStream("ulaw")
            st.enqueue(FRAME * frames)
            dest = ("127.0.0.1", targets[i])
            pacer.register(st, functools.partial(_send_to, tr, dest))
            streams.append(st)
        await asyncio.sleep(0.001)
    await asyncio.gather(*(s.wait_idle() for s in streams))
    await asyncio.sleep(0.5)
    sent = [s.packets_sent for s in streams]
    for pacer in pacers:
        await pacer.aclose()
    for tr in transports:
        tr.close()
    conn.send((sent, counts))


def _send_to(tr: asyncio.DatagramTransport, dest: tuple[str, int], data: bytes) -> None:
    tr.sendto(data, dest)


def _cpus() -> tuple[int | None, int | None]:
    """(our core, the peer's core) when this process may run on two or more cores."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return (allowed[0], allowed[1]) if len(allowed) >= 2 else (None, None)


class _GcWatch:
    """Collections and their pauses while the streams run (gc.callbacks)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._t = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._t))


async def _streams(
    n: int, seconds: float, burst: bool = False, pin: bool = True, freeze: bool = True
) -> dict[str, float]:
    ours, theirs = _cpus() if pin else (None, None)
    if ours is not None:
        os.sched_setaffinity(0, {ours})
    parent, child = mp.Pipe()
    proc = mp.Process(target=_peer_main, args=(n, seconds, child, burst, theirs))
    proc.start()
    loop = asyncio.get_running_loop()
    peer_ports: list[int] = await loop.run_in_executor(None, parent.recv)
    jitters = [JitterBuffer("ulaw") for _ in range(n)]
    socks: list[RtpSocket] = []
    for i in range(n):

        def on_packet(p: RtpPacket, i: int = i) -> None:
            jitters[i].push(p)

        s = await RtpSocket.open(on_packet=on_packet)
        s.set_remote("127.0.0.1", peer_ports[i])
        socks.append(s)
    parent.send([s.local[1] for s in socks])
    pacer = Pacer(early=EARLY)
    frames = int(seconds / 0.02)
    # array.array: not tracked by the GC, so the bench's own records add no collection work.
    send_times = [array.array("d") for _ in range(n)]
    mono = time.monotonic
    # Streams are stamped and filled before the first registers (which starts the clock), so the
    # first tick is not late by the bench's own set-up.
    streams, sends = [], []
    for i, s in enumerate(socks):
        st = OutboundStream("ulaw")
        st.enqueue(FRAME * frames)
        times = send_times[i]

        def send(d: bytes, s: RtpSocket = s, times: array.array[float] = times) -> None:
            times.append(mono())  # the error is taken at our sendto, not at the receiver
            s.send(d)

        streams.append(st)
        sends.append(send)
    if freeze:  # what a server does after start-up: long-lived objects leave the GC's scans
        gc.collect()
        gc.freeze()
    gcw = _GcWatch()
    gc.callbacks.append(gcw)
    probe = BareLoopProbe(ours)  # what a bare 20 ms loop on our core suffers meanwhile
    with probe:
        cpu0 = time.process_time()
        wall0 = mono()
        parent.send("go")
        idle = asyncio.gather(*(s.wait_idle() for s in streams))
        await asyncio.sleep(0)  # the waits start (and park) before the clock does
        for st, send in zip(streams, sends, strict=True):
            pacer.register(st, send)
        await idle
        cpu = time.process_time() - cpu0
        wall = mono() - wall0
    gc.callbacks.remove(gcw)
    gc.unfreeze()
    sent_by_peer, got_by_peer = await loop.run_in_executor(None, parent.recv)
    proc.join()
    await pacer.aclose()
    for s in socks:
        await s.aclose()
    if ours is not None:
        os.sched_setaffinity(0, _ALL_CPUS)
    errs = np.concatenate([np.abs(np.diff(np.array(t)) - 0.02) for t in send_times]) * 1000
    # Where the error comes from: every stream sends once per tick, in the same order, so
    # column k of the send times is tick k. Start jitter = |interval between a tick's first
    # sends - 20 ms|; spread = first to last send of a tick (the send loop).
    grid = np.array([t[:frames] for t in send_times if len(t) >= frames])
    starts, ends = grid.min(axis=0), grid.max(axis=0)
    start_err = np.abs(np.diff(starts) - 0.02) * 1000
    spread = (ends - starts) * 1000
    return {
        "bare_p99_ms": probe.figures()["p99_ms"],
        "n": n,
        "p50_ms": float(np.percentile(errs, 50)),
        "p99_ms": float(np.percentile(errs, 99)),
        "max_ms": float(errs.max()),
        "lost_out": sum(len(t) for t in send_times) - sum(got_by_peer),
        # Packets the peer sent that never reached a jitter buffer (its fills do not count).
        "lost_in": sum(sent_by_peer) - sum(j.stats.pushed for j in jitters),
        "cpu_pct": 100 * cpu / wall,
        "cpu_us_per_stream_s": 1e6 * cpu / wall / n,
        "skipped_ticks": pacer.schedule.skipped if pacer.schedule else 0,
        "start_p99_ms": float(np.percentile(start_err, 99)),
        "spread_p50_ms": float(np.percentile(spread, 50)),
        "spread_p99_ms": float(np.percentile(spread, 99)),
        "send_us_per_pkt": float(np.median(spread)) * 1000 / max(1, n - 1),
        "gc_n": len(gcw.pauses),
        "gc_max_ms": 1000 * max((d for _, d in gcw.pauses), default=0.0),
    }


# --------------------------------------------------------------------------- barge-in


class _AriStandIn:
    """Answers what CallMedia asks of ARI; externalMedia points at the peer socket."""

    def __init__(self, rtp_port: int) -> None:
        self.rtp_port = rtp_port

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        if path == "/channels/externalMedia":
            return {
                "id": kw["params"]["channelId"],
                "channelvars": {
                    "UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1",
                    "UNICASTRTP_LOCAL_PORT": str(self.rtp_port),
                },
            }
        return None


async def _barge_in(trials: int, min_speech_ms: int) -> list[float]:
    loop = asyncio.get_running_loop()
    speech = b"".join([c async for c in EspeakTTS(sample_rate=8000).synthesize("operator please")])
    pcm = np.frombuffer(speech, "<i2")
    onset_sample = int(np.argmax(np.abs(pcm) > 500))
    ulaw = codecs.ulaw_encode(speech)
    latencies = []
    rng = random.Random(1)
    for _ in range(trials):
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        last_rx = [0.0]

        async def recv(peer: socket.socket = peer, last_rx: list[float] = last_rx) -> None:
            while True:
                await loop.sock_recv(peer, 2048)
                last_rx[0] = loop.time()

        rx = asyncio.ensure_future(recv())
        ctx = VoiceContext(
            rest=_AriStandIn(peer.getsockname()[1]), channel_id="c", app_name="bench",
            tts=EspeakTTS(), stt=None, vad=None, current_bridge_id=lambda: None,
        )  # fmt: skip
        media = CallMedia(ctx)
        prompt = asyncio.ensure_future(
            media.say(
                "This is a long announcement. " * 6, barge_in=BargeIn("speech", min_speech_ms)
            )
        )
        while media.socket is None or media.socket.remote is None:  # noqa: ASYNC110 - bench only
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3 + rng.random() * 0.5)
        dest = media.socket.local
        t0 = loop.time()
        onset = t0 + onset_sample / 8000
        for i in range(len(ulaw) // 160):
            pkt = struct.pack("!BBHII", 0x80, 0, i, 160 * i, 77) + ulaw[i * 160 : i * 160 + 160]
            peer.sendto(pkt, dest)
            await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.02 - loop.time()))
            if prompt.done():
                break
        result = await prompt
        await asyncio.sleep(0.1)
        if result.interrupted:
            latencies.append((last_rx[0] - onset) * 1000)
        rx.cancel()
        await asyncio.gather(rx, return_exceptions=True)
        await media.aclose()
        peer.close()
    return latencies


_COLUMNS = (  # header, key, format
    ("p50 ms", "p50_ms", "7.3f"),
    ("p99 ms", "p99_ms", "7.3f"),
    ("max ms", "max_ms", "7.2f"),
    ("lost out", "lost_out", "8.0f"),
    ("lost in", "lost_in", "7.0f"),
    ("cpu %", "cpu_pct", "6.1f"),
    ("cpu us/stream/s", "cpu_us_per_stream_s", "15.0f"),
    ("skipped", "skipped_ticks", "7.0f"),
    ("tick start p99", "start_p99_ms", "14.3f"),
    ("spread p50", "spread_p50_ms", "10.2f"),
    ("spread p99", "spread_p99_ms", "10.2f"),
    ("us/send", "send_us_per_pkt", "7.2f"),
    ("gc", "gc_n", "4.0f"),
    ("gc max ms", "gc_max_ms", "9.2f"),
    ("bare p99", "bare_p99_ms", "8.2f"),
)


def _ok(r: dict[str, float]) -> bool:
    return r["p99_ms"] <= 2.0 and r["lost_out"] == 0 and r["lost_in"] == 0


def _print_row(label: str, r: dict[str, float], note: str = "") -> None:
    cells = " ".join(format(r[key], fmt) for _, key, fmt in _COLUMNS)
    print(f"{label:>9} {cells}{note}")


async def _streams_part(args: argparse.Namespace) -> None:
    ours, theirs = _cpus() if args.pin else (None, None)
    where = "unpinned"
    if ours is not None:
        where = f"this process on cpu {ours}, the peer on cpu {theirs}"
    print(f"streams: {args.seconds:g} s of 20 ms ulaw each way per stream; {where}; gc {args.gc}")
    print("error = |interval - 20 ms| between consecutive sends of each stream, at our sendto;")
    print("tick start p99 = p99 |interval - 20 ms| of the ticks' first sends; spread = first")
    print("to last send of a tick (ms); us/send = median spread per packet; gc = collections;")
    print("bare p99 = p99 lateness of a bare 20 ms asyncio loop on our core meanwhile")
    print(f"{'streams':>9} " + " ".join(format(h, ">" + f.split(".")[0]) for h, _, f in _COLUMNS))
    best = 0
    for n in [int(c) for c in args.counts.split(",")]:
        runs = []
        for k in range(args.repeat):
            r = await _streams(
                n, args.seconds, args.peer == "burst", pin=args.pin, freeze=args.gc == "freeze"
            )
            runs.append(r)
            if args.repeat > 1:
                _print_row(f"{n} #{k + 1}", r, "" if _ok(r) else "   <- over budget")
        med = {key: float(statistics.median(r[key] for r in runs)) for key in runs[0]}
        passed = sum(_ok(r) for r in runs)
        best = n if _ok(med) else best
        label = f"{n} median" if args.repeat > 1 else str(n)
        _print_row(label, med, f"   {passed}/{len(runs)} runs within budget")
    print(f"most streams with median p99 send-interval error <= 2 ms and no loss: {best}")


def _vad_false_onsets() -> None:
    """Speech onsets webrtcvad + SpeechDetector report on 20 s of noise (mu-law, 8 kHz)."""
    rng = np.random.default_rng(0)
    n = 8000 * 20
    t = np.arange(n) / 8000
    noises = {
        "white -40 dBFS": rng.normal(0, 330, n),
        "white -30 dBFS": rng.normal(0, 1000, n),
        "white -20 dBFS": rng.normal(0, 3300, n),
        "hum 50 Hz -20 dBFS": 3300 * np.sin(2 * np.pi * 50 * t),
        "1 kHz bursts 60 ms": np.where((t % 0.56) < 0.06, 8000 * np.sin(2 * np.pi * 1000 * t), 0),
    }
    print("false speech onsets in 20 s of noise (VAD mode / min_speech_ms):")
    for name, noise in noises.items():
        pcm = codecs.ulaw_decode(codecs.ulaw_encode(np.clip(noise, -32768, 32767).astype("<i2")))
        row = []
        for mode, ms in ((2, 60), (3, 60), (3, 200)):
            vad, det, count = WebRtcVad(8000, 20, mode), SpeechDetector(min_speech_ms=ms), 0
            for i in range(0, len(pcm) - 319, 320):
                event = det.feed(vad.is_speech(pcm[i : i + 320]))
                if event is not None and event.kind == "start":
                    count += 1
                    det = SpeechDetector(min_speech_ms=ms)
            row.append(f"{mode}/{ms}: {count:>3}")
        print(f"  {name:<20} " + "   ".join(row))


async def _barge_part(args: argparse.Namespace) -> None:
    _vad_false_onsets()
    for ms in (BargeIn().min_speech_ms, 200):
        lat = await _barge_in(args.trials, ms)
        if not lat:
            print(f"barge-in (min_speech_ms={ms}): never interrupted")
            continue
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
        print(f"barge-in min_speech_ms={ms}: speech onset -> outgoing audio stopped: median "
              f"{statistics.median(lat):.0f} ms, p90 {q[89]:.0f} ms, p99 {q[98]:.0f} ms, "
              f"max {max(lat):.0f} ms ({len(lat)}/{args.trials} trials interrupted)")  # fmt: skip


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="100,250,500,750,1000")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3, help="runs per stream count (medians)")
    peer_help = "peer streams spread over the 20 ms (like Asterisk) or all at once"
    ap.add_argument("--peer", choices=("spread", "burst"), default="spread", help=peer_help)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--early", type=float, default=0.0015, help="pacer early wake-up (s)")
    ap.add_argument("--part", choices=("all", "streams", "barge-in"), default="all")
    gc_help = "freeze: gc.freeze() after set-up (as a server after start-up); on: no freeze"
    ap.add_argument("--gc", choices=("freeze", "on"), default="freeze", help=gc_help)
    pin_help = "do not pin this process and the peer to two different cores"
    ap.add_argument("--no-pin", dest="pin", action="store_false", help=pin_help)
    args = ap.parse_args()
    global EARLY
    EARLY = args.early
    print("command:", " ".join([".venv/bin/python", *sys.argv]))
    print("load average at start (1/5/15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if args.part in ("all", "streams"):
        await _streams_part(args)
    if args.part in ("all", "barge-in"):
        await _barge_part(args)


if __name__ == "__main__":
    asyncio.run(main())
