"""Issue 14 item 2: at start-up and after every reconnect the app adopts or ends every channel in
its application it has no session for, and removes its own orphaned media channels and bridges."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import forked
import pytest
from _leaks_kit import clean, leftovers, serving_text, until

from voxflow.sandbox.server import Sandbox

MENU_FLOW = """\
flow orphan "a menu that waits":
    answers "100"

state start:
    answer
    say "Welcome."
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> done

state done:
    hangup "done"
"""


def _media(sb: Sandbox) -> tuple[list[str], list[str]]:
    chans = sorted(c for c in sb.pbx.channels if c.startswith(("vf-em-", "vf-snoop-")))
    return chans, sorted(b for b in sb.pbx.bridges if b.startswith(("vf-mb-", "vf-br-")))


async def test_a_stasis_start_lost_before_the_socket_dropped_is_adopted(tmp_path: Path) -> None:
    async with serving_text(tmp_path, MENU_FLOW) as s:
        s.sb.faults.drop_next_events(1)  # the StasisStart goes nowhere
        call = await s.sb.place_call(from_="+15550100", to="100", app="voxflow")
        await asyncio.sleep(0.2)
        assert call.id not in s.app.sessions  # voxflow never heard of it
        connects = s.app.events.connects
        s.sb.faults.drop_events_socket("voxflow")
        await until(lambda: s.app.events.connects > connects, 10, "reconnect")
        await until(lambda: call.id in s.app.sessions, 10, "the lost call adopted")
        await call.wait_for("answered", 10)  # the flow ran from its first state
        await call.press("1")
        await call.wait_hangup(10)
        await until(lambda: clean(s), 10, "nothing left")


async def test_a_lost_call_is_adopted_even_when_the_sweep_after_reconnect_meets_5xx(
    tmp_path: Path,
) -> None:
    # Found by bench/soak.py: the sweep's GET answered 503 once and the lost call stayed in
    # Stasis, unserved, until the caller gave up.
    async with serving_text(tmp_path, MENU_FLOW) as s:
        s.sb.faults.drop_next_events(1)  # the StasisStart goes nowhere
        call = await s.sb.place_call(from_="+15550100", to="100", app="voxflow")
        await asyncio.sleep(0.2)
        assert call.id not in s.app.sessions
        s.sb.faults.fail_next_requests(3, 503, method="GET", path=r"^/(channels|applications)")
        connects = s.app.events.connects
        s.sb.faults.drop_events_socket("voxflow")
        await until(lambda: s.app.events.connects > connects, 10, "reconnect")
        await until(lambda: call.id in s.app.sessions, 10, "the lost call adopted")
        await call.wait_for("answered", 10)
        await call.press("1")
        await call.wait_hangup(10)
        await until(lambda: clean(s), 10, "nothing left")


async def _app_connected(sb: Sandbox, proc: forked.Forked, log: Path) -> None:
    """Wait until ``voxflow run`` has its events socket; a process that exits first or never
    connects fails the test with its exit code and the end of its log."""
    connected = asyncio.ensure_future(sb.wait_app("voxflow", 60))
    exited = asyncio.ensure_future(proc.wait())
    try:
        await asyncio.wait({connected, exited}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        exited.cancel()
    if connected.done() and connected.exception() is None:
        return
    connected.cancel()
    tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-3000:]
    raise AssertionError(f"voxflow run never connected (exit {proc.returncode}):\n{tail}")


async def _crashed_app_with_calls(sb: Sandbox, flow: Path, n: int) -> list[str]:
    """Run ``voxflow run`` (espeak prompts: media channels and bridges) on ``sb``, place ``n``
    calls into its menu, then kill -9 it. Returns the call ids."""
    env = {**os.environ, "VOXFLOW_ARI_PASSWORD": sb.password}
    log = flow.with_suffix(".log")
    with log.open("wb") as out:
        proc = await forked.spawn(
            "run", str(flow),
            "--ari-url", sb.ari_url,
            "--ari-user", sb.user, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
    try:
        await _app_connected(sb, proc, log)
        calls = [await sb.place_call(from_=f"+1555010{i}", to="100") for i in range(n)]
        await until(lambda: len(_media(sb)[1]) >= n, 60, "media bridges up")
        await asyncio.gather(*(c.wait_for("answered", 30) for c in calls))
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
    return [c.id for c in calls]


async def test_app_restarted_with_calls_in_stasis_restarts_them_and_sweeps_media(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "menu.flow"
    flow.write_text(MENU_FLOW)
    async with Sandbox(port=0, preload_sounds=False) as sb:
        ids = await _crashed_app_with_calls(sb, flow, 3)
        chans, bridges = _media(sb)
        assert chans and bridges  # the crash left media behind
        async with serving_text(tmp_path, MENU_FLOW, on=sb) as s:
            await until(lambda: all(i in s.app.sessions for i in ids), 10, "calls adopted")
            await until(lambda: _media(sb) == ([], []), 10, "orphan media swept")
            log = list(sb.rest_api.http_log)
            gone = [log.index(("DELETE", f"/channels/{c}")) for c in chans]
            freed = [log.index(("DELETE", f"/bridges/{b}")) for b in bridges]
            assert max(freed) < min(gone)  # the bridges holding the calls first (adoption)
            for cid in ids:
                await sb.calls[cid].press("1")
            await until(lambda: clean(s), 15, "nothing left")
            assert leftovers(s) == {"sessions": [], "channels": [], "bridges": []}


@pytest.mark.long
async def test_orphan_policy_hangup_apologises_and_hangs_up(tmp_path: Path) -> None:
    flow = tmp_path / "menu.flow"
    flow.write_text(MENU_FLOW)
    async with Sandbox(port=0, preload_sounds=False) as sb:
        ids = await _crashed_app_with_calls(sb, flow, 2)
        async with serving_text(tmp_path, MENU_FLOW, app={"orphans": "hangup"}, on=sb) as s:
            for cid in ids:
                assert await sb.calls[cid].wait_hangup(15) == 16
                played = [
                    e.get("uri") for e in sb.calls[cid].experience() if e["type"] == "playback"
                ]
                assert "sound:an-error-has-occurred" in played
            await until(lambda: clean(s), 15, "nothing left")
