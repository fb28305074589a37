"""Start-up cost of the CLI: each command in fresh processes, median wall and CPU.

``python bench/startup.py [-n N] [--before CHECKOUT]`` runs ``python -m voxflow`` with each of
``--help`` and ``run --help``, ``validate``, ``lint`` and ``fmt --check`` on
``flows/main_ivr.flow``, ``test`` on ``flows/tests/main_ivr.test.yaml``, ``compile --help`` and
``test --help``, N times each (default 9). With ``--before`` the other
checkout's code (``PYTHONPATH=CHECKOUT``, this interpreter and its libraries) runs the same
commands interleaved with this one's, run for run, so both sides see the same machine load; the
ratios are after / before. Make a baseline with ``git worktree add --detach /tmp/before COMMIT``.
The machine is shared: quote ``uptime``.

Without ``--bytecode``, with ``PYTHONDONTWRITEBYTECODE`` set (as in CI and the shared machine),
every run compiles voxflow's modules from source: ~25 % of ``validate``'s instructions, which an
installed package (bytecode compiled at install) does not spend. ``--bytecode`` measures that
case. The parser tables come from this user's cache (``voxflow.syntax.parser_cache``) on every
run after the first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["COMMANDS", "Sample", "main", "run_once"]

ROOT = Path(__file__).resolve().parents[1]

COMMANDS: dict[str, tuple[str, ...]] = {
    "--help": ("--help",),
    "run --help": ("run", "--help"),
    "validate": ("validate", "flows/main_ivr.flow"),
    "lint": ("lint", "flows/main_ivr.flow"),
    "fmt --check": ("fmt", "--check", "flows/main_ivr.flow"),
    "test": ("test", "flows/tests/main_ivr.test.yaml"),
    "compile --help": ("compile", "--help"),
    "test --help": ("test", "--help"),
}

Sample = tuple[float, float]
"""One run: wall seconds, CPU seconds (user + system of the child)."""


def run_once(code: Path, args: tuple[str, ...], pycache: Path | None = None) -> Sample:
    """``python -m voxflow ARGS`` with ``code`` first on the path, in ``code``; exit 0 required.
    With ``pycache``, bytecode is written to and read from there (``PYTHONPYCACHEPREFIX``)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxflow", *args],
        cwd=code,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{code}: voxflow {' '.join(args)} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def _median(samples: list[Sample]) -> Sample:
    return (
        statistics.median(s[0] for s in samples),
        statistics.median(s[1] for s in samples),
    )


def _cell(sample: Sample) -> str:
    return f"wall {sample[0] * 1000:6.0f} ms cpu {sample[1] * 1000:6.0f} ms"


def main(argv: list[str] | None = None) -> None:
    """Run the commands and print the medians (and the ratios with ``--before``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=9, help="runs per command and side")
    parser.add_argument("--before", type=Path, help="a checkout to compare with")
    parser.add_argument(
        "--bytecode",
        action="store_true",
        help="modules load from bytecode (in a temporary PYTHONPYCACHEPREFIX, after one "
        "unmeasured run of each command), as from an installed package",
    )
    opts = parser.parse_args(argv)
    sides = {"after": ROOT}
    if opts.before is not None:
        sides = {"before": opts.before.resolve(), "after": ROOT}
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min); n={opts.n}")
    with tempfile.TemporaryDirectory(prefix="voxflow-startup-") as tmp:
        pycache = {side: Path(tmp) / side if opts.bytecode else None for side in sides}
        for name, args in COMMANDS.items():
            _measure(name, args, sides, pycache, opts.n)


def _measure(
    name: str,
    args: tuple[str, ...],
    sides: dict[str, Path],
    pycache: dict[str, Path | None],
    n: int,
) -> None:
    """Run one command ``n`` times per side, interleaved; print the medians and ratios."""
    for side, code in sides.items():
        if pycache[side] is not None:
            run_once(code, args, pycache[side])  # writes the bytecode: not measured
    got: dict[str, list[Sample]] = {side: [] for side in sides}
    for _ in range(n):
        for side, code in sides.items():
            got[side].append(run_once(code, args, pycache[side]))
    med = {side: _median(samples) for side, samples in got.items()}
    cells = " | ".join(f"{side} {_cell(m)}" for side, m in med.items())
    if "before" in med:
        b, a = med["before"], med["after"]
        cells += f" | ratio wall x{a[0] / b[0]:.2f} cpu x{a[1] / b[1]:.2f}"
    print(f"{name:>12}: {cells}", flush=True)


if __name__ == "__main__":
    main()
