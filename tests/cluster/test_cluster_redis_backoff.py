"""Redis unreachable: a worker waiting for its application name tries Redis with a backoff, not
every 50 ms, and says so once when Redis goes down and once when it is back (the finding: 550
"watch app holders skipped" lines in 30 s); once a real redis-server answers, it goes on."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from _cluster_kit import _free_port, start_redis

from voxflow.cluster import ClusterState


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("voxflow.cluster") and r.levelno >= logging.WARNING
    ]


async def test_a_standby_backs_off_while_redis_is_down_then_holds_its_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = _free_port()
    caplog.set_level(logging.WARNING, logger="voxflow.cluster")
    # log_every=0: every skipped operation may be logged (the flood is in the tries, not the
    # log rate limit)
    async with ClusterState(f"redis://127.0.0.1:{port}/0", worker_id="w", log_every=0.0) as state:
        polls = 0
        holders = state.holds._holders

        async def counted(apps: Any) -> Any:
            nonlocal polls
            polls += 1
            return await holders(apps)

        state.holds._holders = counted  # type: ignore[method-assign]  # counts the tries
        hold = asyncio.create_task(state.holds.hold_any(["node/app"]))
        await asyncio.sleep(2.0)
        assert not hold.done()
        said = _said(caplog)
        assert polls <= 8, polls  # 0.2 s doubling (up to the 1 s heartbeat): ~5 tries in 2 s
        assert len(said) == 1, said
        assert f"127.0.0.1:{port}" in said[0] and "unreachable" in said[0]
        rs = await start_redis(tmp_path / "r", port=port)
        try:
            assert await asyncio.wait_for(hold, 10) == "node/app"
            said = _said(caplog)
            assert sum("is back" in m for m in said) == 1, said
            assert len(said) == 2, said
        finally:
            await rs.stop()


async def test_the_down_warning_has_no_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="voxflow.cluster")
    url = f"redis://:s3cr3t-pw@127.0.0.1:{_free_port()}/0"
    state = ClusterState(url, worker_id="w")
    try:
        assert await state.holds.op("watch app holders", state.redis.ping) is None
    finally:
        await state.redis.aclose()
    said = _said(caplog)
    assert said and all("s3cr3t-pw" not in m for m in said), said
