"""A pocketsphinx search's results as the offline recogniser reads them: the words and phones of
its best path, its n-best phrases, scores in the decoder's log units
(:mod:`voxflow.media.stt_pocketsphinx`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from voxflow.media.stt_confidence import Features, Segment, features, margin

__all__ = [
    "clean",
    "is_phone",
    "is_word",
    "log_score",
    "nbest",
    "nbest_first",
    "partial",
    "partial_nbest",
    "segments",
]

_NBEST = 40  # n-best entries read at most


def is_word(word: str) -> bool:
    """A word of the grammar's path (not silence, a filler or a null transition)."""
    return not word.startswith(("<", "[", "("))


def is_phone(word: str) -> bool:
    """A phone of the phone loop's path (not silence or a noise/filler model)."""
    return word != "SIL" and not word.startswith(("<", "[", "+"))


def clean(hypstr: str) -> str:
    return " ".join(w for w in hypstr.split() if not w.startswith("<"))


def log_score(logmath: Any, prob: float) -> float:
    """A score (the bindings give it as a probability) back in the decoder's log units."""
    return float(logmath.log(prob)) if prob > 0 else -1e12


def segments(decoder: Any) -> list[Segment]:
    return [Segment(s.word, s.start_frame, s.end_frame) for s in decoder.seg()]


def nbest(
    decoder: Any, logmath: Any, best_text: str, best: float
) -> tuple[tuple[str, ...], float | None]:
    """Up to three distinct phrases, best first, and the score of the best different one."""
    seen = [best_text]
    second: float | None = None
    for i, hyp in enumerate(decoder.nbest() or ()):  # None mid-utterance, at times
        if i >= _NBEST or len(seen) >= 3:
            break
        text = clean(hyp.hypstr) if hyp is not None else ""
        if not text or text in seen:
            continue
        if second is None:
            second = log_score(logmath, hyp.score)
        seen.append(text)
    return tuple(seen), second


def nbest_first(decoder: Any) -> str:
    """The first phrase of ``decoder``'s n-best list ("" when it has none)."""
    for i, hyp in enumerate(decoder.nbest() or ()):  # None mid-utterance, at times
        if i >= _NBEST:
            break
        text = clean(hyp.hypstr) if hyp is not None else ""
        if text:
            return text
    return ""


def partial(
    decoder: Any, phones: Any | None, hyp: Any, text: str, *, with_nbest: bool = True
) -> tuple[Features | None, tuple[str, ...]]:
    """Mid-utterance, for the whole phrase ``text`` (``decoder``'s partial result ``hyp``): the
    confidence features over the partial paths (None without a streaming phone loop
    ``phones``) and the grammar's n-best phrases. Without ``with_nbest`` the n-best is not read
    (a few ms): the alternatives are ``text`` alone and the margin is at its cap, the highest
    confidence any n-best allows (``partial_nbest`` fills them in)."""
    best = log_score(logmath := decoder.get_logmath(), hyp.score)
    alternatives, second = nbest(decoder, logmath, text, best) if with_nbest else ((text,), None)
    if phones is None:
        return None, alternatives
    phone_hyp = phones.hyp()
    found = features(
        frames=decoder.n_frames(),
        best=best,
        second=second,
        phone_best=log_score(logmath, phone_hyp.score) if phone_hyp is not None else -1e12,
        words=segments(decoder),
        phones=segments(phones),
        n_phones=sum(len((decoder.lookup_word(w) or "").split()) for w in text.split()),
    )
    return found, alternatives


def partial_nbest(
    decoder: Any, hyp: Any, text: str, found: Features | None
) -> tuple[Features | None, tuple[str, ...]]:
    """``partial(..., with_nbest=False)``'s result ``found`` completed with the grammar's n-best:
    its margin and the alternatives (the same as ``partial`` with it)."""
    best = log_score(logmath := decoder.get_logmath(), hyp.score)
    alternatives, second = nbest(decoder, logmath, text, best)
    if found is None:
        return None, alternatives
    return replace(found, margin=margin(best, second, max(1, decoder.n_frames()))), alternatives
