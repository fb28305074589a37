"""A call's objects are freed by reference counting when it ends, not by the cyclic garbage
collector: per-call reference cycles make every full collection at load find (and first
traverse) the garbage of every call ended since the last one, and those collections stall every
call's audio (docs/media-performance.md, "Per-call garbage").

Real calls on the sandbox, served by a flow with spoken prompts over RTP (espeak-ng, the media
path, the pacer), a key-driven menu and the caller's hang-up; while they run, what the collector
finds is kept (``gc.DEBUG_SAVEALL``) and checked for the worker's objects."""

from __future__ import annotations

import gc
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _leaks_kit import Served, clean, serving_text, until

from voxflow.media.tts_espeak import EspeakTTS

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

FLOW = """\
flow cyclic "a menu by key, then the caller hangs up":
    answers "100"

state start:
    answer
    say "Welcome."
    menu "For billing, press 3.":
        3 -> billing
        on noinput, nomatch -> done

state billing:
    menu "To pay your bill, press 1.":
        1 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"
"""

WORKER = ("voxflow.telephony.", "voxflow.media.", "voxflow.runtime.", "voxflow.voice.")


@contextmanager
def cyclic_garbage() -> Iterator[list[str]]:
    """The types of the cyclic garbage made meanwhile (kept, counted, then freed)."""
    found: list[str] = []
    gc.collect()
    gc.garbage.clear()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
    finally:
        gc.set_debug(0)
        found.extend(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
        gc.garbage.clear()


async def _one_call(s: Served, caller: str) -> None:
    """The caller hears the welcome, presses 3, hears the billing menu and hangs up."""
    sim = await s.sb.place_call(from_=caller, to="100")
    await until(lambda: len(sim.heard_audio()) > 8000, 20, "the welcome heard")
    await sim.press("3")
    heard = len(sim.heard_audio())
    await until(lambda: len(sim.heard_audio()) > heard + 8000, 20, "the billing menu heard")
    await sim.hangup()
    await until(lambda: clean(s), 20, "the call gone on both sides")


async def test_a_served_call_with_prompts_and_keys_leaves_no_cyclic_garbage(tmp_path: Path) -> None:
    app = {"tts": EspeakTTS(sample_rate=8000)}
    async with serving_text(tmp_path, FLOW, app=app) as s:
        with cyclic_garbage() as found:
            for i in range(2):
                await _one_call(s, f"+1555011{i}")
        ours = sorted({t for t in found if t.startswith(WORKER)})
    assert ours == [], f"{len(found)} objects of cyclic garbage, the worker's: {ours}"
