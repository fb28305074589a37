"""How much of a core a process's real-time (SCHED_FIFO/RR) threads used, per trailing second.

Linux lets real-time threads use at most ``sched_rt_runtime_us`` of every ``sched_rt_period_us``
on a CPU (950,000 of 1,000,000 by default); past that, every real-time thread there is stopped
for the rest of the period (up to 50 ms). A worker measured under ``bench/calls.py --fifo`` that
is busy for a whole second (500 calls being set up, keys, hang-ups) is then stopped, its pacer's
thread and the FIFO bare loop with it: every call's audio waits. :class:`RtShare` samples
``/proc/PID/task/*/stat`` every 50 ms from a child process pinned to another core and reports the
peak share and the time spent at or above the limit.
"""

from __future__ import annotations

import os
import time
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType

from loop_probe import ChildSampler

__all__ = ["RtShare", "other_real_time"]

_HZ = os.sysconf("SC_CLK_TCK")
_REAL_TIME = {1, 2}  # SCHED_FIFO, SCHED_RR


def _limit() -> float:
    """The real-time share the kernel allows a CPU (1.0: unlimited)."""
    try:
        runtime = int(Path("/proc/sys/kernel/sched_rt_runtime_us").read_text())
        period = int(Path("/proc/sys/kernel/sched_rt_period_us").read_text())
    except (OSError, ValueError):
        return 1.0
    return 1.0 if runtime < 0 else runtime / period


def _sample(pid: int) -> dict[str, tuple[int, bool]]:
    """Per thread: CPU ticks so far and whether it runs real-time now."""
    out = {}
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            f = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        out[stat.parent.name] = (int(f[11]) + int(f[12]), int(f[38]) in _REAL_TIME)
    return out


def _child(pid: int, cpu: int | None, conn: Connection) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    samples: list[tuple[float, dict[str, tuple[int, bool]]]] = []
    conn.send("ready")
    while not conn.poll(0.05):
        samples.append((time.monotonic(), _sample(pid)))
    conn.recv()
    shares = []
    j = 0
    for t, now in samples:  # the real-time threads' CPU over the trailing second
        while samples[j][0] < t - 1.0:
            j += 1
        t0, then = samples[j - 1] if j else samples[0]
        if t - t0 < 0.9:
            continue
        used = sum(c - then[k][0] for k, (c, rt) in now.items() if rt and k in then)
        shares.append(used / _HZ / (t - t0))
    conn.send(shares)


def other_real_time(cpu: int | None, ours: set[int]) -> list[str]:
    """User-space processes other than ``ours`` and their children running real-time on ``cpu``
    now (another ``--fifo`` benchmark there shares the real-time budget of the core: its figures
    and ours are both worthless)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        pid = int(stat.parent.name)
        try:
            f = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
            cpus = os.sched_getaffinity(pid)
        except (OSError, IndexError, UnicodeDecodeError):
            continue
        mine = pid in ours or int(f[1]) in ours  # ours, or a child of ours (its probe)
        if int(f[38]) in _REAL_TIME and cmd and not mine and (cpu is None or cpu in cpus):
            found.append(f"{pid} ({cmd.strip()})")
    return found


class RtShare:
    """Context manager: the real-time share of ``pid``'s threads per trailing second, sampled
    from a child process on ``cpu`` while the block runs."""

    def __init__(self, pid: int, cpu: int | None) -> None:
        self.pid, self.cpu = pid, cpu
        self.shares: list[float] = []
        self.limit = _limit()
        self._sampler: ChildSampler | None = None

    def __enter__(self) -> RtShare:
        self._sampler = ChildSampler(_child, self.pid, self.cpu)
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._sampler is not None
        self.shares = list(self._sampler.stop())

    def line(self) -> str:
        """``real-time threads: peak 0.98 of a core over a second; 0.6 s at or above the
        kernel's limit 0.95 (throttled: every real-time thread stopped for the rest of it)``."""
        peak = max(self.shares, default=0.0)
        over = 0.05 * sum(s >= self.limit - 0.01 for s in self.shares)
        return (
            f"real-time threads: peak {peak:.2f} of a core over a second; {over:.1f} s at or "
            f"above the kernel's limit {self.limit:.2f} (sched_rt_runtime_us: over it every "
            "real-time thread on the core is stopped for the rest of the second)"
        )
