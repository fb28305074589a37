"""``bench/speech.py``'s CPU per decision and its record of every decision (``--decisions``).

CPU: every piece of a recognition's work runs in a worker thread through
``stt_pocketsphinx.in_thread_to_the_end`` (binding decoders, decoding each fed chunk, ``finish``'s
searches, ``aclose``); the bench wraps it so that each such thread's own CPU time
(``time.thread_time``, so other processes on a loaded machine do not count) is added up per
utterance. The bench decides one utterance at a time, so one running total is enough.

Decisions: ``--decisions FILE`` writes one JSON line per utterance (condition, voice, rate,
grammar, what was said, and the decision: text, confidence, check, n-best, features), and
``--before`` has its side write ``FILE.before``; :func:`same` counts the decisions that are
identical in both, which is how a change "that does not change what it decides" is shown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

from voxflow.media import stt_pocketsphinx
from voxflow.media.stt_pocketsphinx import PocketSphinxStream
from voxflow.media.stt_pool import in_thread_to_the_end
from voxflow.voice.providers import Transcript

__all__ = ["decision", "same", "start", "taken_ms", "time_threads"]

_T = TypeVar("_T")
_cpu = [0.0]  # thread CPU seconds of the utterance being decided


def time_threads() -> None:
    """Count the thread CPU of every recognition thread from now on (bench only: the module's
    own name is replaced by a wrapper that times the function inside its thread)."""
    inner = in_thread_to_the_end

    async def timed(fn: Callable[..., _T], *args: object) -> _T:
        def run(*a: object) -> _T:
            t0 = time.thread_time()
            try:
                return fn(*a)
            finally:
                _cpu[0] += time.thread_time() - t0

        return await inner(run, *args)

    setattr(stt_pocketsphinx, "in_thread_to_the_end", timed)  # noqa: B010 - bench only: the name stt_pocketsphinx calls, not exported


def start() -> None:
    """A new utterance: the running total back to 0."""
    _cpu[0] = 0.0


def taken_ms() -> float:
    """Thread CPU of the utterance since ``start``, in ms."""
    return _cpu[0] * 1000


def decision(result: Transcript, stream: PocketSphinxStream) -> dict[str, object]:
    """What was decided, every part of it (for ``same``)."""
    features = stream.features
    return {
        "text": result.text,
        "confidence": result.confidence,
        "alternatives": list(result.alternatives),
        "check": stream.check,
        "check_nbest": getattr(stream, "check_nbest", None),
        "features": asdict(features) if features is not None else None,
    }


def same(before: Path, after: Path) -> str:
    """How many utterances (by condition, voice, rate, grammar, said) were decided identically
    in ``before`` and ``after`` (JSON lines files), and the first few that were not. A check
    not searched on one side (``check`` None: its result could not change the decision, the
    phrase was rejected already) is left out of the comparison, and counted."""

    def load(path: Path) -> dict[str, dict[str, object]]:
        out: dict[str, dict[str, object]] = {}
        for line in path.read_text().splitlines():
            row = json.loads(line)
            out[json.dumps(row["utterance"])] = row["decision"]
        return out

    def part(d: dict[str, object], searched: bool) -> dict[str, object]:
        return d if searched else {k: v for k, v in d.items() if not k.startswith("check")}

    b, a = load(before), load(after)
    both = [k for k in a if k in b]
    unsearched = [k for k in both if (a[k]["check"] is None) != (b[k]["check"] is None)]
    differ = [k for k in both if part(a[k], k not in unsearched) != part(b[k], k not in unsearched)]
    lines = [
        f"decisions identical to the before's: {len(both) - len(differ)} of {len(both)} (text, "
        f"confidence, n-best, features; the check where both searched it: {len(unsearched)} "
        "searched on one side only)"
    ]
    lines += [f"  differs: {k}: {b[k]} -> {a[k]}" for k in differ[:5]]
    return "\n".join(lines)
