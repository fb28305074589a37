"""The confidence's phone loop: a search over every phone (``en-us-phone.lm.bin``) that decodes the
same audio as the grammar, the best any speech could score there (docs/speech.md).

What :mod:`voxflow.media.stt_pocketsphinx` reads of it: its score and its phones (the confidence's
``ratio`` and ``outside``: :mod:`voxflow.media.stt_confidence`), and how long ago its last phone
ended (the streaming end: ``quiet``, ``settled``, the hold). Every pooled decoder has the search
(``add_phone_loop``); it streams on a spare decoder, or runs over the kept audio at ``finish`` on
the grammar's (``run_over``). Its own decoder options (``-ds 2``, ``-topn 2``, a narrower
``-pbeam``) or no phone LM were measured and not kept (docs/speech.md, "The phone loop's CPU";
``bench/phone_loop.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from voxflow.media.stt_confidence import Segment
from voxflow.media.stt_paths import is_phone, log_score, segments
from voxflow.media.stt_pool import start_utterance

__all__ = ["PHONES", "add_phone_loop", "last_phone_end", "result", "run_over", "since_last_phone"]

PHONES = "_phones"  # the phone-loop search every decoder has, for confidence


def add_phone_loop(ps: Any, decoder: Any) -> None:
    """Add the phone-loop search to ``decoder`` (``ps``: the pocketsphinx module)."""
    phone_lm = os.path.join(ps.get_model_path(), "en-us", "en-us-phone.lm.bin")
    decoder.add_allphone_file(PHONES, phone_lm)


def last_phone_end(phones: Any) -> int | None:
    """The frame where the phone loop's last phone (not silence or noise) ended; None: none."""
    ends = [s.end_frame for s in phones.seg() or () if is_phone(s.word)]
    return max(ends) if ends else None


def since_last_phone(phones: Any) -> int | None:
    """Frames decoded since the phone loop's last phone ended (None: no phone yet)."""
    end = last_phone_end(phones)
    return None if end is None else phones.n_frames() - end


def result(phones: Any, logmath: Any) -> tuple[float, list[Segment]]:
    """The phone loop's score (in ``logmath``'s units, the grammar decoder's) and its segments."""
    hyp = phones.hyp()
    return (log_score(logmath, hyp.score) if hyp is not None else -1e12), segments(phones)


def run_over(decoder: Any, pieces: Iterable[bytes]) -> None:
    """Run the phone loop on ``decoder`` over ``pieces`` as one utterance, ended (the streamed
    one's result: the same pieces, a fresh start)."""
    decoder.activate_search(PHONES)
    start_utterance(decoder)
    for pcm in pieces:
        decoder.process_raw(pcm, False, False)
    decoder.end_utt()
