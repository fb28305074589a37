"""Record what the stream knew each time it asked "is this phrase likely?" (stt_likely).

    .venv/bin/python bench/speech_likely.py [--half tune] [--snr clean,20] [--pauses 500]
        [--rates 140,175] [--out /tmp/likely.pkl]
    .venv/bin/python bench/speech_likely.py --score /tmp/likely.pkl [/tmp/more.pkl ...]

Runs bench/speech.py's utterances of one half (and, with ``--pauses``, its pausing callers) with
the current endpointing and keeps, per utterance, every :class:`stt_likely.Evidence` the stream
built (a whole phrase heard so far), when it was built (packets arrived, ms) and whether both
searches had heard the caller stop there (``settled``), with the utterance's verdict and when the
caller stopped talking. ``--score`` then scores ``stt_likely.likely`` offline over a grid of
``LIKELY_CONFIDENCE`` and ``LIKELY_STABLE``: the pausing callers it would cut (a likely stop
before the caller's last loud sample; the bench also needs 60 ms of VAD silence there, so this
over-counts a little) and the right answers it settles at their first stop, per condition. The
records hold ``Evidence`` as it is now: record again after changing it.
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import speech
from speech import Grammar, _packets, _stopped_ms, grammars, run

from voxflow.media import stt_likely
from voxflow.media.rtp import RtpPacket, parse_rtp
from voxflow.media.stt_likely import Evidence, likely
from voxflow.media.stt_pocketsphinx import (
    DECODERS_PER_DECISION,
    PocketSphinxStream,
    PocketSphinxSTT,
)


@dataclass
class Asked:
    """One ``likely`` question: the evidence, packets arrived (ms), and whether it settled."""

    evidence: Evidence
    arrived_ms: int
    stop: bool


@dataclass
class Utterance:
    """One utterance: what was said, its verdict, when the caller stopped, what was asked."""

    kind: str  # "set" or "pause"
    snr: str
    voice: str
    rate: int
    said: str
    verdict: str
    stopped_ms: float
    after_stop_ms: float
    endpoint: str
    asked: list[Asked] = field(default_factory=list)


_arrived = 0
_asked: list[Asked] = []


def _patch() -> None:
    decide, decides = speech.decide, PocketSphinxStream._likely

    def counting(data: bytes) -> RtpPacket:
        global _arrived
        _arrived += 1
        return parse_rtp(data)

    async def deciding(*args: Any, **kw: Any) -> Any:
        global _arrived
        _arrived = 0
        _asked.clear()
        return await decide(*args, **kw)

    def recording(self: PocketSphinxStream, decoder: Any) -> bool:
        found = self.full_evidence(decoder)  # every part, whatever _likely asks
        if found is not None:
            stop = self._heard_whole_phrase(decoder)[1] and self._settled(decoder)
            _asked.append(Asked(found, _arrived * 20, stop))
        return decides(self, decoder)

    # bench only: count the packets arrived, records per utterance, every evidence built
    setattr(speech, "parse_rtp", counting)  # noqa: B010 (not re-exported by speech)
    setattr(speech, "decide", deciding)  # noqa: B010 (a module global its callers look up)
    setattr(PocketSphinxStream, "_likely", recording)  # noqa: B010 (a method, replaced)


async def _pauses(
    stt: PocketSphinxSTT, gs: list[Grammar], voices: list[str], rates: list[int], ms: int
) -> list[Utterance]:
    out: list[Utterance] = []
    by_name = {g.where: g for g in gs}
    async for voice, rate, first, then, k, pcm in speech.paused_callers(voices, rates, ms):
        o = await speech.decide(stt, _packets(pcm), by_name[k].phrases)
        o.stopped_ms = _stopped_ms(pcm)
        said = f"{first} ... {then}"
        verdict = "cut" if o.after_stop_ms < 0 else "whole"
        u = Utterance("pause", "clean", voice, rate, said, verdict, o.stopped_ms,
                      o.after_stop_ms, o.endpoint, list(_asked))  # fmt: skip
        out.append(u)
    return out


def score(utterances: list[Utterance]) -> str:
    """One line: callers cut, and right answers settled at their first stop, per condition."""
    cut = n = 0
    per: dict[str, list[int]] = {}
    for u in utterances:
        stops = [a for a in u.asked if a.stop]
        if u.kind == "pause":
            n += 1
            cut += any(likely(a.evidence, 0.6) for a in stops if a.arrived_ms < u.stopped_ms)
        elif u.verdict == "correct":
            counts = per.setdefault(u.snr, [0, 0])
            counts[0] += bool(stops) and likely(stops[0].evidence, 0.6)
            counts[1] += 1
    settled = ", ".join(f"{snr} {a} / {b}" for snr, (a, b) in per.items())
    return f"cut {cut} of {n}; right answers settled at their first stop: {settled}"


def grid(utterances: list[Utterance]) -> None:
    """``score`` for a few values of the rule's two constants (the module's own last)."""
    own = stt_likely.LIKELY_CONFIDENCE, stt_likely.LIKELY_STABLE
    for conf, stable in [(c, s) for c in (0.6, 0.7, 0.8) for s in (0, 12, 16, 20)] + [own]:
        stt_likely.LIKELY_CONFIDENCE, stt_likely.LIKELY_STABLE = conf, stable
        print(f"confidence {conf}, stable {stable} frames: {score(utterances)}")


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--half", choices=("all", "tune", "held"), default="tune")
    ap.add_argument("--snr", default="clean,20")
    ap.add_argument("--voices", default="en-us,en-gb,en-us+f3")
    ap.add_argument("--rates", default="140,175")
    ap.add_argument("--min-confidence", type=float, default=0.6)
    ap.add_argument("--pauses", type=int, default=0)
    ap.add_argument("--out", default="/tmp/likely.pkl")
    ap.add_argument("--score", nargs="+", metavar="PKL", help="score records, do not record")
    return ap.parse_args()


async def main(args: argparse.Namespace) -> list[Utterance]:
    """Record every utterance asked for (module docstring)."""
    _patch()
    stt = PocketSphinxSTT(min_confidence=args.min_confidence)
    await stt.warm_up(DECODERS_PER_DECISION)
    gs = grammars()
    voices, rates = args.voices.split(","), [int(r) for r in args.rates.split(",")]
    out: list[Utterance] = []
    if args.pauses:
        out += await _pauses(stt, gs, voices, rates, args.pauses)
        print(f"pauses: {len(out)}", flush=True)
    for snr in [s for s in args.snr.split(",") if s]:
        asked: list[list[Asked]] = []
        orig = speech.decide

        async def keeping(*a: Any, _orig: Any = orig, _to: Any = asked, **kw: Any) -> Any:
            o = await _orig(*a, **kw)
            _to.append(list(_asked))
            return o

        setattr(speech, "decide", keeping)  # noqa: B010 (bench only, as in _patch)
        samples = await run(stt, gs, snr, voices, rates, args.half)
        setattr(speech, "decide", orig)  # noqa: B010 (likewise)
        for s, a in zip(samples, asked, strict=True):
            o = s.outcome
            out.append(Utterance("set", snr, s.voice, s.rate, s.said, s.verdict, o.stopped_ms,
                                 o.after_stop_ms, o.endpoint, a))  # fmt: skip
        print(f"{snr}: {len(samples)}", flush=True)
    return out


if __name__ == "__main__":
    ARGS = _args()
    if ARGS.score:
        grid([u for path in ARGS.score for u in pickle.loads(Path(path).read_bytes())])
    else:
        Path(ARGS.out).write_bytes(pickle.dumps(asyncio.run(main(ARGS))))
