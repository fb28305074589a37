"""Speech benchmark: does a spoken answer send the caller to the right place, or to `nomatch`?

    .venv/bin/python bench/speech.py [--voices en-us,en-gb,en-us+f3] [--rates 140,175]
        [--snr clean,20,10] [--min-confidence 0.5] [--limit 0]

For every speech choice of every menu/gather in flows/*.flow (its grammar: that step's choice
phrases), each phrase is spoken by espeak-ng in each voice and rate, clean and with white noise
at each SNR, and sent through the path a call takes: 8 kHz G.711 mu-law in RTP packets -> RTP
parse -> jitter buffer -> decode -> webrtcvad + SpeechDetector endpointing (what CallMedia.listen
does) -> pocketsphinx with the step's phrases (confidence decision) -> the interpreter's choice
matching. Out-of-grammar sentences (callers asking for something the menu does not offer) go
through every grammar too. Printed per condition: in-grammar correct / nomatch / misroute,
out-of-grammar -> nomatch, and the time from the endpoint (end of speech + the end-silence
window) to the decision, p50/p99. Sockets and ARI are left out (the sandbox tests cover them).
Goals (issue 18): misroute <= 1 %, out-of-grammar -> nomatch >= 95 %, correct >= 90 % clean and
>= 80 % at 20 dB, decision p99 <= 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxflow.compiler import compile_flow
from voxflow.ir import models as ir
from voxflow.media import codecs
from voxflow.media.callmedia import _Watcher
from voxflow.media.jitter import JitterBuffer
from voxflow.media.rtp import parse_rtp
from voxflow.media.stt_pocketsphinx import PocketSphinxSTT
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.media.vad import SpeechDetector, WebRtcVad
from voxflow.runtime.matching import _matches
from voxflow.sandbox.audio import add_noise

ROOT = Path(__file__).resolve().parent.parent
OUT_OF_GRAMMAR = [
    "I want to leave a message", "what time do you close", "hello is anybody there",
    "Tuesday", "can you help me", "cancel my order", "I have a question about my account",
    "my number is five five five", "representative please", "I lost my card",
]  # fmt: skip
END_SILENCE_MS = 800
VERBOSE = False


@dataclass(frozen=True)
class Grammar:
    """One step's speech choices: (choice value, its phrases)."""

    where: str
    choices: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def phrases(self) -> list[str]:
        return [p for _, ps in self.choices for p in ps]

    def route(self, text: str) -> str | None:
        for value, phrases in self.choices:
            if _matches(text, "speech", (), phrases, ()):
                return value
        return None


def grammars() -> list[Grammar]:
    """Every step with speech choices in the example flows."""
    out: list[Grammar] = []
    for path in sorted((ROOT / "flows").glob("*.flow")):
        result = compile_flow(path.read_text(), str(path))
        if result.flow is None:
            continue
        for state in result.flow.states.values():
            for step in _steps(state.steps):
                if isinstance(step, ir.GatherStep) and step.choices:
                    ch = tuple((c.value, c.phrases) for c in step.choices if c.phrases)
                    ch += tuple(("cmd:" + c.name, c.phrases) for c in state.commands if c.phrases)
                    if ch:
                        out.append(Grammar(f"{path.stem}:{state.name}", ch))
    return out


def _steps(steps: tuple[ir.Step, ...] | list[ir.Step]) -> list[ir.Step]:
    found: list[ir.Step] = []
    for step in steps:
        found.append(step)
        for name in ("steps", "then_steps", "else_steps", "body"):
            inner = getattr(step, name, None)  # bench only: nested blocks of any step kind
            if isinstance(inner, (list, tuple)):
                found.extend(_steps(list(inner)))
    return found


def _noisy(pcm: bytes, snr_db: float | None, seed: int) -> bytes:
    return pcm if snr_db is None else add_noise(pcm, snr_db, seed=seed)


def _packets(pcm8k: bytes) -> list[bytes]:
    """0.5 s of line noise floor, the speech, 1.5 s after: mu-law RTP packets, 20 ms each."""
    ulaw = codecs.ulaw_encode(b"\x00\x00" * 4000 + pcm8k + b"\x00\x00" * 12000)
    return [
        struct.pack("!BBHII", 0x80, 0, i & 0xFFFF, 160 * i, 7) + ulaw[i * 160 : i * 160 + 160]
        for i in range(len(ulaw) // 160)
    ]


async def decide(
    stt: PocketSphinxSTT, packets: list[bytes], phrases: list[str]
) -> tuple[str, float]:
    """What CallMedia.listen would return for these packets, and endpoint -> decision ms."""
    jitter = JitterBuffer("ulaw")
    vad = WebRtcVad(sample_rate=8000, aggressiveness=2)
    det = SpeechDetector(frame_ms=20, min_speech_ms=100, end_silence_ms=END_SILENCE_MS)
    watcher = _Watcher(det, collect=True)  # CallMedia.listen's own (with its pre-roll)
    done = False
    for data in packets:
        for chunk in jitter.push(parse_rtp(data)):
            pcm = codecs.decode(chunk.payload, "ulaw")
            if watcher.feed(pcm, vad.is_speech(pcm)):
                done = True
                break
        if done:
            break
    collected: list[bytes] = []
    while not watcher.audio.empty():
        frame = watcher.audio.get_nowait()
        if frame is None:
            break
        collected.append(frame)
    if not watcher.started.done():
        return "<noinput>", 0.0
    t0 = time.perf_counter()
    stream = await stt.open_stream(phrases=phrases)
    await stream.feed(codecs.resample(b"".join(collected), 8000, 16000))
    result = await stream.finish()
    await stream.aclose()
    if VERBOSE:
        print(f"    {result.alternatives} confidence {result.confidence}")
    return result.text, (time.perf_counter() - t0) * 1000


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--voices", default="en-us,en-gb,en-us+f3")
    ap.add_argument("--rates", default="140,175")
    ap.add_argument("--snr", default="clean,20,10")
    ap.add_argument("--min-confidence", type=float, default=0.5)
    ap.add_argument("--limit", type=int, default=0, help="at most this many grammars (0: all)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every wrong decision")
    args = ap.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    print("command:", " ".join([".venv/bin/python", *sys.argv]))
    stt = PocketSphinxSTT(min_confidence=args.min_confidence)
    await stt.warm_up()
    gs = grammars()[: args.limit or None]
    print(f"{len(gs)} grammars: " + "; ".join(f"{g.where} {g.phrases}" for g in gs))
    for snr_name in args.snr.split(","):
        snr = None if snr_name == "clean" else float(snr_name)
        counts = {"correct": 0, "nomatch": 0, "misroute": 0, "oog": 0, "oog_nomatch": 0}
        lat: list[float] = []
        for voice in args.voices.split(","):
            for rate in [int(r) for r in args.rates.split(",")]:
                tts = EspeakTTS(voice=voice, rate=rate, sample_rate=8000)
                await _condition(tts, gs, snr, stt, counts, lat)
        n_in = counts["correct"] + counts["nomatch"] + counts["misroute"]
        print(
            f"{snr_name:>5}: in-grammar n={n_in} correct {counts['correct'] / n_in:6.1%} "
            f"nomatch {counts['nomatch'] / n_in:6.1%} misroute {counts['misroute'] / n_in:5.1%} | "
            f"out-of-grammar n={counts['oog']} -> nomatch "
            f"{counts['oog_nomatch'] / max(1, counts['oog']):6.1%} | endpoint -> decision p50 "
            f"{np.percentile(lat, 50):.0f} ms p99 {np.percentile(lat, 99):.0f} ms "
            f"(+ {END_SILENCE_MS} ms end-silence window after the last word)"
        )


async def _condition(
    tts: EspeakTTS,
    gs: list[Grammar],
    snr: float | None,
    stt: PocketSphinxSTT,
    counts: dict[str, int],
    lat: list[float],
) -> None:
    for k, g in enumerate(gs):
        for value, phrases in g.choices:
            for phrase in phrases:
                pcm = b"".join([c async for c in tts.synthesize(phrase)])
                text, ms = await decide(stt, _packets(_noisy(pcm, snr, k)), g.phrases)
                lat.append(ms)
                routed = g.route(text) if text and text != "<noinput>" else None
                key = "correct" if routed == value else "nomatch" if routed is None else "misroute"
                counts[key] += 1
                if VERBOSE and key != "correct":
                    print(f"  {key}: {phrase!r} -> {text!r} ({tts.voice} {tts.rate}, {g.where})")
        for sentence in OUT_OF_GRAMMAR:
            pcm = b"".join([c async for c in tts.synthesize(sentence)])
            text, ms = await decide(stt, _packets(_noisy(pcm, snr, k)), g.phrases)
            lat.append(ms)
            counts["oog"] += 1
            if VERBOSE and text and g.route(text) is not None:
                print(f"  oog accepted: {sentence!r} -> {text!r} ({tts.voice} {tts.rate})")
            counts["oog_nomatch"] += g.route(text) is None if text else 1


if __name__ == "__main__":
    asyncio.run(main())
