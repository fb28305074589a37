"""Whether a whole phrase heard so far is likely to be accepted: the streaming endpointer's gate.

While the caller speaks, ``stt_pocketsphinx`` decodes every 40 ms; when its partial result is a
whole phrase of the grammar it asks :func:`likely` whether the decision would accept it if the
utterance ended now. Only a likely phrase shortens the silence the listener waits (``complete``,
``final``) or ends the utterance at once where both searches heard the caller stop
(``settled``); anything else waits for the ``quiet`` end, long enough for a caller who pauses
mid-sentence ("I'd like to ... pay my bill": in the pause the partial result is often a phrase,
"um" as "operator"). :class:`Evidence` is what the stream knows at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from voxflow.media.stt_confidence import Features, confidence

__all__ = ["LIKELY_CONFIDENCE", "LIKELY_STABLE", "Evidence", "Stability", "likely"]

# the confidence over the partial paths a phrase needs (or the decision's threshold, if higher);
# 0.6 in session 9, fitted while 10 ms slices decided differently: refitted on the tuning half
# and the pausing callers once they decide as 40 ms ones (session 10, docs/speech.md)
LIKELY_CONFIDENCE = 0.8
# frames (10 ms) for which the partial result must have named the phrase
LIKELY_STABLE = 12


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the stream knows when its partial result is a whole phrase (``text``).

    ``check``: how the check search names it ("path": its best path, "nbest": its n-best's
    first, "": neither; "none": no check search streams). ``features``: the confidence features
    over the partial paths (None without a streaming phone loop). ``stable``: frames (10 ms)
    since the partial result first was ``text`` (checked every 40 ms of audio);
    ``alternatives``: the grammar's n-best phrases, ``text`` first; ``went_on``: the stream held
    its audio back after this same phrase (both searches heard the caller stop) and the caller
    then spoke again: the phrase was a lead-in."""

    text: str
    check: str
    features: Features | None
    stable: int
    alternatives: tuple[str, ...]
    went_on: bool = False

    @property
    def confidence(self) -> float | None:
        """The fitted confidence over the partial paths, the n-best margin taken as at least 0
        (None without features): mid-utterance the n-best list comes from a partial lattice
        whose scores are not on the best path's scale, and a negative margin (a different
        phrase "better" than the best path) there is noise, not doubt; right answers had
        margins down to -23 at the point the caller stopped."""
        if self.features is None:
            return None
        return confidence(replace(self.features, margin=max(0.0, self.features.margin)))


def likely(evidence: Evidence | None, min_confidence: float) -> bool:
    """Whether the decision would accept ``evidence.text`` if the utterance ended now, and the
    caller has not merely paused: the check search names it (by its path or its n-best's
    first); the partial result has named it for ``LIKELY_STABLE`` frames (a lead-in heard as a
    phrase, "can I" as "operator", may become that phrase only at its last syllable); the
    caller did not go on after it (``went_on``: in the pause the searches, still behind, name
    the lead-in again, over the longer silence with a higher confidence); and the confidence
    over the partial paths reaches ``LIKELY_CONFIDENCE`` or ``min_confidence`` if higher (fitted
    on bench/speech.py's tuning half and pausing callers: docs/speech.md, "Refitting the likely
    rule"). None (no decision asked for, nothing heard): True, every whole phrase counts."""
    if evidence is None:
        return True
    if evidence.check not in ("path", "nbest", "none") or evidence.went_on:
        return False
    if evidence.stable < LIKELY_STABLE:
        return False
    score = evidence.confidence
    return score is None or score >= max(min_confidence, LIKELY_CONFIDENCE)


class Stability:
    """For how many frames the partial result has been the same (``see`` after each decode)."""

    def __init__(self) -> None:
        self._text: str | None = None
        self._since = 0
        self.frames = 0

    def see(self, text: str, frames: int) -> int:
        """Record the partial result after ``frames`` frames decoded; the frames since the
        partial result first was ``text`` (0 when it just became it)."""
        if text != self._text:
            self._text, self._since = text, frames
        self.frames = frames - self._since
        return self.frames
