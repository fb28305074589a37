"""VirtualClock: timers in deadline order, manual advance, and whole calls in virtual time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from conftest import RawAri, connected

from voxflow.sandbox import Sandbox, VirtualClock


async def test_manual_clock_fires_timers_in_deadline_order() -> None:
    clock = VirtualClock(auto=False, start=100.0)
    clock.start()
    fired: list[tuple[str, float]] = []
    clock.call_later(3.0, lambda: fired.append(("c", clock.now())))
    clock.call_later(1.0, lambda: fired.append(("a", clock.now())))
    cancelled = clock.call_later(2.0, lambda: fired.append(("x", clock.now())))
    clock.call_at(102.5, lambda: fired.append(("b", clock.now())))
    cancelled.cancel()
    assert clock.pending() == 3
    await clock.advance(2.9)
    assert fired == [("a", 101.0), ("b", 102.5)]
    assert clock.now() == pytest.approx(102.9)
    await clock.advance(0.1)
    assert fired[-1] == ("c", 103.0) and clock.pending() == 0
    # sleep() only returns when virtual time is advanced past it.
    sleeper = asyncio.ensure_future(clock.sleep(5))
    await asyncio.sleep(0.05)
    assert not sleeper.done()
    await clock.advance(5)
    await asyncio.wait_for(sleeper, 5)
    await clock.stop()


@pytest.fixture
async def vsandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(port=0, clock=VirtualClock()) as sb:
        yield sb


@pytest.fixture
async def vari(vsandbox: Sandbox) -> AsyncIterator[RawAri]:
    async with connected(vsandbox) as client:
        yield client


def _ts(ev: dict[str, Any]) -> float:
    return datetime.strptime(ev["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


async def _ringing_timeout(sb: Sandbox, ari: RawAri) -> list[tuple[str, str, float]]:
    """Originate to a phone that rings forever with a 30 s timeout; return the events as
    (type, dialstatus, seconds since the first event)."""
    sb.set_outbound_behaviour("PJSIP/alice", "ring")
    status, ch = await ari.req("POST", "/channels", endpoint="PJSIP/alice", app="voxflow",
                               timeout="30")  # fmt: skip
    assert status == 200
    got = []
    while True:
        ev = await ari.next(timeout=20)
        got.append(ev)
        if ev["type"] == "ChannelDestroyed":
            break
    assert got[-1]["cause"] == 19 and got[-1]["channel"]["id"] == ch["id"]
    t0 = _ts(got[0])
    return [(e["type"], e.get("dialstatus", ""), round(_ts(e) - t0, 3)) for e in got]


async def test_a_30_second_timeout_runs_in_virtual_time(vsandbox: Sandbox, vari: RawAri) -> None:
    clock = vsandbox.clock
    v0, r0 = clock.now(), time.monotonic()
    first = await _ringing_timeout(vsandbox, vari)
    assert clock.now() - v0 >= 30.0
    assert time.monotonic() - r0 < 20  # 30 virtual seconds did not wait 30 real ones
    assert [(t, d) for t, d, _ in first] == [
        ("Dial", ""), ("ChannelStateChange", ""), ("Dial", "RINGING"),
        ("Dial", "NOANSWER"), ("ChannelDestroyed", ""),
    ]  # fmt: skip
    assert first[-1][2] == pytest.approx(30.0, abs=0.05)
    # Deterministic: the same scenario again gives the same events at the same offsets.
    second = await _ringing_timeout(vsandbox, vari)
    assert second == first


async def test_caller_silence_and_dtmf_timing_in_virtual_time(
    vsandbox: Sandbox, vari: RawAri
) -> None:
    call = await vsandbox.place_call()
    await vari.next("StasisStart")
    clock = vsandbox.clock
    await vari.req("POST", f"/channels/{call.id}/answer")
    v0 = clock.now()
    await call.silence(45)
    await call.press("12", duration_ms=250, gap_ms=500)
    assert clock.now() - v0 == pytest.approx(45 + 0.25 + 0.5 + 0.25, abs=1e-6)
    digits = [await vari.next("ChannelDtmfReceived") for _ in range(2)]
    assert [(d["digit"], d["duration_ms"]) for d in digits] == [("1", 250), ("2", 250)]
    assert _ts(digits[1]) - _ts(digits[0]) == pytest.approx(0.75, abs=0.002)
    await call.hangup()
    assert (await vari.next("StasisEnd"))["channel"]["id"] == call.id
