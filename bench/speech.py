"""Speech benchmark: does a spoken answer send the caller to the right place, or to `nomatch`?

    .venv/bin/python bench/speech.py [--voices en-us,en-gb,en-us+f3] [--rates 140,175]
        [--snr clean,20,10] [--min-confidence 0.5] [--limit 0] [--half all|tune|held]
        [--end-silence-ms 800] [--complete-silence-ms 300] [--final-silence-ms 300]
        [--check-sigma 300] [--settled-silence-ms 60] [--quiet-silence-ms 600] [--no-variants]
        [--stt-slice 320] [--likely 0.6,12]
        [--before CHECKOUT] [--old-endpointing | --compare-endpointing] [--pauses 500]

For every speech choice of every menu/gather in flows/*.flow (its grammar: that step's choice
phrases), each phrase is spoken by espeak-ng in each voice and rate, clean and with white noise at
each SNR, and sent through the path a call takes: 8 kHz G.711 mu-law in RTP packets -> RTP parse ->
jitter buffer -> decode -> webrtcvad + SpeechDetector endpointing (what CallMedia.listen does) ->
pocketsphinx with the step's phrases (confidence decision and noise-floor check) -> the
interpreter's choice matching. Out-of-grammar sentences (callers asking for something the menu does
not offer) go through every grammar too. Printed per condition: in-grammar correct / nomatch /
misroute, out-of-grammar -> nomatch, the time from the endpoint to the decision, from the VAD's
end of speech (its last voiced frame: the end-silence window that applied, plus the endpoint ->
decision time) to the decision, and from the moment the caller stopped talking (the last sample of
the synthesized speech above -40 dBFS; packets counted as they arrive, so the jitter buffer's delay
and the VAD's hangover are in it) to the decision, p50/p99. Sockets and ARI are left out (the
sandbox tests cover them). Frames reach the STT as CallMedia.recognize hands them over (it decodes
while the caller speaks and sets the detector's ``complete`` and ``final``), but faster than real
time; the decoders' real-time factor while streaming is printed too (it must stay well under 1 for
the figures to hold on a live call).

``--half`` splits the set for the confidence fit (bench/speech_fit.py): ``tune`` is three
voice/rate pairs (TUNE_PAIRS) and the even out-of-grammar sentences, ``held`` the other three
pairs and the odd sentences; with ``all`` the held-out half is printed as well. Report ``held``
figures for anything fitted on ``tune``.

``--before CHECKOUT`` runs that checkout's ``bench/speech.py`` with the same arguments at the
same time and prints both sides' figures side by side (``bench/speech_before.py``).

``--old-endpointing`` runs the endpointing as it was before the likely-phrase gate, the hold
and the ``quiet`` end (docs/speech.md, "When the caller has finished");
``--compare-endpointing`` runs every condition both ways in the same minutes (old first) and
prints the ratios new / old of the caller-stops -> decision p50 / p99. ``--pauses MS`` instead
says every sentence of ``PAUSED`` (a few words, a pause of MS ms, the rest: "I'd like to ...
pay my bill") in every voice and rate, and counts the callers cut (decided before they stopped
talking).

Goals (issue 18): misroute <= 1 %, out-of-grammar -> nomatch >= 95 %, correct >= 90 % clean and
>= 80 % at 20 dB, decision p99 <= 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import sys
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import speech_before
import speech_cpu

from voxflow.compiler import compile_flow
from voxflow.ir import models as ir
from voxflow.media import codecs, stt_check, stt_likely, stt_phones, stt_pocketsphinx
from voxflow.media.callmedia import _Watcher
from voxflow.media.endpointing import follow
from voxflow.media.interpolate import stt_resampler
from voxflow.media.jitter import JitterBuffer
from voxflow.media.rtp import parse_rtp
from voxflow.media.stt_confidence import Features
from voxflow.media.stt_pocketsphinx import (
    DECODERS_PER_DECISION,
    PocketSphinxStream,
    PocketSphinxSTT,
)
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
TUNE_PAIRS = {("en-us", 140), ("en-gb", 175), ("en-us+f3", 140)}
END_SILENCE_MS = 800
COMPLETE_SILENCE_MS = 300  # CallMedia's listen_complete_silence_ms default
FINAL_SILENCE_MS = 300  # CallMedia's listen_final_silence_ms default (0: no final window)
SETTLED_SILENCE_MS = 60  # CallMedia's listen_settled_silence_ms default (-1: VAD windows only)
QUIET_SILENCE_MS = 600  # CallMedia's listen_quiet_silence_ms default (-1: the end-silence window)
OLD_ENDPOINTING = False  # no likely-phrase gate, hold or quiet end (``--old-endpointing``)
_OLD = " (old endpointing)"
LOUD = 328  # -40 dBFS: the caller has stopped talking after the last sample louder than this
LEAD_MS = 500  # the line noise floor before the speech (_packets)
VERBOSE = False


def _bigram_phone_loop() -> None:
    """Bench only, ``VOXFLOW_BENCH_PHONE_LM=bigram`` (an environment variable, so that a
    ``--before`` side, given the same arguments, runs as it is): the phone loop decodes with
    ``bench/phone_loop.py``'s bigram phone LM (docs/speech.md, session 14)."""
    import phone_loop

    path = phone_loop.bigram_phone_lm()

    def add(ps: object, decoder: Any) -> None:
        decoder.add_allphone_file(stt_phones.PHONES, path)

    # the name stt_pocketsphinx imported and calls (not re-exported, hence the ignore)
    stt_pocketsphinx.add_phone_loop = add  # type: ignore[attr-defined]


if os.environ.get("VOXFLOW_BENCH_PHONE_LM") == "bigram":
    _bigram_phone_loop()


@dataclass
class Outcome:
    """One utterance through the path: the text, endpoint -> decision ms, decoding time while
    streaming, the audio's length, and the confidence features (when a decision was made)."""

    text: str
    ms: float = 0.0
    stream_s: float = 0.0
    audio_s: float = 0.0
    features: Features | None = None
    window_ms: int = 0  # the silence after the last word that ended the utterance
    endpoint_ms: int = 0  # audio time (packets arrived) at the endpoint
    stopped_ms: float = 0.0  # audio time the caller stopped talking (set by ``run``)
    timing: dict[str, float] = field(default_factory=dict)  # the stream's ``finish`` parts, ms
    settled: bool = False  # the recogniser's ``settled`` ended the utterance
    endpoint: str = ""  # what ended it (SpeechDetector.ended_by: settled, final, quiet, ...)
    cpu_ms: float = 0.0  # the recognition's thread CPU (speech_cpu)
    decision: dict[str, object] = field(default_factory=dict)  # every part of it (speech_cpu)

    @property
    def before_window_ms(self) -> float:
        """The caller stopped talking -> the VAD's last voiced frame (jitter buffer + the VAD's
        hangover; negative when the VAD stopped before the last loud sample)."""
        return self.endpoint_ms - self.window_ms - self.stopped_ms

    @property
    def after_stop_ms(self) -> float:
        """The caller stopped talking -> the decision."""
        return self.endpoint_ms - self.stopped_ms + self.ms


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


# The noise drawn for a grammar's utterances depends on that grammar alone, so adding an example
# flow does not redraw every other grammar's noise (it was the grammar's index: the front_desk
# example, sorted first, moved main_ivr's 20 dB figures). The two grammars measured since session 1
# keep the seeds their figures were drawn with.
_KEPT_SEEDS = {"main_ivr:main_menu": 0, "main_ivr:billing": 1}


def noise_seed(g: Grammar) -> int:
    """The seed of the noise added to ``g``'s utterances."""
    return _KEPT_SEEDS.get(g.where, zlib.crc32(g.where.encode()))


def _noisy(pcm: bytes, snr_db: float | None, seed: int) -> bytes:
    return pcm if snr_db is None else add_noise(pcm, snr_db, seed=seed)


def _packets(pcm8k: bytes) -> list[bytes]:
    """0.5 s of line noise floor, the speech, 1.5 s after: mu-law RTP packets, 20 ms each."""
    ulaw = codecs.ulaw_encode(b"\x00\x00" * 4000 + pcm8k + b"\x00\x00" * 12000)
    return [
        struct.pack("!BBHII", 0x80, 0, i & 0xFFFF, 160 * i, 7) + ulaw[i * 160 : i * 160 + 160]
        for i in range(len(ulaw) // 160)
    ]


async def decide(stt: PocketSphinxSTT, packets: list[bytes], phrases: list[str]) -> Outcome:
    """What CallMedia.listen would return for these packets: the stream is opened at the onset
    and fed every frame the watcher hands over; the clock starts at the endpoint."""
    jitter = JitterBuffer("ulaw")
    vad = WebRtcVad(sample_rate=8000, aggressiveness=2)
    det = SpeechDetector(
        frame_ms=20,
        min_speech_ms=100,
        end_silence_ms=END_SILENCE_MS,
        complete_silence_ms=COMPLETE_SILENCE_MS,
        final_silence_ms=FINAL_SILENCE_MS or None,
        settled_silence_ms=SETTLED_SILENCE_MS if SETTLED_SILENCE_MS >= 0 else None,
        quiet_silence_ms=QUIET_SILENCE_MS
        if QUIET_SILENCE_MS >= 0 and not OLD_ENDPOINTING
        else None,
    )
    watcher = _Watcher(det, collect=True)  # CallMedia.listen's own (with its pre-roll)
    resampler = stt_resampler(8000, 16000)
    stream: PocketSphinxStream | None = None
    out = Outcome("<noinput>")
    t0 = 0.0
    speech_cpu.start()
    for arrived, data in enumerate(packets, 1):
        for chunk in jitter.push(parse_rtp(data)):
            pcm = codecs.decode(chunk.payload, "ulaw")
            done = watcher.feed(pcm, vad.is_speech(pcm))
            if stream is None and watcher.started.done():
                stream = await stt.open_stream(phrases=phrases)
            if done:
                t0 = time.perf_counter()
                out.window_ms = det.silence_ms
                out.settled = det.settled
                out.endpoint = det.ended_by or ""
                out.endpoint_ms = arrived * 20
            while stream is not None and not watcher.audio.empty():
                frame = watcher.audio.get_nowait()
                if frame is None:
                    break
                out.audio_s += len(frame) / 16000
                t = time.perf_counter()
                await stream.feed(resampler.process(frame))
                follow(det, stream)  # as CallMedia.recognize does
                det.final = det.final and bool(FINAL_SILENCE_MS)
                if not done:
                    out.stream_s += time.perf_counter() - t
            if done:
                break
        if t0:
            break
    if stream is None:
        return out
    if not t0:  # the packets ran out before the endpoint
        t0 = time.perf_counter()
        out.endpoint_ms = len(packets) * 20
    await stream.feed(resampler.process(b"", last=True))
    result = await stream.finish()
    out.ms = (time.perf_counter() - t0) * 1000
    await stream.aclose()
    out.text, out.features, out.timing = result.text, stream.features, dict(stream.timing)
    out.cpu_ms, out.decision = speech_cpu.taken_ms(), speech_cpu.decision(result, stream)
    if VERBOSE:
        print(f"    {result.alternatives} confidence {result.confidence} check {stream.check!r}")
    return out


@dataclass(frozen=True)
class Sample:
    """One utterance of the set and what became of it."""

    snr: str
    voice: str
    rate: int
    grammar: Grammar
    said: str
    value: str | None  # the choice it should route to; None: out of grammar
    outcome: Outcome

    @property
    def routed(self) -> str | None:
        text = self.outcome.text
        return self.grammar.route(text) if text and text != "<noinput>" else None

    @property
    def verdict(self) -> str:
        """correct / nomatch / misroute (in grammar); oog_nomatch / oog_accepted."""
        routed = self.routed
        if self.value is None:
            return "oog_nomatch" if routed is None else "oog_accepted"
        return "correct" if routed == self.value else "nomatch" if routed is None else "misroute"


def in_half(half: str, voice: str, rate: int, said: str) -> bool:
    """Whether an utterance belongs to ``half`` (all / tune / held; module docstring)."""
    if half == "all":
        return True
    tune_pair = (voice, rate) in TUNE_PAIRS
    if said in OUT_OF_GRAMMAR:
        tune_pair = OUT_OF_GRAMMAR.index(said) % 2 == 0
    return tune_pair == (half == "tune")


async def run(
    stt: PocketSphinxSTT,
    gs: list[Grammar],
    snr_name: str,
    voices: list[str],
    rates: list[int],
    half: str = "all",
) -> list[Sample]:
    """Every utterance of one noise condition through the path."""
    snr = None if snr_name == "clean" else float(snr_name)
    out: list[Sample] = []
    for voice in voices:
        for rate in rates:
            tts = EspeakTTS(voice=voice, rate=rate, sample_rate=8000)
            for g in gs:
                items: list[tuple[str, str | None]] = [(p, v) for v, ps in g.choices for p in ps]
                items += [(s, None) for s in OUT_OF_GRAMMAR]
                for said, value in items:
                    if not in_half(half, voice, rate, said):
                        continue
                    pcm = b"".join([c async for c in tts.synthesize(said)])
                    noisy = _noisy(pcm, snr, noise_seed(g))
                    outcome = await decide(stt, _packets(noisy), g.phrases)
                    outcome.stopped_ms = _stopped_ms(pcm)
                    sample = Sample(snr_name, voice, rate, g, said, value, outcome)
                    out.append(sample)
                    if VERBOSE and sample.verdict not in ("correct", "oog_nomatch"):
                        print(f"  {sample.verdict}: {said!r} -> {outcome.text!r} ({voice} {rate})")
    return out


MENU, BILLING = "main_ivr:main_menu", "main_ivr:billing"
PAUSED = [
    ("I'd like to", "pay my bill", MENU),
    ("um", "operator", MENU),
    ("I would like", "billing", MENU),
    ("can I", "talk to an operator", MENU),
    ("I need", "support", MENU),
    ("uh", "sales", MENU),
    ("I want to", "pay", BILLING),
    ("my", "balance", BILLING),
    ("I want the", "main menu", BILLING),
    ("give me", "agent", BILLING),
    ("I'd like to", "pay my bill", BILLING),
    ("pay my", "bill", MENU),
]  # fmt: skip  (said first, said after the pause, the grammar it answers)


def _trimmed(pcm: bytes) -> bytes:
    """``pcm`` from its first to its last sample louder than -40 dBFS."""
    loud = np.nonzero(np.abs(np.frombuffer(pcm, "<i2").astype(np.int32)) > LOUD)[0]
    return pcm[int(loud[0]) * 2 : (int(loud[-1]) + 1) * 2] if len(loud) else pcm


async def paused_callers(
    voices: list[str], rates: list[int], pause_ms: int
) -> AsyncIterator[tuple[str, int, str, str, str, bytes]]:
    """Every ``PAUSED`` sentence in every voice and rate, ``pause_ms`` of silence mid-sentence:
    (voice, rate, first part, second part, grammar, 16 kHz pcm16)."""
    for voice in voices:
        for rate in rates:
            tts = EspeakTTS(voice=voice, rate=rate, sample_rate=8000)
            for first, then, k in PAUSED:
                parts = [
                    _trimmed(b"".join([c async for c in tts.synthesize(t)])) for t in (first, then)
                ]
                yield voice, rate, first, then, k, parts[0] + bytes(pause_ms * 16) + parts[1]


async def pauses(
    stt: PocketSphinxSTT, gs: list[Grammar], voices: list[str], rates: list[int], pause_ms: int
) -> str:
    """Callers who pause ``pause_ms`` mid-sentence (``PAUSED``): how many were cut (the
    decision came before they stopped talking), and what ended the others."""
    cut, ends, n = 0, Counter[str](), 0
    by_name = {g.where: g for g in gs}
    async for voice, rate, first, then, k, pcm in paused_callers(voices, rates, pause_ms):
        outcome = await decide(stt, _packets(pcm), by_name[k].phrases)
        outcome.stopped_ms = _stopped_ms(pcm)
        n += 1
        if outcome.after_stop_ms < 0:
            cut += 1
            if VERBOSE:
                print(f"  cut: {first!r} ... {then!r} ({voice} {rate}, {outcome.endpoint})")
        else:
            ends[outcome.endpoint or "end of audio"] += 1
    return (
        f"pause {pause_ms} ms mid-sentence{_OLD if OLD_ENDPOINTING else ''}: cut {cut} of {n}; "
        "the others ended by " + ", ".join(f"{w}: {c}" for w, c in sorted(ends.items()))
    )


def _stopped_ms(pcm: bytes) -> float:
    """When the caller stops talking in ``_packets(pcm)``: after the last loud sample."""
    loud = np.nonzero(np.abs(np.frombuffer(pcm, "<i2").astype(np.int32)) > LOUD)[0]
    return LEAD_MS + (int(loud[-1]) + 1) / 8 if len(loud) else float(LEAD_MS)


def summary(snr_name: str, samples: list[Sample]) -> str:
    """One line of figures for one condition."""
    v = [s.verdict for s in samples]
    n_in = sum(x in ("correct", "nomatch", "misroute") for x in v)
    n_oog = len(v) - n_in
    lat = [s.outcome.ms for s in samples] or [0.0]
    after = [s.outcome.ms + s.outcome.window_ms for s in samples] or [0.0]
    said = [s.outcome.ms + s.outcome.window_ms for s in samples if s.value is not None] or [0.0]
    stop = [s.outcome.after_stop_ms for s in samples] or [0.0]
    stop_in = [s.outcome.after_stop_ms for s in samples if s.value is not None] or [0.0]
    stop_ok = [s.outcome.after_stop_ms for s in samples if s.verdict == "correct"] or [0.0]
    audio_s = max(1e-9, sum(s.outcome.audio_s for s in samples))
    quiet = "" if OLD_ENDPOINTING or QUIET_SILENCE_MS < 0 else f"{QUIET_SILENCE_MS} ms once quiet, "
    rtf = sum(s.outcome.stream_s for s in samples) / audio_s
    cpu = [s.outcome.cpu_ms for s in samples if s.outcome.text != "<noinput>"] or [0.0]
    return (
        f"{snr_name:>5}: in-grammar n={n_in} correct {v.count('correct') / max(1, n_in):6.1%} "
        f"nomatch {v.count('nomatch') / max(1, n_in):6.1%} "
        f"misroute {v.count('misroute') / max(1, n_in):5.1%} | out-of-grammar n={n_oog} -> "
        f"nomatch {v.count('oog_nomatch') / max(1, n_oog):6.1%} | endpoint -> decision p50 "
        f"{np.percentile(lat, 50):.0f} ms p99 {np.percentile(lat, 99):.0f} ms; end of speech -> "
        f"decision p50 {np.percentile(after, 50):.0f} ms p99 {np.percentile(after, 99):.0f} ms "
        f"(in-grammar p50 {np.percentile(said, 50):.0f} ms p99 {np.percentile(said, 99):.0f} ms); "
        f"caller stops talking -> decision p50 {np.percentile(stop, 50):.0f} ms p99 "
        f"{np.percentile(stop, 99):.0f} ms (in-grammar p50 {np.percentile(stop_in, 50):.0f} ms "
        f"p99 {np.percentile(stop_in, 99):.0f} ms) (right answers p50 "
        f"{np.percentile(stop_ok, 50):.0f} ms p99 {np.percentile(stop_ok, 99):.0f} ms) "
        f"(end-silence window {FINAL_SILENCE_MS} ms "
        f"after a final phrase, {COMPLETE_SILENCE_MS} ms after a whole phrase, "
        f"{quiet}else {END_SILENCE_MS} ms{_OLD if OLD_ENDPOINTING else ''}; streaming real-time "
        f"factor {rtf:.2f}); STT CPU per decision p50 {np.percentile(cpu, 50):.1f} ms p99 "
        f"{np.percentile(cpu, 99):.1f} ms mean {np.mean(cpu):.1f} ms"
    )


def breakdown(samples: list[Sample]) -> str:
    """Where the time from "the caller stops talking" to the decision goes, p50 / p99 each, and
    which silence window ended the utterances."""

    def pct(values: list[float]) -> str:
        v = values or [0.0]
        return f"{np.percentile(v, 50):.0f}/{np.percentile(v, 99):.0f}"

    outs = [s.outcome for s in samples if s.outcome.text != "<noinput>"]
    parts = {
        "jitter+VAD hangover": [o.before_window_ms for o in outs],
        "silence window": [float(o.window_ms) for o in outs],
        "decoder wait": [o.timing.get("wait", 0.0) for o in outs],
        "last audio+settle": [o.timing.get("decode", 0.0) for o in outs],
        "final searches": [o.timing.get("search", 0.0) for o in outs],
        "hops+rest": [
            o.ms - sum(o.timing.get(k, 0.0) for k in ("wait", "decode", "search")) for o in outs
        ],
    }
    ends = Counter(o.endpoint or "end of audio" for o in outs)
    return (
        "       where it goes, p50/p99 ms: "
        + ", ".join(f"{k} {pct(v)}" for k, v in parts.items())
        + "; ended by (utterances) "
        + ", ".join(f"{w}: {n}" for w, n in sorted(ends.items()))
    )


def _stops(samples: list[Sample]) -> list[float]:
    """The caller stops talking -> decision, in-grammar utterances."""
    return [s.outcome.after_stop_ms for s in samples if s.value is not None] or [0.0]


def compared(before: list[Sample], after: list[Sample]) -> str:
    """The ratios after / before of the in-grammar caller-stops -> decision p50 and p99."""
    b, a = _stops(before), _stops(after)
    r50 = np.percentile(a, 50) / max(1e-9, float(np.percentile(b, 50)))
    r99 = np.percentile(a, 99) / max(1e-9, float(np.percentile(b, 99)))
    return (
        f"       after / before, caller stops talking -> decision (in-grammar): p50 "
        f"{np.percentile(b, 50):.0f} -> {np.percentile(a, 50):.0f} ms (x{r50:.2f}), p99 "
        f"{np.percentile(b, 99):.0f} -> {np.percentile(a, 99):.0f} ms (x{r99:.2f})"
    )


def _set_old_endpointing(before: bool) -> None:
    """Switch between the endpointing before (no likely-phrase gate, no quiet end) and now."""
    global OLD_ENDPOINTING
    OLD_ENDPOINTING = before
    if before:  # bench only: the stream reports every whole phrase and holds nothing, as it did
        PocketSphinxStream._likely = lambda self, decoder: True  # type: ignore[method-assign]
        PocketSphinxStream._hold = lambda self, likely: None  # type: ignore[method-assign]
    else:
        PocketSphinxStream._likely = _LIKELY  # type: ignore[method-assign]
        PocketSphinxStream._hold = _HOLD  # type: ignore[method-assign]


_LIKELY, _HOLD = PocketSphinxStream._likely, PocketSphinxStream._hold


async def main() -> None:
    global VERBOSE, END_SILENCE_MS, COMPLETE_SILENCE_MS, FINAL_SILENCE_MS, SETTLED_SILENCE_MS
    global QUIET_SILENCE_MS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--voices", default="en-us,en-gb,en-us+f3")
    ap.add_argument("--rates", default="140,175")
    ap.add_argument("--snr", default="clean,20,10")
    ap.add_argument("--min-confidence", type=float, default=0.5)
    ap.add_argument("--limit", type=int, default=0, help="at most this many grammars (0: all)")
    ap.add_argument("--half", choices=("all", "tune", "held"), default="all")
    ap.add_argument("--end-silence-ms", type=int, default=800)
    ap.add_argument("--complete-silence-ms", type=int, default=300)
    ap.add_argument(
        "--no-variants",
        action="store_true",
        help="the dictionary's own pronunciations only (no stt_lexicon variants: the before)",
    )
    ap.add_argument(
        "--check-sigma",
        type=float,
        default=stt_check.CHECK_SIGMA,
        help="the check search's noise floor in LSB (stt_check.CHECK_SIGMA)",
    )
    ap.add_argument(
        "--final-silence-ms",
        type=int,
        default=FINAL_SILENCE_MS,
        help="0: as before the final window (none, and no settling of the final search)",
    )
    ap.add_argument(
        "--settled-silence-ms",
        type=int,
        default=SETTLED_SILENCE_MS,
        help="VAD silence still needed once the recogniser settled (0: none; -1: ignore it)",
    )
    ap.add_argument(
        "--quiet-silence-ms",
        type=int,
        default=QUIET_SILENCE_MS,
        help="VAD silence that ends anything else once the phone loop heard none (-1: off)",
    )
    ap.add_argument(
        "--quiet-frames",
        type=int,
        default=stt_pocketsphinx._QUIET_FRAMES,
        help="10 ms frames both searches must be past the last word before a phrase settles",
    )
    ap.add_argument(
        "--likely",
        metavar="CONFIDENCE,FRAMES",
        help="stt_likely's LIKELY_CONFIDENCE and LIKELY_STABLE (default: the module's)",
    )
    ap.add_argument(
        "--stt-slice",
        type=int,
        default=stt_pocketsphinx._SLICE_BYTES,
        help="bytes of audio per pocketsphinx process_raw call (320: 10 ms; 1280: 40 ms)",
    )
    ap.add_argument(
        "--pauses",
        type=int,
        default=0,
        help="only callers pausing this many ms mid-sentence (PAUSED): how many were cut",
    )
    way = ap.add_mutually_exclusive_group()
    way.add_argument(
        "--old-endpointing", action="store_true", help="the endpointing before (docstring)"
    )
    way.add_argument(
        "--compare-endpointing", action="store_true", help="old and new endpointing side by side"
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="print every wrong decision")
    ap.add_argument(
        "--decisions",
        metavar="FILE",
        help="write every decision as a JSON line (with --before, its side writes FILE.before, "
        "and the identical decisions are counted: bench/speech_cpu.py)",
    )
    ap.add_argument(
        "--before",
        metavar="CHECKOUT",
        help="run this checkout's bench/speech.py with the same arguments at the same time and "
        "print both side by side (bench/speech_before.py)",
    )
    args = ap.parse_args()
    before = None
    if args.before:
        argv = sys.argv[1:]
        at = argv.index("--before") if "--before" in argv else -1
        argv = argv[:at] + argv[at + 2 :] if at >= 0 else [a for a in argv if "--before=" not in a]
        before = await speech_before.start(args.before, argv)
    VERBOSE, END_SILENCE_MS = args.verbose, args.end_silence_ms
    COMPLETE_SILENCE_MS, FINAL_SILENCE_MS = args.complete_silence_ms, args.final_silence_ms
    SETTLED_SILENCE_MS, QUIET_SILENCE_MS = args.settled_silence_ms, args.quiet_silence_ms
    stt_check.CHECK_SIGMA = args.check_sigma  # bench only: the module's tuning constant
    stt_pocketsphinx._QUIET_FRAMES = args.quiet_frames  # likewise
    stt_pocketsphinx._SLICE_BYTES = args.stt_slice  # likewise (the decisions must not change)
    if args.likely:  # bench only: the likely rule's constants (docs/speech.md)
        conf, stable = args.likely.split(",")
        stt_likely.LIKELY_CONFIDENCE, stt_likely.LIKELY_STABLE = float(conf), int(stable)
    if args.no_variants:  # bench only: grammars compiled without stt_lexicon's variants
        # the name stt_pocketsphinx imported and calls (not re-exported, hence the ignore)
        stt_pocketsphinx.add_variants = lambda decoder, words: []  # type: ignore[attr-defined]
    if not FINAL_SILENCE_MS:  # the "before" figures: the search ends where the audio ends
        stt_pocketsphinx._SETTLE_FRAMES = 0
    print("command:", " ".join([".venv/bin/python", *sys.argv]))
    speech_cpu.time_threads()
    if args.decisions:
        _write_decisions(Path(args.decisions), [], new=True)
    stt = PocketSphinxSTT(min_confidence=args.min_confidence)
    await stt.warm_up(DECODERS_PER_DECISION)
    gs = grammars()[: args.limit or None]
    print(f"{len(gs)} grammars: " + "; ".join(f"{g.where} {g.phrases}" for g in gs))
    voices, rates = args.voices.split(","), [int(r) for r in args.rates.split(",")]
    ways = [True, False] if args.compare_endpointing else [args.old_endpointing]
    lines: list[str] = []
    if args.pauses:
        for old in ways:
            _set_old_endpointing(old)
            lines.append(await pauses(stt, gs, voices, rates, args.pauses))
            print(lines[-1], flush=True)
        await _print_before(before, args.before, lines, pause=True)
        return
    for snr_name in args.snr.split(","):
        runs: list[list[Sample]] = []
        for old in ways:
            _set_old_endpointing(old)
            samples = await run(stt, gs, snr_name, voices, rates, args.half)
            runs.append(samples)
            if args.decisions:
                _write_decisions(Path(args.decisions), samples)
            name = f"{snr_name} old endpointing" if old and args.compare_endpointing else snr_name
            lines.append(summary(name, samples))
            print(lines[-1], flush=True)
            print(breakdown(samples), flush=True)
            if args.half == "all":
                held = [s for s in samples if in_half("held", s.voice, s.rate, s.said)]
                lines.append(summary(f"{name} held-out half", held))
                print(lines[-1], flush=True)
        if args.compare_endpointing:
            print(compared(*runs), flush=True)
    await _print_before(before, args.before, lines)
    if before is not None and args.decisions:
        print(speech_cpu.same(Path(args.decisions + ".before"), Path(args.decisions)))


def _write_decisions(path: Path, samples: list[Sample], new: bool = False) -> None:
    """``--decisions``: append one JSON line per utterance (speech_cpu.same reads them); ``new``:
    the file emptied first."""
    with path.open("w" if new else "a") as out:
        for s in samples:
            where = [s.snr, s.voice, s.rate, s.grammar.where, s.said]
            out.write(json.dumps({"utterance": where, "decision": s.outcome.decision}) + "\n")


async def _print_before(
    before: asyncio.subprocess.Process | None, checkout: str, lines: list[str], pause: bool = False
) -> None:
    """``--before``: wait for the other checkout's run, print it and both side by side."""
    if before is None:
        return
    out, _ = await before.communicate()
    text = out.decode(errors="replace")
    print(f"before ({checkout}, exit {before.returncode}):")
    print("\n".join("  " + line for line in text.splitlines()))
    if pause:
        print(speech_before.pauses(text, "\n".join(lines)), flush=True)
        return
    after_figures = speech_before.parse("\n".join(lines))
    print(speech_before.compare(speech_before.parse(text), after_figures), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
