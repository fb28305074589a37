"""``bench/speech.py --before CHECKOUT``: the same command on another checkout's code, run at the
same time (the same machine load), and both sides' figures printed side by side with ratios.

The other side is ``CHECKOUT/bench/speech.py`` with this run's arguments (less ``--before``), run
by this interpreter with ``PYTHONPATH=CHECKOUT`` (its own ``voxflow``, this venv's libraries).
Its per-condition summary lines are parsed (their format has not changed since the held-out
half was added), so any checkout from then on can be the baseline; make one with
``git worktree add --detach /tmp/before COMMIT`` or ``git archive COMMIT | tar -x -C DIR``.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Figures", "compare", "parse", "pauses", "start"]

_LINE = re.compile(
    r"^\s*(?P<cond>[\w. -]+?): in-grammar n=\d+ correct\s+(?P<correct>[\d.]+)% "
    r"nomatch\s+[\d.]+% misroute\s+(?P<misroute>[\d.]+)% \| out-of-grammar n=\d+ -> "
    r"nomatch\s+(?P<oog>[\d.]+)%.*?caller stops talking -> decision .*?\(in-grammar p50 "
    r"(?P<p50>\d+) ms p99 (?P<p99>\d+) ms\)"
    r"(?: \(right answers p50 (?P<ok50>\d+) ms p99 (?P<ok99>\d+) ms\))?"
)
_CPU = re.compile(r"STT CPU per decision p50 (?P<cpu50>[\d.]+) ms p99 (?P<cpu99>[\d.]+) ms")
_PAUSE = re.compile(r"^pause (?P<ms>\d+) ms mid-sentence.*?: cut (?P<cut>\d+) of (?P<n>\d+)")


@dataclass(frozen=True)
class Figures:
    """One condition's line: rates in %, in-grammar stops talking -> decision in ms, and the
    right answers' alone (0 where the line has none: checkouts before they were printed)."""

    correct: float
    misroute: float
    oog: float
    p50: float
    p99: float
    ok50: float = 0.0
    ok99: float = 0.0
    cpu50: float | None = None  # STT CPU per decision (speech_cpu), ms: None where the line has
    cpu99: float | None = None  # none (a checkout older than the figure)


def parse(text: str) -> dict[str, Figures]:
    """The summary lines of a ``bench/speech.py`` output, by condition ("clean", "20 held-out
    half", ...)."""
    out: dict[str, Figures] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            keys = ("correct", "misroute", "oog", "p50", "p99", "ok50", "ok99")
            cpu = _CPU.search(line)
            out[m["cond"].strip()] = Figures(
                **{k: float(m[k] or 0) for k in keys},
                cpu50=float(cpu["cpu50"]) if cpu else None,
                cpu99=float(cpu["cpu99"]) if cpu else None,
            )
    return out


def pauses(before: str, after: str) -> str:
    """``--pauses``: the callers cut, before -> after (each side's "pause ... cut N of M" line,
    the last one: with ``--compare-endpointing`` the new endpointing's)."""
    b = [m for line in before.splitlines() if (m := _PAUSE.match(line))]
    a = [m for line in after.splitlines() if (m := _PAUSE.match(line))]
    if not a or not b:
        return "side by side: no pause line on one side"
    return (
        f"side by side, pause {a[-1]['ms']} ms mid-sentence: callers cut, before {b[-1]['cut']} "
        f"of {b[-1]['n']} -> after {a[-1]['cut']} of {a[-1]['n']}"
    )


def _script(checkout: str) -> tuple[Path, Path]:
    root = Path(checkout).resolve()
    script = root / "bench" / "speech.py"
    if not script.is_file():
        raise SystemExit(f"--before {checkout}: no bench/speech.py there")
    return root, script


async def start(checkout: str, argv: list[str]) -> asyncio.subprocess.Process:
    """``CHECKOUT/bench/speech.py`` with ``argv`` (``--before`` removed by the caller)."""
    root, script = _script(checkout)
    argv = _own_decisions(argv)
    env = {**os.environ, "PYTHONPATH": str(root)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        *argv,
        cwd=root,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


def _own_decisions(argv: list[str]) -> list[str]:
    """``--decisions FILE``: the other side writes ``FILE.before`` (``speech_cpu.same``)."""
    if "--decisions" not in argv:
        return argv
    at = argv.index("--decisions") + 1
    return [*argv[:at], os.path.abspath(argv[at]) + ".before", *argv[at + 1 :]]


def compare(before: dict[str, Figures], after: dict[str, Figures]) -> str:
    """A table: per condition, before -> after, and the latency ratios (after / before)."""
    rows = [
        "side by side (before = --before checkout, after = this one; the same minutes): "
        "correct / misroute / out-of-grammar -> nomatch %, in-grammar stops talking -> "
        "decision p50 / p99 ms"
    ]
    for cond, a in after.items():
        b = before.get(cond)
        if b is None:
            rows.append(f"  {cond:>20}: after {_cells(a)} (no before line)")
            continue
        rows.append(
            f"  {cond:>20}: before {_cells(b)} | after {_cells(a)} | correct "
            f"{a.correct - b.correct:+.1f} pts, p50 x{a.p50 / max(1.0, b.p50):.2f}, "
            f"p99 x{a.p99 / max(1.0, b.p99):.2f}; right answers p50 / p99 "
            f"{b.ok50:.0f} / {b.ok99:.0f} -> {a.ok50:.0f} / {a.ok99:.0f} ms; {_cpu_cells(b, a)}"
        )
    return "\n".join(rows)


def _cpu_cells(b: Figures, a: Figures) -> str:
    """STT CPU per decision, before -> after, and the p50 ratio only where both sides have it."""
    if b.cpu50 is None or b.cpu99 is None or a.cpu50 is None or a.cpu99 is None:
        return "STT CPU per decision: not printed by both sides (no ratio)"
    return (
        f"STT CPU per decision p50 / p99 {b.cpu50:.1f} / {b.cpu99:.1f} -> {a.cpu50:.1f} / "
        f"{a.cpu99:.1f} ms (p50 x{a.cpu50 / max(0.1, b.cpu50):.2f})"
    )


def _cells(f: Figures) -> str:
    return f"{f.correct:5.1f} / {f.misroute:4.1f} / {f.oog:5.1f} %, {f.p50:.0f} / {f.p99:.0f} ms"
