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
        med = {k: float(np.median([r[k] for r in rs])) for k in ("send_p99", "key_p99", "bare_p99")}
        lines.append(
            f"{'':>11} {n:>6} {label}: within budget in {sum(map(ok, rs))} of {len(rs)} runs; "
            f"medians: send p99 {med['send_p99']:.2f} ms, key p99 {med['key_p99']:.1f} ms, "
            f"bare p99 {med['bare_p99']:.2f} ms"
        )
    return lines
