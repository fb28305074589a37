"""The noise-floor check's audio, handed to its search only when its result is needed.

A decision (:mod:`voxflow.media.stt_pocketsphinx`) stands only when a second grammar search, over
the same dithered audio with a band-limited noise floor added (``CHECK_SIGMA`` LSB below
``CHECK_BAND_HZ``: a 20 dB telephone line), names the grammar's phrase too (docs/speech.md, "Why
clean audio misrouted"). The check can only veto, so its result is needed only where everything
else would accept: the streaming gate's likely phrase (:mod:`voxflow.media.stt_likely`) once the
other conditions hold, and ``finish``'s decision once the phrase is whole and its confidence
reaches the threshold. :class:`CheckFeed` keeps the pieces of audio the grammar decoded and
decodes them on the check's decoder only then (``catch_up``), in the same pieces and with the
same noise (drawn from one seed in 100 ms blocks, whatever the pieces), so its result is the one
it would have had streaming; a recognition whose phrase is never likely and is rejected anyway
(most out-of-grammar speech) never decodes it (issue 18, session 11: docs/speech.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from voxflow.media.stt_line import floor_block
from voxflow.media.stt_paths import clean, nbest_first

__all__ = ["CHECK_BAND_HZ", "CHECK_SIGMA", "FLOOR_BLOCK", "CheckFeed"]

CHECK_SIGMA = 300.0  # LSB of band-limited noise under the check search (module docstring)
CHECK_BAND_HZ = 4000  # the noise stops where telephone audio does
FLOOR_BLOCK = 16000 // 10  # samples: the noise floor is drawn per 100 ms
_RATE = 16000


class CheckFeed:
    """The check search's audio not yet decoded: ``add`` each dithered piece the grammar
    decoded, ``catch_up`` before reading the check's decoder."""

    def __init__(self) -> None:
        self._rng = np.random.default_rng(1)  # the noise floor, repeatable per utterance
        self._left: np.ndarray[Any, np.dtype[np.float64]] = np.zeros(0)  # drawn, unused
        self._pending: list[bytes] = []

    def add(self, pcm16: bytes) -> None:
        """A piece the grammar decoded (one ``process_raw`` call's worth)."""
        self._pending.append(pcm16)

    def catch_up(self, decoder: Any) -> None:
        """Decode what was added since the last call on ``decoder``, the noise floor added, one
        ``process_raw`` call per piece as added (the GIL is released between them)."""
        if not self._pending:
            return
        pieces, self._pending = self._pending, []
        floored, at = self.floor(b"".join(pieces)), 0
        for piece in pieces:
            decoder.process_raw(floored[at : at + len(piece)], False, False)
            at += len(piece)

    def names(self, decoder: Any, text: str) -> str:
        """How the check search on ``decoder`` names ``text`` so far, caught up first: "path"
        (its best path), "nbest" (its n-best's first) or "" (neither)."""
        self.catch_up(decoder)
        path = decoder.hyp()
        if path is not None and clean(path.hypstr) == text:
            return "path"
        return "nbest" if nbest_first(decoder) == text else ""

    def floor(self, pcm16: bytes) -> bytes:
        """``pcm16`` plus the noise floor: seeded Gaussian noise of ``CHECK_SIGMA`` LSB below
        ``CHECK_BAND_HZ``, drawn in blocks of ``FLOOR_BLOCK`` samples (white noise with the band
        above zeroed, per block), so the noise is the same however the audio is cut."""
        pcm = np.frombuffer(pcm16, "<i2").astype(np.float64)
        if len(pcm) == 0:
            return pcm16
        while len(self._left) < len(pcm):
            block = floor_block(self._rng, FLOOR_BLOCK, CHECK_SIGMA, CHECK_BAND_HZ, _RATE)
            self._left = np.concatenate([self._left, block])
        noise, self._left = self._left[: len(pcm)], self._left[len(pcm) :]
        out: bytes = np.clip(np.rint(pcm + noise), -32768, 32767).astype("<i2").tobytes()
        return out
