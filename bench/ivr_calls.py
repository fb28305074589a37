"""Whole ``flows/main_ivr.flow`` calls with audio, driven by sandbox callers (for bench/cluster.py).

A call as ``bench/calls.py`` places it: the caller hears the welcome and the main menu's prompt
(espeak-ng speech streamed as paced RTP; the worker's VAD and pocketsphinx listen to the
caller meanwhile), presses 3 half a second into the menu's prompt, hears the billing menu's
prompt for 2 s and hangs up. About 5 s of call and 4 s of prompts, against the ~2 s and one
short prompt of bench/cluster.py's own flow.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from voxflow.sandbox.caller import SimCall
from voxflow.sandbox.server import Sandbox

__all__ = ["IVR_FLOW", "copy_ivr", "ivr_call", "ivr_calls"]

ROOT = Path(__file__).resolve().parent.parent
IVR_FLOW = ROOT / "flows" / "main_ivr.flow"


def copy_ivr(into: Path, name: str = IVR_FLOW.name) -> Path:
    """``flows/main_ivr.flow`` (as ``name``) and the files it includes, copied into ``into``;
    the copy."""
    shutil.copytree(ROOT / "flows" / "shared", into / "shared", dirs_exist_ok=True)
    return Path(shutil.copy(IVR_FLOW, into / name))


def _audio(call: SimCall) -> list[dict[str, object]]:
    return [e for e in call.experience() if e["type"] == "audio"]


async def _until(cond: Callable[[], bool], call: SimCall, deadline: float) -> None:
    """Until ``cond()`` (polled: the sandbox has no event for audio heard)."""
    while not cond():
        if call.ended or time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.05)


async def ivr_call(sb: Sandbox, app: str, i: int) -> bool:
    """One call (module docstring); True when the caller heard the billing prompt after its
    key and the call was still up when it hung up."""
    call = await sb.place_call(from_=f"+1555{i:07d}", to="100", app=app, wait_app=60)
    deadline = time.monotonic() + 60
    try:
        # the menu prompt: a second stretch of audio, >= 1 s after the welcome's started
        def menu() -> bool:
            starts = [float(str(e["start"])) for e in _audio(call)]
            return len(starts) >= 2 and starts[-1] >= starts[0] + 1.0

        await _until(menu, call, deadline)
        await asyncio.sleep(0.5)
        await call.press("3")
        pressed = max(float(str(e["t"])) for e in call.experience() if e["type"] == "pressed")
        # the billing prompt: audio that starts after the key
        await _until(
            lambda: any(float(str(e["start"])) > pressed for e in _audio(call)), call, deadline
        )
        await asyncio.sleep(2.0)
        return not call.ended
    except TimeoutError:
        return False
    finally:
        if not call.ended:
            await call.hangup()


async def ivr_calls(
    sb: Sandbox, app: str, n: int, concurrency: int, durations: list[float] | None = None
) -> int:
    """``n`` calls, ``concurrency`` at a time; returns how many failed. ``durations`` gets
    each call's wall time (s), placing to hang-up."""
    sem = asyncio.Semaphore(concurrency)

    async def limited(i: int) -> bool:
        async with sem:
            t0 = time.monotonic()
            try:
                return await ivr_call(sb, app, i)
            finally:
                if durations is not None:
                    durations.append(time.monotonic() - t0)

    return sum(not ok for ok in await asyncio.gather(*(limited(i) for i in range(n))))
