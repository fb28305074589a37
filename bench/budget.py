"""The issue's budget for a load of whole calls (``bench/calls.py``), and its verdict over
repeated runs."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

import numpy as np

__all__ = ["ok", "repeated"]

K = TypeVar("K", bound=Hashable)


def ok(r: dict[str, float]) -> bool:
    """A load within budget: zero failed calls, p99 send error <= 2 ms, p99 key -> prompt
    <= 50 ms."""
    return r["failed"] == 0 and r["send_p99"] <= 2.0 and r["key_p99"] <= 50.0


def repeated(
    n: int,
    labels: Sequence[str],
    combos: Sequence[K],
    runs: Sequence[Mapping[K, dict[str, float]]],
) -> list[str]:
    """One line per combination over ``runs`` of ``n`` calls: in how many runs it met the
    budget, and the medians of its p99s."""
    lines = []
    for label, combo in zip(labels, combos, strict=True):
        rs = [run[combo] for run in runs]
        keys = ("send_p99", "key_p99", "bare_p99", "failed", "speech_p50", "speech_p99")
        med = {k: float(np.median([r.get(k, np.nan) for r in rs])) for k in keys}
        line = (
            f"{'':>11} {n:>6} {label}: within budget in {sum(map(ok, rs))} of {len(rs)} runs; "
            f"medians: failed {med['failed']:g}, send p99 {med['send_p99']:.2f} ms, key p99 "
            f"{med['key_p99']:.1f} ms, bare p99 {med['bare_p99']:.2f} ms"
        )
        if any(r.get("spoke", 0) for r in rs):
            line += f", speech p50/p99 {med['speech_p50']:.0f}/{med['speech_p99']:.0f} ms"
        lines.append(line)
    return lines
