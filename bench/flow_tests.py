"""Flow scenarios per second on one core over the example suite (goal: >= 500/s).

Run: .venv/bin/python bench/flow_tests.py [--repeats 5]
Flows are compiled once; each repeat simulates every scenario of flows/tests/ and the median
rate is printed, with the virtual call time simulated per wall second.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from pathlib import Path

from voxflow.compiler.frontdoor import load_flow
from voxflow.testing.runner import discover
from voxflow.testing.scenario import load_scenario_file
from voxflow.testing.sim import run_scenario

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    files, _ = discover([ROOT / "flows"])
    suite = []
    for f in files:
        sf = load_scenario_file(f)
        flow = load_flow(sf.flow_path)
        suite += [(flow, sc, sf.defaults) for sc in sf.scenarios]
    gc.freeze()  # as ``voxflow test`` does while its scenarios run (voxflow/cli/testing.py)
    rates, virtual = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        call_seconds = 0.0
        for flow, sc, defaults in suite:
            res = run_scenario(flow, sc, defaults)
            call_seconds += res.ended_at or 0.0
        dt = time.perf_counter() - t0
        rates.append(len(suite) / dt)
        virtual.append(call_seconds / dt)
    print("command: .venv/bin/python bench/flow_tests.py")
    print(f"scenarios: {len(suite)} over {len(files)} files, repeats: {args.repeats}, one core")
    print(f"median: {statistics.median(rates):,.0f} scenarios/s (goal >= 500)")
    print(f"min/max: {min(rates):,.0f} / {max(rates):,.0f} scenarios/s")
    print(f"virtual call time simulated: {statistics.median(virtual):,.0f} s per wall second")


if __name__ == "__main__":
    main()
