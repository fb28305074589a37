"""A decision with no phone loop streaming: where the streamed searches would have stopped.

While the caller speaks, a recognition with a decision streams three searches (the grammar, the
phone loop, the noise-floor check); after a final phrase that both the grammar and the phone loop
heard end (``_QUIET_FRAMES`` before the newest audio), or once the phone loop has heard no phone
for ``_HEARD_NOTHING_FRAMES`` (the stream is ``quiet``), it holds the audio that follows back from
them until it holds speech again (docs/speech.md, "A caller who pauses mid-sentence"). So a
caller who stopped is decided on the audio up to that point, not on the silence the endpointer
waits after it. When the pool had no spare decoder, only the grammar streams, the other two run
at ``finish`` over the kept audio on the grammar's decoder, and nothing could tell that point:
they decided on the trailing silence too (bench/calls.py at 100 calls: 800 ms of it after
"billing", which the check heard as "sales": 17 of 25 answers rejected). :func:`streamed_end`
finds the point anyway, as the streamed searches would have: the grammar's partial results were
recorded as it streamed (:class:`Mark`), and the phone loop, run at ``finish``, is asked for its
last phone at each of those marks, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Mark", "background", "speech_again", "streamed_end"]

_PIECE = 16000 // 100 * 2  # a 10 ms piece of 16 kHz pcm16
_TAIL = 16000 * 2 // 10  # the last 100 ms heard: the line's background when holding begins


@dataclass(frozen=True, slots=True)
class Mark:
    """The grammar's partial result after one decoded chunk: ``end`` bytes of audio decoded,
    ``frames`` searched, whether it was a ``final`` phrase, the frame its last word ended."""

    end: int
    frames: int
    final: bool
    word_end: int | None


def _energies(pcm16: bytes) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
    pcm = np.frombuffer(pcm16[: len(pcm16) // _PIECE * _PIECE], "<i2").astype(np.float64)
    return (pcm.reshape(-1, _PIECE // 2) ** 2).mean(axis=1)  # type: ignore[no-any-return]  # numpy's mean is untyped


def background(pcm16: bytes) -> float:
    """The line's background in ``pcm16``: the energy of its quietest 10 ms piece (0: none)."""
    energy = _energies(pcm16)
    return float(energy.min()) if len(energy) else 0.0


def speech_again(pcm16: bytes, floor: float) -> bool:
    """Whether a 10 ms piece of ``pcm16`` is 6 dB or more above ``floor`` (the background when
    holding began) and above -50 dBFS: the caller speaks again."""
    return bool((_energies(pcm16) > 4.0 * floor + 100.0**2).any())


def streamed_end(
    marks: Sequence[Mark],
    raw: bytes,
    phone_end: Callable[[int], int | None],
    quiet: int,
    heard_nothing: int,
) -> int:
    """How many bytes of ``raw`` (the audio the grammar decoded, as fed) the streamed searches
    would have decoded: up to the last hold the caller never spoke after, or all of it.
    ``phone_end(end)``: the phone loop's last phone's end frame once it has decoded ``end``
    bytes (None: no phone yet); asked at increasing ``end`` only. ``quiet``: frames after the
    last word and phone of a final phrase before the searches heard the caller stop
    (``_QUIET_FRAMES``); ``heard_nothing``: frames after the last phone, whatever the words,
    before the stream is ``quiet`` (``_HEARD_NOTHING_FRAMES``): both hold."""
    held_at: int | None = None
    floor, start = 0.0, 0
    for mark in marks:
        chunk, start = raw[start : mark.end], mark.end
        if held_at is not None:
            if not speech_again(chunk, floor):
                continue  # still held back: the searches did not see it, nor judge here
            held_at = None  # the caller went on: the held audio and this chunk are decoded
        phone = phone_end(mark.end)
        ends = [e for e in (mark.word_end, phone) if e is not None]
        stopped = mark.final and bool(ends) and mark.frames - max(ends) >= quiet
        if stopped or (phone is not None and mark.frames - phone >= heard_nothing):
            held_at, floor = mark.end, background(raw[max(0, mark.end - _TAIL) : mark.end])
    return held_at if held_at is not None else (marks[-1].end if marks else 0)
