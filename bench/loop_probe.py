"""What the machine itself does to a 20 ms timer: the baseline printed beside latency figures.

A shared, noisy machine makes any latency figure partly the machine's. :class:`BareLoopProbe` runs,
in a child process pinned to the same core as the code being measured and for the same span of
time, a bare asyncio loop that wakes on an absolute 20 ms grid (as the pacer does) and records how
late each wake-up was. A benchmark prints its p99 lateness beside its own figures, so a result
reads as "voxflow adds X ms to what a bare loop on this core suffered meanwhile".

    with BareLoopProbe(cpu=0) as probe:
        ...  # the measured run
    print(probe.describe())          # "bare 20 ms loop on cpu 0: p50 0.06 ms, p99 0.31 ms, ..."

Run alone (``python bench/loop_probe.py --seconds 5``) it prints the figures for the whole machine.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import TracebackType

import numpy as np

__all__ = ["BareLoopProbe", "ChildSampler"]

TICK = 0.02
FIFO_PRIORITY = 5  # SCHED_FIFO priority of a measured worker and its probe (--fifo)


async def _tick(stop: Connection) -> list[float]:
    loop = asyncio.get_running_loop()
    late: list[float] = []
    start = loop.time()
    k = 1
    while not stop.poll():
        due = start + k * TICK
        fut = loop.create_future()
        loop.call_at(due, fut.set_result, None)
        await fut
        late.append(loop.time() - due)
        k += 1
        if late[-1] > TICK:  # skip ticks we overslept, like the pacer; count the lateness once
            k += int(late[-1] / TICK)
    return late


def _probe(cpu: int | None, fifo: bool, conn: Connection) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    if fifo:  # as the measured process, when it runs SCHED_FIFO (bench/calls.py --fifo)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(FIFO_PRIORITY))
    conn.send("ready")
    late = asyncio.run(_tick(conn))
    conn.recv()
    conn.send(late)


class ChildSampler:
    """A child process that samples while a block runs. ``target(*args, conn)`` sends
    ``"ready"``, samples until ``conn`` has ``"stop"``, reads it and sends its samples back;
    :meth:`stop` returns them. Spawned, not forked: no copy of the benchmark's loop or sockets."""

    def __init__(self, target: Callable[..., None], *args: object) -> None:
        ctx = mp.get_context("spawn")
        self._conn, theirs = ctx.Pipe()
        self._proc = ctx.Process(target=target, args=(*args, theirs), daemon=True)
        self._proc.start()
        self._conn.recv()

    def stop(self) -> list[float]:
        """Stop sampling; the child's samples."""
        self._conn.send("stop")
        samples: list[float] = self._conn.recv()
        self._proc.join(5)
        return samples


class BareLoopProbe:
    """Context manager: a bare 20 ms asyncio timer loop in a child process on ``cpu`` (None:
    wherever the scheduler puts it) for as long as the block runs; ``fifo``: at SCHED_FIFO
    priority ``FIFO_PRIORITY``, as a worker measured with ``--fifo``."""

    def __init__(self, cpu: int | None = None, fifo: bool = False) -> None:
        self.cpu = cpu
        self.fifo = fifo
        self.lateness_ms: np.ndarray | None = None
        self._sampler: ChildSampler | None = None

    def __enter__(self) -> BareLoopProbe:
        self._sampler = ChildSampler(_probe, self.cpu, self.fifo)
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._sampler is not None
        self.lateness_ms = np.array(self._sampler.stop()) * 1000

    def figures(self) -> dict[str, float]:
        """p50/p99/max lateness (ms) and the number of ticks."""
        late = self.lateness_ms if self.lateness_ms is not None else np.zeros(0)
        if not len(late):
            return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "ticks": 0.0}
        return {
            "p50_ms": float(np.percentile(late, 50)),
            "p99_ms": float(np.percentile(late, 99)),
            "max_ms": float(late.max()),
            "ticks": float(len(late)),
        }

    def describe(self) -> str:
        f = self.figures()
        where = f"cpu {self.cpu}" if self.cpu is not None else "any cpu"
        return (
            f"bare 20 ms asyncio loop on {where} meanwhile: p50 {f['p50_ms']:.2f} ms, "
            f"p99 {f['p99_ms']:.2f} ms, max {f['max_ms']:.1f} ms late ({f['ticks']:.0f} ticks)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--cpu", type=int, default=None)
    args = ap.parse_args()
    with BareLoopProbe(args.cpu) as probe:
        time.sleep(args.seconds)
    print(probe.describe())


if __name__ == "__main__":
    main()
