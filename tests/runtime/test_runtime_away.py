"""Calls that ended ``unknown`` kept in memory for their return (no Redis): taken once, gone
after ``away_ttl`` (a clock the test moves), at most ``limit`` kept (the oldest dropped), none
with ``away_ttl`` 0; ``[run] away_ttl`` is bounded (0 to a day)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from voxflow.compiler import compile_flow
from voxflow.errors import ConfigError
from voxflow.ir.models import Flow
from voxflow.runtime.away import DEFAULT_AWAY_TTL, MAX_AWAY_TTL, LocalAwayCalls
from voxflow.runtime.checkpoint import AwayCalls, Checkpoint
from voxflow.runtime.config import load_settings

FLOW = """flow f "f":
    answers "100"

state start:
    answer
    hangup "done"
"""


def _flow() -> Flow:
    flow = compile_flow(FLOW, "f.flow").flow
    assert flow is not None
    return flow


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_kept_call_comes_back_once_with_its_checkpoint_and_flow() -> None:
    flow, cp = _flow(), Checkpoint("h", "start", {"x": 1}, trip={"op": "queue"})
    away = LocalAwayCalls(60)
    calls: AwayCalls = away  # what a FlowServer without a store uses

    async def go() -> None:
        await calls.keep_away("c1", cp, flow)
        assert "c1" in away and "c2" not in away
        assert await calls.come_back("c1") == (cp, flow)
        assert await calls.come_back("c1") is None  # taken
        assert "c1" not in away

    asyncio.run(go())


def test_a_kept_call_is_gone_once_away_ttl_is_over() -> None:
    clock, flow = _Clock(), _flow()
    away = LocalAwayCalls(60, clock=clock)

    async def go() -> None:
        await away.keep_away("c1", Checkpoint("h", "start", {}), flow)
        clock.now += 30
        await away.keep_away("c2", Checkpoint("h", "start", {}), flow)
        clock.now += 29.9
        assert "c1" in away and len(away) == 2
        clock.now += 0.2  # c1's 60 s are over, c2's not
        assert "c1" not in away and "c2" in away
        assert await away.come_back("c1") is None
        clock.now += 30
        assert len(away) == 0

    asyncio.run(go())


def test_at_most_limit_calls_are_kept_the_oldest_dropped_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flow = _flow()
    away = LocalAwayCalls(60, limit=3)

    async def go() -> None:
        for n in range(5):
            await away.keep_away(f"c{n}", Checkpoint("h", "start", {}), flow)
        assert [c for c in ("c0", "c1", "c2", "c3", "c4") if c in away] == ["c2", "c3", "c4"]

    with caplog.at_level(logging.WARNING, "voxflow.runtime.away"):
        asyncio.run(go())
    assert away.dropped == 2
    assert sum("c0 is no longer kept" in r.getMessage() for r in caplog.records) == 1


def test_away_ttl_0_keeps_nothing() -> None:
    away = LocalAwayCalls(0)
    asyncio.run(away.keep_away("c1", Checkpoint("h", "start", {}), _flow()))
    assert "c1" not in away
    assert asyncio.run(away.come_back("c1")) is None


def test_away_ttl_setting_is_bounded(tmp_path: Path) -> None:
    assert load_settings({}, env={}, cwd=tmp_path).away_ttl == DEFAULT_AWAY_TTL == 3600
    conf = tmp_path / "voxflow.toml"
    conf.write_text("[run]\naway_ttl = 0\n")
    assert load_settings({}, env={}, cwd=tmp_path).away_ttl == 0
    conf.write_text("[run]\naway_ttl = 86400\n")
    assert load_settings({}, env={}, cwd=tmp_path).away_ttl == MAX_AWAY_TTL
    for bad in ("-1", "86401", '"soon"', "true", "nan", "inf"):
        conf.write_text(f"[run]\naway_ttl = {bad}\n")
        with pytest.raises(ConfigError, match=r"\[run\] away_ttl"):
            load_settings({}, env={}, cwd=tmp_path)
