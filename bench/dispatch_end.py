"""What a call's end costs the ARI dispatcher with N calls up (each call in a bridge of its own
with its media channel): ``StasisEnd`` plus ``forget_channel`` for the caller and the media
channel, per call, as the N calls end one after another; ``--before CHECKOUT`` times that
checkout's ``voxflow/ari/dispatch.py`` beside this one.

    .venv/bin/python bench/dispatch_end.py [--calls 500] [--before /tmp/main-before] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from types import ModuleType

from voxflow.ari.models import parse_event

ROOT = Path(__file__).resolve().parent.parent


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _per_call_us(module: ModuleType, n: int) -> float:
    """us per call end, all ``n`` calls ending one after another."""
    enters = [
        parse_event(
            {"type": "ChannelEnteredBridge", "bridge": {"id": f"b{i}"}, "channel": {"id": c}}
        )
        for i in range(n)
        for c in (f"c{i}", f"m{i}")
    ]
    ends = [parse_event({"type": "StasisEnd", "channel": {"id": f"c{i}"}}) for i in range(n)]
    dispatcher = module.Dispatcher()
    for event in enters:
        dispatcher.route(event)
    started = time.perf_counter()
    for i, event in enumerate(ends):
        dispatcher.route(event)
        dispatcher.forget_channel(f"c{i}")
        dispatcher.forget_channel(f"m{i}")
    return 1e6 * (time.perf_counter() - started) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--before", default="", help="a checkout whose dispatcher is the baseline")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    mods = {"this": _load(ROOT / "voxflow/ari/dispatch.py", "dispatch_this")}
    if args.before:
        mods = {
            "before": _load(Path(args.before) / "voxflow/ari/dispatch.py", "dispatch_before"),
            **mods,
        }
    for _ in range(args.repeat):
        figures = {name: _per_call_us(m, args.calls) for name, m in mods.items()}
        line = ", ".join(f"{name} {us:.1f} us" for name, us in figures.items())
        ratio = (
            f" (this / before x{figures['this'] / figures['before']:.3f})" if args.before else ""
        )
        print(f"{args.calls} calls ending, per call: {line}{ratio}")


if __name__ == "__main__":
    main()
