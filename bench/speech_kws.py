"""Keyword spotting with per-phrase thresholds, on bench/speech.py's set: fitted on its tuning half.

    .venv/bin/python bench/speech_kws.py [--snr clean,20,10] [--margin 1.0]

Each utterance of bench/speech.py's set (the same phrases, out-of-grammar sentences, voices, rates,
noise and halves) goes over a G.711 mu-law leg to 16 kHz (0.5 s of silence before, 1.5 s after; no
RTP or VAD: the spotter searches the whole utterance) and through pocketsphinx's keyphrase search
(``add_kws``) with every phrase of its grammar at a permissive threshold (1e-50), so that every
detection and its score (keyphrase path minus phone loop, in the decoder's log units) is kept. Per
phrase, the threshold is the highest score that phrase reached on the tuning half when it was *not*
said (another phrase, or an out-of-grammar sentence), plus ``--margin``: no false accept on the
tuning half. Two decisions are printed per condition, for both halves:

- ``kws``: the phrase whose best score is above its threshold, when exactly one is (else nomatch);
- ``grammar+kws``: the grammar search's phrase (as ``stt_pocketsphinx`` decodes it, without its
  confidence or check), kept only when the spotter also detected it above its threshold.

Scores are per frame of the detection (``--per raw``: the total), since a longer phrase has a lower
total. CPU per utterance of the keyphrase search is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from speech import OUT_OF_GRAMMAR, Grammar, grammars, in_half, noise_seed

from voxflow.media import codecs
from voxflow.media.stt_grammar import dictionary_words as _words
from voxflow.media.stt_pocketsphinx import _CMN_PRIOR, phrases_to_jsgf
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.sandbox.audio import add_noise

VOICES, RATES = ("en-us", "en-gb", "en-us+f3"), (140, 175)


@dataclass
class Utterance:
    """One utterance: what was said (``phrase``: its grammar words, None out of grammar), the
    grammar's phrase, and the spotter's best score per phrase."""

    snr: str
    half: str
    phrase: str | None
    grammar_text: str
    scores: dict[str, float] = field(default_factory=dict)
    cpu_s: float = 0.0


def _decoder(gs: list[Grammar], folder: Path) -> Any:
    import pocketsphinx

    d = pocketsphinx.Decoder(
        samprate=16000, loglevel="FATAL", dither=False, cmn="live", cmninit=_CMN_PRIOR
    )
    for i, g in enumerate(gs):
        words = [_words(p) for p in g.phrases]
        d.add_jsgf_string(f"g{i}", phrases_to_jsgf(words))
        keyfile = folder / f"k{i}.txt"
        keyfile.write_text("".join(f"{' '.join(w)} /1e-50/\n" for w in words))
        d.add_kws(f"k{i}", str(keyfile))
    return d


def _decode(d: Any, search: str, pcm: bytes) -> None:
    d.activate_search(search)
    d.reinit_feat()
    d.start_utt()
    for i in range(0, len(pcm), 3200):  # 100 ms pieces, as the recogniser streams
        d.process_raw(pcm[i : i + 3200], False, False)
    d.end_utt()


def _line(pcm8k: bytes) -> bytes:
    """A caller's audio as the recogniser gets it: mu-law, 16 kHz, with the same dither."""
    pcm = bytes(8000) + pcm8k + bytes(24000)
    audio = codecs.resample(codecs.ulaw_decode(codecs.ulaw_encode(pcm)), 8000, 16000)
    x = np.frombuffer(audio, "<i2").astype(np.int32)
    noise = np.rint(np.random.default_rng(0).normal(0.0, 8.0, len(x))).astype(np.int32)
    return bytes(np.clip(x + noise, -32768, 32767).astype("<i2").tobytes())


def _spot(d: Any, k: int, audio: bytes, per: str) -> tuple[str, dict[str, float], float]:
    """The grammar's phrase, the spotter's best score per phrase, and the spotter's CPU time."""
    _decode(d, f"g{k}", audio)
    hyp = d.hyp()
    text = " ".join(hyp.hypstr.split()) if hyp is not None else ""
    t = time.process_time()
    _decode(d, f"k{k}", audio)
    cpu = time.process_time() - t
    logmath = d.get_logmath()
    scores: dict[str, float] = {}
    for s in d.seg() or ():
        score = float(logmath.log(s.prob)) if s.prob > 0 else -1e9
        if per == "frame":
            score /= max(1, s.end_frame - s.start_frame + 1)
        word = " ".join(s.word.split())
        scores[word] = max(scores.get(word, -1e18), score)
    return text, scores, cpu


async def collect(snrs: list[str], per: str) -> list[Utterance]:
    """Every utterance of bench/speech.py's set through the grammar and the keyphrase search."""
    gs = grammars()
    out: list[Utterance] = []
    with tempfile.TemporaryDirectory() as tmp:
        d = _decoder(gs, Path(tmp))
        for snr in snrs:
            for voice, rate in [(v, r) for v in VOICES for r in RATES]:
                tts = EspeakTTS(voice=voice, rate=rate, sample_rate=8000)
                for k, g in enumerate(gs):
                    items = [(p, True) for p in g.phrases]
                    items += [(s, False) for s in OUT_OF_GRAMMAR]
                    for said, inside in items:
                        pcm = b"".join([c async for c in tts.synthesize(said)])
                        if snr != "clean":
                            pcm = add_noise(pcm, float(snr), seed=noise_seed(g))
                        text, scores, cpu = _spot(d, k, _line(pcm), per)
                        half = "held" if in_half("held", voice, rate, said) else "tune"
                        phrase = " ".join(_words(said)) if inside else None
                        out.append(Utterance(snr, half, phrase, text, scores, cpu))
            print(f"{snr}: {len(out)} utterances", flush=True)
    return out


def fit(tune: list[Utterance], margin: float) -> dict[str, float]:
    """Per phrase: its highest score when not said, plus ``margin``."""
    thresholds: dict[str, float] = {}
    for u in tune:
        for word, score in u.scores.items():
            if word != u.phrase:
                thresholds[word] = max(thresholds.get(word, -1e18), score + margin)
    return thresholds


def decide(u: Utterance, thresholds: dict[str, float], mode: str) -> str | None:
    above = [w for w, s in u.scores.items() if s > thresholds.get(w, -1e18)]
    if mode == "kws":
        return above[0] if len(above) == 1 else None
    return u.grammar_text if u.grammar_text in above else None


def figures(us: list[Utterance], thresholds: dict[str, float], mode: str) -> str:
    c: collections.Counter[str] = collections.Counter()
    for u in us:
        got = decide(u, thresholds, mode)
        if u.phrase is None:
            c["oog_nomatch" if got is None else "oog_accepted"] += 1
        else:
            c["correct" if got == u.phrase else "nomatch" if got is None else "misroute"] += 1
    n_in = max(1, c["correct"] + c["nomatch"] + c["misroute"])
    n_oog = max(1, c["oog_nomatch"] + c["oog_accepted"])
    return (
        f"correct {c['correct'] / n_in:6.1%} misroute {c['misroute'] / n_in:5.1%} "
        f"out-of-grammar -> nomatch {c['oog_nomatch'] / n_oog:6.1%}"
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--snr", default="clean,20,10")
    ap.add_argument("--margin", type=float, default=1.0)
    ap.add_argument("--per", choices=("frame", "raw"), default="frame")
    args = ap.parse_args()
    us = await collect(args.snr.split(","), args.per)
    cpu = 1000 * sum(u.cpu_s for u in us) / max(1, len(us))
    print(f"keyphrase search CPU per utterance: {cpu:.0f} ms")
    for name, pick in (("per condition", None), ("all conditions together", "all")):
        print(f"thresholds fitted {name} on the tuning half:")
        for snr in args.snr.split(","):
            mine = [u for u in us if pick or u.snr == snr]
            thresholds = fit([u for u in mine if u.half == "tune"], args.margin)
            for mode in ("kws", "grammar+kws"):
                here = [u for u in us if u.snr == snr]
                held = figures([u for u in here if u.half == "held"], thresholds, mode)
                whole = figures(here, thresholds, mode)
                print(f"  {snr:>5} {mode:>11}: held-out {held} | whole set {whole}")


if __name__ == "__main__":
    asyncio.run(main())
