"""Issue 14 item 6: malformed events are counted and logged, rate-limited (sandbox socket)."""

from __future__ import annotations

import logging

import pytest
from _leaks_kit import until

from voxflow.ari.ratelog import RateLimitedLog
from voxflow.sandbox import Sandbox
from voxflow.telephony.app import VoxtraApp


async def test_a_flood_of_malformed_events_is_counted_and_logged_a_few_times(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "voxflow.ari")
    async with Sandbox(port=0, preload_sounds=False) as sb:
        app = VoxtraApp(sb.ari_url, sb.user, sb.password)
        async with app:
            await sb.wait_app()
            sock = sb.app_sockets["voxflow"]
            for _ in range(100):
                sb.faults.send_malformed_event("voxflow", "invalid_json")
                sb.faults.send_malformed_event("voxflow", "no_type")
                sock.push('{"type": "StasisStart", "application": "voxflow", "channel": {"id": 5}}')
            await until(lambda: sum(app.events.rejected.values()) >= 300, 10, "300 counted")
            assert app.events.rejected == {"malformed": 100, "invalid": 200, "unknown": 0}
            assert not app.sessions
    skipped = [r for r in caplog.records if "skipping" in r.getMessage()]
    assert 1 <= len(skipped) <= 10


def test_rate_limited_log_reports_what_it_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    rl = RateLimitedLog(logging.getLogger("t.rl"), burst=2, window=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "t.rl"):
        logged = [rl.log(logging.WARNING, "bad %d", i) for i in range(5)]
        now[0] = 10.0
        rl.log(logging.WARNING, "bad %d", 5)
    assert logged == [True, True, False, False, False]
    assert [r.getMessage() for r in caplog.records] == [
        "bad 0",
        "bad 1",
        "bad 5 (3 similar messages suppressed)",
    ]
