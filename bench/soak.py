"""Soak: many concurrent calls under faults, then what is left and how memory grew.

    .venv/bin/python bench/soak.py [--calls 10000] [--concurrency 200] [--warmup 2000]
                                   [--windows 4] [--drop-every 1.5] [--fail-every 0.7]

Runs :func:`voxflow.testing.soak.run_soak` (a dialling flow, a busy dial and a menu on a real
``FlowServer`` over the in-process sandbox: callers hang up while the dial rings or once
bridged, the events socket is dropped every ``--drop-every`` s, REST answers bursts of 503
every ``--fail-every`` s). With ``--windows N`` it repeats the measured part N times on the
same process to show whether memory per 1,000 calls plateaus. Prints calls/s, outcomes, what is
left behind (must be nothing) and memory per 1,000 calls (tracemalloc total, the app's own code,
RSS). The short version runs in CI: ``tests/leaks/test_leaks_soak.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from voxflow.testing.soak import SoakConfig, run_soak


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=2_000)
    ap.add_argument("--windows", type=int, default=1)
    ap.add_argument("--drop-every", type=float, default=1.5)
    ap.add_argument("--fail-every", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args()
    if not 0 <= args.warmup < args.calls:
        ap.error(f"--calls ({args.calls}) includes the --warmup ({args.warmup}): it must be larger")
    logging.basicConfig(level=logging.CRITICAL)  # hundreds of expected fault warnings
    clean = True
    for window in range(args.windows):
        cfg = SoakConfig(
            calls=args.calls,
            concurrency=args.concurrency,
            warmup=args.warmup,
            drop_socket_every=args.drop_every,
            fail_5xx_every=args.fail_every,
            seed=args.seed + window,
        )
        report = asyncio.run(run_soak(cfg))
        print(f"--- window {window + 1}/{args.windows}")
        print("\n".join(report.lines()))
        clean = clean and not report.leftovers and not report.live_call_objects
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
