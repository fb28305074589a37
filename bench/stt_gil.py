"""How long pocketsphinx's decoding keeps the RTP pacer's thread from the GIL.

    .venv/bin/python bench/stt_gil.py [--speakers 20] [--decoders 3] [--slices 1280,320]
        [--rounds 3] [--cpu 0]

``process_raw`` holds the GIL for the whole call (the bindings do not release it), so a pacer
thread that wakes while a worker thread decodes waits for the call to return. This bench runs,
pinned to one CPU as a worker is: ``--speakers`` recognitions of "billing" (espeak-ng through
G.711, the main menu's phrases, ``min_confidence`` 0.5: grammar, phone loop and check) fed at
real time, 20 ms at a time, over a pool of ``--decoders``, and beside them a probe thread that
does what the thread pacer does (switch interval 0.5 ms, a 1 ms sleep, again), timing how late
each sleep comes back. Each slice size (bytes of 16 kHz pcm16 per ``process_raw`` call; the first
listed is the baseline: 1280 = 40 ms, what was decoded per call before; 320 = one 10 ms frame, the
default now) runs ``--rounds`` times, alternating, in the same minutes; first a round with no
decoding gives the machine's own lateness. Printed per slice: the probe's p50/p99/max lateness,
the CPU of one ``process_raw`` call (p50/p99/max), the recognitions' finish (end of audio ->
decision) p50/p99, what they decided, and the ratios against the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voxflow.media import codecs, stt_pocketsphinx
from voxflow.media.stt_pocketsphinx import PocketSphinxSTT
from voxflow.media.tts_espeak import EspeakTTS

MENU = ["sales", "support", "billing", "pay my bill", "operator", "agent"]


@dataclass
class Round:
    """One round's figures (ms)."""

    late: list[float] = field(default_factory=list)
    finish: list[float] = field(default_factory=list)
    texts: Counter[str] = field(default_factory=Counter)
    calls: list[float] = field(default_factory=list)  # CPU of each process_raw call


class _Timed:
    """A decoder whose ``process_raw`` calls are timed in CPU time (the GIL is held throughout;
    CPU time, so that another process preempting the thread does not count)."""

    def __init__(self, decoder: object, rnd: list[Round]) -> None:
        self._d, self._rnd = decoder, rnd

    def __getattr__(self, name: str) -> object:
        return getattr(self._d, name)

    def process_raw(self, pcm: bytes, no_search: bool, full_utt: bool) -> object:
        t = time.thread_time()
        try:
            return self._d.process_raw(pcm, no_search, full_utt)  # type: ignore[attr-defined]  # pocketsphinx
        finally:
            self._rnd[0].calls.append(1000 * (time.thread_time() - t))


async def _caller_audio(text: str) -> bytes:
    tts = EspeakTTS(sample_rate=8000)
    pcm = bytes(6400) + b"".join([c async for c in tts.synthesize(text)]) + bytes(6400)
    return codecs.resample(codecs.ulaw_decode(codecs.ulaw_encode(pcm)), 8000, 16000)


async def _speaker(stt: PocketSphinxSTT, audio: bytes, delay: float, r: Round) -> None:
    await asyncio.sleep(delay)
    stream = await stt.open_stream(phrases=MENU, min_confidence=0.5)
    try:
        t0 = time.perf_counter()
        for i in range(0, len(audio), 640):
            await stream.feed(audio[i : i + 640])
            await asyncio.sleep(max(0.0, t0 + (i // 640 + 1) * 0.02 - time.perf_counter()))
        t = time.perf_counter()
        got = await stream.finish()
        r.finish.append(1000 * (time.perf_counter() - t))
        r.texts[got.text] += 1
    finally:
        await stream.aclose()


async def _round(stt: PocketSphinxSTT, audio: bytes, speakers: int, r: Round) -> None:
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            time.sleep(0.001)
            r.late.append(1000 * (time.perf_counter() - t - 0.001))

    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # what ThreadPacer sets while its thread runs
    th = threading.Thread(target=probe, name="probe")
    th.start()
    try:
        if speakers:
            spread = 1.0  # the speakers start within a second of each other
            await asyncio.gather(
                *(_speaker(stt, audio, i * spread / speakers, r) for i in range(speakers))
            )
        else:
            await asyncio.sleep(2.0)
    finally:
        stop.set()
        th.join()
        sys.setswitchinterval(old)


def _q(xs: list[float], p: float) -> float:
    return float(np.percentile(xs, p)) if xs else float("nan")


async def main(args: argparse.Namespace) -> None:
    os.sched_setaffinity(0, {args.cpu})
    slices = [int(s) for s in args.slices.split(",")]
    rnd = [Round()]
    stt = PocketSphinxSTT(max_decoders=args.decoders)
    build = stt.pool._build
    stt.pool._build = lambda: _Timed(build(), rnd)
    await stt.warm_up()
    audio = await _caller_audio("billing")
    print(f"cpu {args.cpu}, {args.speakers} speakers, {args.decoders} decoders, load "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    await _round(stt, audio, 0, rnd[0])
    print(f"{'no decoding':>16}: probe late p50/p99/max {_q(rnd[0].late, 50):.2f} / "
          f"{_q(rnd[0].late, 99):.2f} / {max(rnd[0].late):.1f} ms")  # fmt: skip
    merged: dict[int, Round] = {s: Round() for s in slices}
    for _ in range(args.rounds):
        for s in slices:
            stt_pocketsphinx._SLICE_BYTES = s  # the module's slice size (bench only)
            rnd[0] = Round()
            await _round(stt, audio, args.speakers, rnd[0])
            m = merged[s]
            m.late += rnd[0].late
            m.finish += rnd[0].finish
            m.texts += rnd[0].texts
            m.calls += rnd[0].calls
    base = merged[slices[0]]
    for s in slices:
        m = merged[s]
        print(f"{f'slice {s} B ({s // 32} ms)':>16}: probe late p50/p99/max "
              f"{_q(m.late, 50):.2f} / {_q(m.late, 99):.2f} / {max(m.late):.1f} ms; "
              f"process_raw CPU p50/p99/max {_q(m.calls, 50):.2f} / {_q(m.calls, 99):.2f} / "
              f"{max(m.calls):.1f} ms; finish p50/p99 {_q(m.finish, 50):.0f} / "
              f"{_q(m.finish, 99):.0f} ms; decided {dict(m.texts)}; probe p99 "
              f"x{_q(m.late, 99) / _q(base.late, 99):.2f}, max "
              f"x{max(m.late) / max(base.late):.2f}, CPU max "
              f"x{max(m.calls) / max(base.calls):.2f}, "
              f"finish p50 x{_q(m.finish, 50) / _q(base.finish, 50):.2f}")  # fmt: skip
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--speakers", type=int, default=20)
    ap.add_argument("--decoders", type=int, default=3)
    ap.add_argument("--slices", default="1280,320")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=0)
    asyncio.run(main(ap.parse_args()))
