"""Interpreter benchmark (partial): CPU of the pure step function per menu call.

Run: .venv/bin/python bench/interpreter.py
Prints the median CPU time of step() for one full menu call (answer, welcome, menu, choice,
goodbye) and per event. The comparison against a hand-written CallSession handler on the sandbox
and the 2,000-call DTMF->ARI p99 latency are NOT implemented yet.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "runtime"))

from _runtime_flowkit import Run
from test_runtime_step import menu_flow

from voxflow.runtime import events as ev


def one_call() -> int:
    r = Run(menu_flow())
    r.start()
    r.done(ev.Answer)
    r.done(ev.Say)
    r.done(ev.Say)
    r.press("1")
    r.done(ev.Say)
    assert r.ended() is not None
    return 6


def main() -> None:
    flow_runs = []
    for _ in range(7):
        t0 = time.process_time()
        events = sum(one_call() for _ in range(500))
        flow_runs.append((time.process_time() - t0) / 500)
    med = statistics.median(flow_runs)
    print(f"step() CPU per menu call: median {med * 1e6:.0f} us ({med / 6 * 1e6:.0f} us/event)")
    print(f"events per call: {events // 500}; command: .venv/bin/python bench/interpreter.py")


if __name__ == "__main__":
    main()
