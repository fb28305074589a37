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
  (log) that is from a typical pace (a long sentence squeezed into "sales" or the reverse);
- ``loop_phones``: the phone loop's phones inside the phrase's words per dictionary phone of the
  phrase (not in the regression: :func:`stretched` is a veto of its own).

:func:`confidence` is a logistic regression over the standardised features. Its weights were fitted
with ``bench/speech_fit.py`` on the *tuning half* of ``bench/speech.py``'s set (three of the six
voice/rate pairs, five of the ten out-of-grammar sentences), label: "the grammar's phrase is what
was said"; the figures in docs/speech.md are for the held-out half.

:func:`stretched` is the other way a sentence gets through: the grammar stretches a phrase over
the whole of it ("I lost my card" as "accounts"), so no speech is ``outside`` it, and in a grammar
of few phrases the n-best has no other phrase to give a margin. The phone loop then hears far more
phones inside the phrase than the phrase has: right answers measured 0.2-1.25 phone-loop phones
per dictionary phone (median 0.75), such sentences 1.3-2.4 (docs/speech.md, "Out-of-grammar
speech in a small grammar").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = [
    "FITTED",
    "MARGIN_CAP",
    "MAX_LOOP_PHONES",
    "Features",
    "Segment",
    "confidence",
    "features",
    "margin",
    "stretched",
]

MARGIN_CAP = 5.0
# Phone-loop phones per dictionary phone above which a phrase is stretched (``stretched``):
# chosen on bench/speech.py's tuning half as the loosest half-phone step at which every tuning
# condition still turns >= 97 % of out-of-grammar speech into nomatch (the anchor's criterion;
# 1.75 gave 96.7 % at 20 dB); every right answer of both halves was at most 1.25.
MAX_LOOP_PHONES = 1.5
TYPICAL_FRAMES_PER_PHONE = 8.0
# bench/speech_fit.py output (tuning half; the settled endpoint of listen_settled_silence_ms 60,
# settling to 30 frames after the last word, stt_lexicon's pronunciation variants), anchored
# (``--anchor 0.6 --oog 0.97``): 0.6 is the lowest threshold with out-of-grammar -> nomatch
# >= 97 % in every tuning condition (with 95 %, the first criterion, the whole set's clean
# rejection fell from 96.7 to 94.2 % when refitted for the settled end: docs/speech.md).
# Order as FITTED.
_MEAN = (1.072, 2.513, 0.443, 12.032, 0.416)
_SCALE = (9.649, 2.746, 0.312, 5.347, 0.318)
_WEIGHTS = (0.653, 0.441, -2.65, 0.014, -0.493)
_BIAS = -1.606
FITTED = ("ratio", "margin", "outside", "frames_per_phone", "pace")  # the regression's features


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
    loop_phones: float = 0.0

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
    speech = outside = inside = 0
    for p in phones:
        length = p.end - p.start + 1
        overlap = max(0, min(p.end + 1, end) - max(p.start, start))
        if length > 0 and _is_word(p.word):
            speech += length
            outside += length - overlap
            inside += bool(spoken) and start <= (p.start + p.end) / 2 <= end - 1
    per_phone = span / max(1, n_phones)
    return Features(
        ratio=(best - phone_best) / frames,
        margin=margin(best, second, frames),
        outside=outside / speech if speech else 0.0,
        frames_per_phone=per_phone,
        pace=abs(math.log(per_phone / TYPICAL_FRAMES_PER_PHONE)),
        loop_phones=inside / max(1, n_phones),
    )


def margin(best: float, second: float | None, frames: int) -> float:
    """Per-frame margin from ``best`` to ``second`` over ``frames``, at most ``MARGIN_CAP`` (the
    cap when there is no second phrase)."""
    return MARGIN_CAP if second is None else min(MARGIN_CAP, (best - second) / max(1, frames))


def confidence(f: Features) -> float:
    """0..1: the fitted logistic regression over ``f`` (module docstring)."""
    values = tuple(getattr(f, name) for name in FITTED)
    z = _BIAS + sum(
        w * (v - m) / s for v, m, s, w in zip(values, _MEAN, _SCALE, _WEIGHTS, strict=True)
    )
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def stretched(f: Features) -> bool:
    """Whether the phone loop heard more than ``MAX_LOOP_PHONES`` phones per phone of the phrase
    inside its words: a longer sentence the grammar stretched the phrase over (module docstring).
    The decision rejects it whatever the confidence."""
    return f.loop_phones > MAX_LOOP_PHONES
