"""Could a rejected answer be decided before the ``quiet`` window (600 ms of VAD silence) ends?

    .venv/bin/python bench/speech_leadins.py [--decisions FILE] [--pause-ms 500]
        [--snr clean,20] [--min-confidence 0.6]

Rejected answers wait for the ``quiet`` end so that a caller who pauses mid-sentence ("I'd like
to ... pay my bill") is heard whole (docs/speech.md, "A caller who pauses mid-sentence"). An early
``nomatch`` would end an utterance sooner when the decision on the audio so far is a *clear*
rejection: no words at all, or a confidence well under the threshold. This bench measures what
such a rule would cost: every lead-in of ``bench/speech.py``'s ``PAUSED`` sentences (the words
said before the pause), in every voice and rate, followed by ``--pause-ms`` of silence, goes
through ``bench/speech.py``'s path (G.711 RTP, VAD, pocketsphinx at ``--min-confidence``): the
decision the recogniser would make in the caller's pause. For each rule "no words, or confidence
under c" it prints the pausing callers it would cut (of 72), and, given ``--decisions FILE``
(written by ``bench/speech.py --decisions FILE``, e.g. on the tuning half), the in-grammar
answers the decision rejected that the rule would have decided sooner (those set the in-grammar
p99 of the latency goal).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import speech as sp

from voxflow.media.stt_pocketsphinx import DECODERS_PER_DECISION, PocketSphinxSTT
from voxflow.media.tts_espeak import EspeakTTS

RULES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.45)  # "no words, or confidence under c"
_SNR = {"clean": None, "20": 20.0, "10": 10.0}


async def lead_ins(stt: PocketSphinxSTT, snrs: list[str], pause_ms: int) -> dict[str, list[float]]:
    """Per condition, each lead-in's decision confidence (-1: no words at all; 2: accepted)."""
    by_name = {g.where: g for g in sp.grammars()}
    out: dict[str, list[float]] = {s: [] for s in snrs}
    for voice in ("en-us", "en-gb", "en-us+f3"):
        for rate in (140, 175):
            tts = EspeakTTS(voice=voice, rate=rate, sample_rate=8000)
            for first, _, where in sp.PAUSED:
                said = sp._trimmed(b"".join([c async for c in tts.synthesize(first)]))
                pcm = said + bytes(pause_ms * 16)
                g = by_name[where]
                for snr in snrs:
                    level = _SNR[snr]
                    noisy = pcm if level is None else sp._noisy(pcm, level, sp.noise_seed(g))
                    o = await sp.decide(stt, sp._packets(noisy), g.phrases)
                    conf = o.decision.get("confidence")
                    out[snr].append(2.0 if o.text else -1.0 if conf is None else float(str(conf)))
    return out


def rejected(path: Path, snr: str) -> list[float]:
    """The in-grammar answers ``bench/speech.py --decisions`` recorded as rejected: confidence
    (-1: no words)."""
    out, by_name = [], {g.where: g for g in sp.grammars()}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        (cond, _, _, grammar, said), decision = rec["utterance"], rec["decision"]
        if cond != snr or said not in by_name[grammar].phrases or decision["text"]:
            continue
        conf = decision["confidence"]
        out.append(-1.0 if conf is None else float(conf))
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--snr", default="clean,20")
    ap.add_argument("--pause-ms", type=int, default=500)
    ap.add_argument("--min-confidence", type=float, default=0.6)
    ap.add_argument("--decisions", help="bench/speech.py --decisions output to compare with")
    args = ap.parse_args()
    print("command:", " ".join([".venv/bin/python", *sys.argv]))
    stt = PocketSphinxSTT(min_confidence=args.min_confidence)
    await stt.warm_up(DECODERS_PER_DECISION)
    snrs = args.snr.split(",")
    heard = await lead_ins(stt, snrs, args.pause_ms)
    for snr in snrs:
        confs = heard[snr]
        none, taken = sum(c < 0 for c in confs), sum(c > 1 for c in confs)
        print(f"{snr}: {len(confs)} lead-ins decided in a {args.pause_ms} ms pause: ", end="")
        print(f"{none} no words, {taken} accepted")
        others = rejected(Path(args.decisions), snr) if args.decisions else None
        for c in RULES:
            cut = sum(c2 < c or c2 < 0 for c2 in confs)
            line = f"  early nomatch if no words or confidence < {c}: {cut} callers cut"
            if others is not None:
                sooner = sum(c2 < c or c2 < 0 for c2 in others)
                line += f"; rejected in-grammar answers sooner: {sooner} of {len(others)}"
            print(line)


if __name__ == "__main__":
    asyncio.run(main())
