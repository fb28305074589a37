"""The scripted callers of ``bench/calls.py`` (run as their own process), and how they arrive.

Two arrival models (``Arrivals``), always named beside the figures:

- ``burst``: all N callers are placed at once, and each hangs up as soon as it has heard the
  billing prompt start (the bench as it was: every spoken answer within ~2 s of the others).
- ``ramp@R``: caller i is placed at i / R s (R calls a second), and stays on the line ``hold``
  seconds after hearing its next prompt (default: the ramp's length, N / R, so that the first
  callers are still on the line when the last arrive and N calls are live at once). The flow
  meanwhile replays the billing menu to a silent caller, as it would to a real one.

    python bench/call_callers.py BASE N SPEAK_EVERY ARRIVALS HOLD

prints one JSON object per caller (a list): ``failed`` (why) or ``spoke``, and the times
(``time.monotonic``, the machine's clock, which the worker reads too) it was placed, answered
and hung up.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

__all__ = ["SPOKEN", "Arrivals", "arrivals_line", "parse_arrivals", "run_callers"]

AUTH = {"Authorization": "Basic " + base64.b64encode(b"voxflow:voxflow").decode()}
SPOKEN = "billing"  # what a speaking caller says (pre-synthesized by the sandbox at set-up)


@dataclass(frozen=True, slots=True)
class Arrivals:
    """``rate``: calls placed a second (None: all at once, ``burst``); ``hold``: seconds a caller
    stays on the line after hearing its next prompt (None: the ramp's length)."""

    rate: float | None = None
    hold: float | None = None

    @property
    def label(self) -> str:
        return "burst" if self.rate is None else f"ramp@{self.rate:g}"

    def start_s(self, i: int) -> float:
        """When caller ``i`` is placed, in seconds after the first."""
        return 0.0 if self.rate is None else i / self.rate

    def hold_s(self, n: int) -> float:
        """Seconds each of ``n`` callers stays on the line after hearing its next prompt."""
        if self.hold is not None:
            return self.hold
        return 0.0 if self.rate is None else n / self.rate


def parse_arrivals(text: str, hold: float | None) -> Arrivals:
    """``burst`` or ``ramp@R`` (R calls a second, > 0)."""
    if text == "burst":
        return Arrivals(None, hold)
    kind, _, rate = text.partition("@")
    try:
        value = float(rate)
    except ValueError:
        value = 0.0
    if kind != "ramp" or value <= 0:
        raise SystemExit(f"--arrivals: 'burst' or 'ramp@R' (R calls a second > 0), not {text!r}")
    return Arrivals(value, hold)


def speaks(i: int, every: int) -> bool:
    """Whether caller ``i`` answers by voice (one caller in ``every``; 0: none)."""
    return every > 0 and i % every == every - 1


def _peak(spans: Sequence[tuple[float, float]]) -> int:
    """The most of ``spans`` (start, end) that overlap at one moment."""
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    live = peak = 0
    for _, step in edges:
        live += step
        peak = max(peak, live)
    return peak


def arrivals_line(arrivals: Arrivals, results: Sequence[dict[str, Any]]) -> str:
    """What the load offered, measured from the callers' own times: the rate they were placed
    at, the most calls live at once, and the spoken answers a second (mean over the span they
    came in, and the most in any one second)."""
    placed = sorted(r["placed"] for r in results if "placed" in r)
    spans = [(r["placed"], r["ended"]) for r in results if "placed" in r and "ended" in r]
    said = sorted(r["said"] for r in results if "said" in r)
    span = placed[-1] - placed[0] if len(placed) > 1 else 0.0
    rate = f"{(len(placed) - 1) / span:.1f} calls/s over {span:.1f} s" if span else ""
    if arrivals.rate is None:
        rate = f"at once (within {span:.1f} s)"
    hold = arrivals.hold_s(len(results))
    out = f"arrivals {arrivals.label}: {len(placed)} placed {rate}, hold {hold:.0f} s"
    out += f", most live at once {_peak(spans)}"
    if said:
        over = said[-1] - said[0]
        mean = (len(said) - 1) / over if over > 0 else float("inf")
        most = max(sum(1 for t in said if s <= t < s + 1.0) for s in said)
        out += (
            f"; spoken answers offered: {len(said)} over {over:.1f} s, {mean:.1f}/s mean, "
            f"{most} in the busiest second"
        )
    return out


async def _menu_heard(http: aiohttp.ClientSession, cid: str, deadline: float) -> None:
    """Return once into the menu prompt: audio that starts >= 0.9 s after the first (the welcome
    lasts 0.92-0.96 s; under load the caller may hear it in pieces), or audio still heard 1.0 s
    after the first started (the interpreter may queue the menu right behind the welcome: one
    stretch of audio, no quiet tick between), then half a second of it."""
    first_heard: float | None = None
    while time.monotonic() < deadline:
        exp = await _experience(http, cid)
        heard = [e for e in exp if e["type"] == "audio"]
        if not heard:
            await asyncio.sleep(0.1)
            continue
        first_heard = first_heard or time.monotonic()
        s0 = heard[0]["start"]
        if heard[-1]["start"] >= s0 + 0.9 or any(
            e["end"] is not None and e["end"] >= s0 + 1.0 for e in heard
        ):
            break
        if heard[-1]["end"] is None and time.monotonic() - first_heard >= 1.0:
            break
        await asyncio.sleep(0.05)
    else:
        raise TimeoutError
    await asyncio.sleep(0.5)


async def _experience(http: aiohttp.ClientSession, cid: str) -> list[dict[str, Any]]:
    async with http.get(f"/sandbox/calls/{cid}") as r:
        return list((await r.json())["experience"])


async def _hangup(http: aiohttp.ClientSession, cid: str, out: dict[str, Any]) -> dict[str, Any]:
    async with http.post(f"/sandbox/calls/{cid}/hangup", json={}):
        pass
    out["ended"] = time.monotonic()
    return out


async def _answer(
    http: aiohttp.ClientSession, cid: str, spoken: bool, out: dict[str, Any]
) -> dict[str, Any]:
    """Say "billing" or press 3, then wait for the billing prompt: the verdict on this call."""
    if spoken:  # barges in by voice; returns once the words have all been sent
        async with http.post(f"/sandbox/calls/{cid}/say", json={"text": SPOKEN}):
            pass
        out["said"] = time.monotonic()
        await asyncio.sleep(3.0)  # end-pointing, recognition, then the billing prompt
    else:
        async with http.post(f"/sandbox/calls/{cid}/press", json={"digits": "3"}):
            pass
        await asyncio.sleep(2.0)  # the billing prompt plays (timed at the worker)
    exp = await _experience(http, cid)
    ended = [e for e in exp if e["type"] == "hangup"]
    acted: list[float] = [e.get("end") or e["t"] for e in exp if e["type"] in ("pressed", "said")]
    heard = [e for e in exp if e["type"] == "audio" and acted and (
        e["end"] is None or e["end"] > acted[0] + 0.5)]  # fmt: skip
    if ended:
        out["failed"] = f"the call ended: {ended[0]}"
    elif not heard:
        out["failed"] = f"nothing heard after the {'answer' if spoken else 'key'}"
    elif spoken:
        out["spoke"] = True
    return out


async def _one_caller(
    http: aiohttp.ClientSession, i: int, spoken: bool, start: float, hold: float
) -> dict[str, Any]:
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    body = {"from": f"+1555{i:07d}", "to": "100", "app": "voxflow", "wait_app": 60}
    async with http.post("/sandbox/calls", json=body) as r:
        placed = await r.json()
        if r.status != 201:
            return {"failed": f"refused: {placed.get('message')}"}
    cid = placed["id"]
    out: dict[str, Any] = {"placed": time.monotonic()}
    try:
        await _menu_heard(http, cid, time.monotonic() + 60)
    except TimeoutError:
        out["failed"] = "the menu prompt never came within 60 s"
        return await _hangup(http, cid, out)
    await _answer(http, cid, spoken, out)
    if hold > 0 and "failed" not in out:  # on the line, silent, while the others arrive
        await asyncio.sleep(hold)
        ended = [e for e in await _experience(http, cid) if e["type"] == "hangup"]
        if ended:
            out["failed"] = f"the call ended while held: {ended[0]}"
    return await _hangup(http, cid, out)


async def run_callers(
    base: str, n: int, speak_every: int, arrivals: Arrivals
) -> list[dict[str, Any]]:
    """``n`` callers against the sandbox at ``base``, arriving as ``arrivals`` says."""
    conn = aiohttp.TCPConnector(limit=64)
    t0, hold = time.monotonic(), arrivals.hold_s(n)
    async with aiohttp.ClientSession(base, headers=AUTH, connector=conn) as http:
        return await asyncio.gather(
            *(
                _one_caller(http, i, speaks(i, speak_every), t0 + arrivals.start_s(i), hold)
                for i in range(n)
            )
        )


if __name__ == "__main__":
    _base, _n, _every, _arr, _hold = sys.argv[1:6]
    _arrivals = parse_arrivals(_arr, float(_hold) if _hold != "-" else None)
    print(json.dumps(asyncio.run(run_callers(_base, int(_n), int(_every), _arrivals))))
