"""``bench/calls.py --before CHECKOUT``: every load also run by another checkout's code, just
before this one's (the same minutes, so the same machine load), and the two rows side by side.

The other side is ``CHECKOUT/bench/calls.py`` with this run's arguments for one load at a time
(``--counts N --arrivals A``, less ``--before``), run by this interpreter with
``PYTHONPATH=CHECKOUT`` (its own ``voxflow``, this venv's libraries), on every CPU this process
was given (it pins its own worker and sandbox as this one does). Its result rows are parsed, so
the checkout must have ``--arrivals`` (bench/calls.py from 0cc4ebe on). Make one with
``git archive COMMIT | tar -x -C DIR``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["COLUMNS", "not_real_time", "ratio_line", "run_before"]

# a result row's figures after its label, in order (calls.py's _row)
COLUMNS = (
    "n", "failed", "spoke", "misheard", "key_p50", "key_p99", "speech_p50", "speech_p99",
    "send_p99", "cpu_ms_per_call_s", "cpu_signalling", "cpu_media", "cpu_tts", "cpu_stt",
    "bare_p99",
)  # fmt: skip


def _args_for(argv: Sequence[str], n: int, arrivals: str) -> list[str]:
    """``argv`` (this run's arguments) for one load: ``--before``, ``--counts``, ``--arrivals``
    and ``--repeat`` replaced, ``--stt-log`` left out (this side's decisions only)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in ("--before", "--counts", "--arrivals", "--repeat", "--stt-log"):
            skip = "=" not in arg
            continue
        out.append(arg)
    return [*out, "--counts", str(n), "--arrivals", arrivals]


@contextlib.contextmanager
def not_real_time() -> Iterator[None]:
    """This process's threads, and its children's (multiprocessing's resource tracker), at
    SCHED_OTHER meanwhile (``--fifo`` set them real-time): the other side's bench counts a
    real-time process on its worker's core as noise, even an idle one."""
    saved = {}
    for tid in _own_threads():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            policy = os.sched_getscheduler(tid)
            if policy != os.SCHED_OTHER:
                saved[tid] = (policy, os.sched_getparam(tid))
                os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
    try:
        yield
    finally:
        for tid, (policy, param) in saved.items():
            with contextlib.suppress(OSError):
                os.sched_setscheduler(tid, policy, param)


def _own_threads() -> list[int]:
    """The thread ids of this process and of its child processes."""
    me, pids = os.getpid(), [os.getpid()]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == me:  # its parent
                    pids.append(int(entry))
    tids = []
    for pid in pids:
        with contextlib.suppress(OSError):
            tids += [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    return tids


def run_before(
    checkout: Path, argv: Sequence[str], n: int, arrivals: str, cpus: set[int]
) -> tuple[dict[str, float] | None, str]:
    """One load on ``checkout``'s code: its row's figures (None when it printed none) and its
    output (the row and its lines, to print)."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    checkout = checkout.resolve()
    script = checkout / "bench" / "calls.py"

    def fresh() -> None:  # not this process's pinning and FIFO: the other side sets its own
        os.sched_setaffinity(0, cpus)
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))

    done = subprocess.run(
        [sys.executable, str(script), *_args_for(argv, n, arrivals)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        preexec_fn=fresh,  # before the child reads its CPUs at import
        check=False,
    )
    row = None
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) > len(COLUMNS) and "arrivals" in parts and parts[1] == str(n):
            try:
                row = dict(zip(COLUMNS, map(float, parts[1 : 1 + len(COLUMNS)]), strict=True))
            except ValueError:
                continue
    tail = done.stdout if row is not None else done.stdout + done.stderr[-2000:]
    return row, tail


def ratio_line(n: int, label: str, before: dict[str, float] | None, after: dict[str, float]) -> str:
    """The after row against the before row: failed and misheard, speech p50/p99, key and send
    p99, CPU per call-second."""
    if before is None:
        return f"{'':>11} {n:>6} {label}: the --before checkout gave no figures (its output above)"

    def x(key: str) -> str:
        b, a = before[key], after[key]
        return f"x{a / b:.2f}" if b and b == b and a == a else "-"

    return (
        f"{'':>11} {n:>6} {label} after / before: failed {before['failed']:.0f} -> "
        f"{after['failed']:.0f}, misheard {before['misheard']:.0f} -> {after['misheard']:.0f}, "
        f"speech p50 {before['speech_p50']:.0f} -> {after['speech_p50']:.0f} ms "
        f"({x('speech_p50')}), p99 {before['speech_p99']:.0f} -> {after['speech_p99']:.0f} ms "
        f"({x('speech_p99')}), key p99 {x('key_p99')}, send p99 {x('send_p99')}, "
        f"CPU/call-s {x('cpu_ms_per_call_s')} (STT {x('cpu_stt')})"
    )
