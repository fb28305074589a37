"""How sure pocketsphinx's grammar result is: features of one utterance and their combination.

Two searches decode the same audio side by side (``stt_pocketsphinx``): the grammar of the
expected phrases, and an unconstrained phone loop (the best any speech could score). A grammar
always answers with one of its phrases, so a caller who says something else still gets one; these
features tell the two cases apart:

- ``ratio``: grammar score minus phone-loop score, per frame, over the whole utterance;
- ``margin``: per-frame margin from the best phrase to the best *different* n-best phrase
  (capped; the cap when there is none);
- ``outside``: the share of the phone loop's speech frames that fall outside the phrase's words
  (speech the grammar had to call silence: the caller said more than the phrase);
- ``frames_per_phone`` and ``pace``: the phrase's duration per dictionary phone, and how far
  (log) that is from a typical pace (a long sentence squeezed into "sales" or the reverse).

:func:`confidence` is a logistic regression over the standardised features. Its weights were fitted
with ``bench/speech_fit.py`` on the *tuning half* of ``bench/speech.py``'s set (three of the six
voice/rate pairs, five of the ten out-of-grammar sentences), label: "the grammar's phrase is what
was said"; the figures in docs/speech.md are for the held-out half.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["MARGIN_CAP", "Features", "Segment", "confidence", "features", "margin"]

MARGIN_CAP = 5.0
TYPICAL_FRAMES_PER_PHONE = 8.0
# bench/speech_fit.py output (tuning half; the settled endpoint of listen_settled_silence_ms 60,
# settling to 30 frames after the last word, stt_lexicon's pronunciation variants), anchored
# (``--anchor 0.6 --oog 0.97``): 0.6 is the lowest threshold with out-of-grammar -> nomatch
# >= 97 % in every tuning condition (with 95 %, the first criterion, the whole set's clean
# rejection fell from 96.7 to 94.2 % when refitted for the settled end: docs/speech.md).
# Order as Features' fields.
_MEAN = (1.072, 2.513, 0.443, 12.032, 0.416)
_SCALE = (9.649, 2.746, 0.312, 5.347, 0.318)
_WEIGHTS = (0.653, 0.441, -2.65, 0.014, -0.493)
_BIAS = -1.606


@dataclass(frozen=True, slots=True)
class Segment:
    """A word (or phone) of a decoder's best path: frames ``start``..``end`` inclusive. (Not its
    acoustic score: the bindings hand it over as a probability, which underflows to 0 for long
    words.)"""

    word: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Features:
    """One grammar result's confidence features (module docstring)."""

    ratio: float
    margin: float
    outside: float
    frames_per_phone: float
    pace: float

    def as_dict(self) -> dict[str, float]:
        """The features by name (for the fitting script and traces)."""
        return asdict(self)


def _is_word(word: str) -> bool:
    return not word.startswith(("<", "[", "+")) and word != "SIL"


def features(
    *,
    frames: int,
    best: float,
    second: float | None,
    phone_best: float,
    words: list[Segment],
    phones: list[Segment],
    n_phones: int,
) -> Features:
    """Features of a grammar result: ``best``/``second`` are the scores of the best and the best
    different n-best phrase, ``words`` the grammar's segmentation, ``phones`` the phone loop's,
    ``n_phones`` the dictionary phones of the phrase."""
    frames = max(1, frames)
    spoken = [s for s in words if _is_word(s.word)]
    start = spoken[0].start if spoken else 0
    end = spoken[-1].end + 1 if spoken else 0
    span = max(1, end - start)
    speech = outside = 0
    for p in phones:
        length = p.end - p.start + 1
        overlap = max(0, min(p.end + 1, end) - max(p.start, start))
        if length > 0 and _is_word(p.word):
            speech += length
            outside += length - overlap
    per_phone = span / max(1, n_phones)
    return Features(
        ratio=(best - phone_best) / frames,
        margin=margin(best, second, frames),
        outside=outside / speech if speech else 0.0,
        frames_per_phone=per_phone,
        pace=abs(math.log(per_phone / TYPICAL_FRAMES_PER_PHONE)),
    )


def margin(best: float, second: float | None, frames: int) -> float:
    """Per-frame margin from ``best`` to ``second`` over ``frames``, at most ``MARGIN_CAP`` (the
    cap when there is no second phrase)."""
    return MARGIN_CAP if second is None else min(MARGIN_CAP, (best - second) / max(1, frames))


def confidence(f: Features) -> float:
    """0..1: the fitted logistic regression over ``f`` (module docstring)."""
    values = (f.ratio, f.margin, f.outside, f.frames_per_phone, f.pace)
    z = _BIAS + sum(
        w * (v - m) / s for v, m, s, w in zip(values, _MEAN, _SCALE, _WEIGHTS, strict=True)
    )
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
