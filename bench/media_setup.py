"""The first prompt of a keys-only menu, with and without speech: how long after the answer
the ``play`` starts, and what each call asks Asterisk for (externalMedia channels, bridges,
REST requests in all).

    .venv/bin/python bench/media_setup.py [--calls 40] [--at-once 10] [--rounds 3]
        [--before CHECKOUT]

Each call runs ``answer; play "long-prompt"; menu`` (the default barge-in, ``any``) on an
embedded sandbox, ``--at-once`` calls placed together (after one warm-up call, not counted);
the caller presses 1 once the sound plays. Two apps: ``none`` (no TTS, STT, VAD or voice
factory: what ``voxflow run --no-audio`` builds) and ``speech`` (a VAD and the default voice
factory: speech barge-in needs the media path). Reported per app: answer -> playback playing
p50/p99 (sandbox clock, ms), and per call the ``POST /channels/externalMedia``, ``POST /bridges``
and all REST requests. With ``--before CHECKOUT`` (a tree with ``voxflow/``, e.g. ``git
archive COMMIT | tar -x -C DIR``) every round runs that code first, in a child process, then
this code, and a line gives the ratios after / before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

FLOW = """\
flow keys "a keys-only menu: a sound, then a key":
    answers "100"

state start:
    answer
    play "long-prompt"
    menu "Press 1 or 2.":
        timeout 5s
        1 -> one
        2 -> one
        on noinput, nomatch -> one
        on exhausted -> one

state one:
    hangup "one"
"""


def _app(kind: str) -> dict[str, Any]:
    if kind == "none":
        return {}
    from voxflow.media.callmedia import create_call_voice
    from voxflow.media.vad import WebRtcVad

    return {"vad": WebRtcVad(), "voice_factory": create_call_voice}


async def _one(sb: Any, delays: list[float]) -> None:
    call = await sb.place_call(from_="+15550100", to="100", app="voxflow")
    answered = await call.wait_for("answered", 30)
    playing = await call.wait_for("playback", 30, state="playing")
    delays.append((playing["t"] - answered["t"]) * 1000)
    await call.press("1")
    await call.wait_hangup(30)


async def _load(kind: str, calls: int, at_once: int) -> dict[str, Any]:
    """``calls`` calls of FLOW on a fresh sandbox, ``at_once`` at a time, on app ``kind``."""
    import numpy as np

    from voxflow.runtime.config import Settings
    from voxflow.runtime.registry import FlowRegistry
    from voxflow.runtime.server import FlowServer
    from voxflow.sandbox.server import Sandbox
    from voxflow.telephony.app import VoxtraApp

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keys.flow"
        path.write_text(FLOW)
        reg = FlowRegistry()
        reg.load([path])
        async with Sandbox(port=0) as sb:
            sb.add_sound(
                "long-prompt",
                np.tile(np.array([0, 6000, 0, -6000], dtype=np.int16), 8000 * 8).tobytes(),
            )
            app = VoxtraApp(sb.ari_url, sb.user, sb.password, "voxflow", **_app(kind))
            server = FlowServer(app, reg, Settings(grace_period=5))
            stop = asyncio.Event()
            serve = asyncio.ensure_future(server.serve(stop))
            try:
                await sb.wait_app("voxflow", 20)
                await _one(sb, [])  # warm-up (first-use imports), not counted
                sb.rest_api.http_log.clear()
                delays: list[float] = []
                for start in range(0, calls, at_once):
                    n = min(at_once, calls - start)
                    await asyncio.gather(*(_one(sb, delays) for _ in range(n)))
                log = list(sb.rest_api.http_log)
            finally:
                stop.set()
                await serve
    posts = [p for m, p in log if m == "POST"]
    return {
        "p50": statistics.median(delays),
        "p99": sorted(delays)[max(0, round(len(delays) * 0.99) - 1)],
        "em": posts.count("/channels/externalMedia") / calls,
        "bridges": posts.count("/bridges") / calls,
        "rest": len(log) / calls,
    }


def _child(checkout: Path, argv: list[str]) -> dict[str, dict[str, Any]]:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    out = subprocess.run(
        [sys.executable, __file__, *argv, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, dict[str, Any]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _row(label: str, r: dict[str, Any]) -> str:
    return (
        f"{label:<14} answer->play p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms   per call: "
        f"externalMedia {r['em']:.2f}  bridges {r['bridges']:.2f}  REST {r['rest']:.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--at-once", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--before")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    one = ["--calls", str(args.calls), "--at-once", str(args.at_once)]
    if args.json:
        res = {k: asyncio.run(_load(k, args.calls, args.at_once)) for k in ("none", "speech")}
        print(json.dumps(res))
        return
    print(f"load: {os.getloadavg()[0]:.2f}; {args.calls} calls, {args.at_once} at once")
    here = Path(__file__).resolve().parents[1]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {"before": {}, "after": {}}
    for _ in range(args.rounds):
        sides = [("before", Path(args.before))] if args.before else []
        for side, tree in [*sides, ("after", here)]:
            for kind, r in _child(tree, one).items():
                runs[side].setdefault(kind, []).append(r)
                print(_row(f"{side} {kind}", r), flush=True)
    print(f"medians of {args.rounds} round(s); load now {os.getloadavg()[0]:.2f}")
    for kind in ("none", "speech"):
        med = {
            s: {f: statistics.median(r[f] for r in runs[s][kind]) for f in runs[s][kind][0]}
            for s in runs
            if kind in runs[s]
        }
        for side, r in med.items():
            print(_row(f"{side} {kind}", r))
        if "before" in med:
            b, a = med["before"], med["after"]
            ratios = "  ".join(f"{f} {a[f] / max(b[f], 1e-9):.2f}" for f in ("p50", "p99", "rest"))
            print(f"{'ratio ' + kind:<14} {ratios}")


if __name__ == "__main__":
    main()
