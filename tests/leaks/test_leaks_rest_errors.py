"""Issue 14 item 3: a session is removed only when Asterisk confirms its channel is gone (an
event or a 404); hang-ups and bridge/media teardowns answered with 5xx are retried with backoff."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from _leaks_kit import DIAL_FLOW, clean, leftovers, serving_text, until
from sandbox_rig import open_app_rig

from voxflow.media.callmedia import CallMedia
from voxflow.media.transport import PortRange
from voxflow.sandbox import Sandbox
from voxflow.telephony.app import VoxtraApp
from voxflow.telephony.session import CallSession


async def test_hangup_answered_with_three_5xx_keeps_the_session_until_the_channel_is_gone() -> None:
    async with open_app_rig(PortRange(0, 0), retry_initial=0.05, event_wait=2.0) as rig:
        release = asyncio.Event()

        async def body(call: CallSession) -> str:
            await release.wait()
            rig.sb.faults.fail_next_requests(3, 503, method="DELETE", path=f"^/channels/{call.id}$")
            return call.id

        sim = await rig.call(body)
        release.set()
        cid = await rig.result()
        # while the hang-up is refused, the call stays registered: never forgotten while Up
        for _ in range(3):
            if cid not in rig.sb.pbx.channels:
                break
            assert cid in rig.app.sessions
            await asyncio.sleep(0.03)
        await until(lambda: cid not in rig.app.sessions, 10, "session removed")
        assert cid not in rig.sb.pbx.channels
        assert await sim.wait_hangup(5) == 16


async def test_bridge_destroy_answered_with_5xx_is_retried(tmp_path: Path) -> None:
    app = {"retry_initial": 0.05}
    async with serving_text(tmp_path, DIAL_FLOW, sandbox={"answer_delay": 0.05}, app=app) as s:
        call = await s.sb.place_call(from_="+15550100", to="100", app="voxflow")
        await call.wait_for("bridge", 20)
        s.sb.faults.fail_next_requests(3, 500, method="DELETE", path="^/bridges/")
        await call.hangup()
        await until(lambda: clean(s), 15, "nothing left")
        assert leftovers(s) == {"sessions": [], "channels": [], "bridges": []}


async def test_media_teardown_answered_with_5xx_is_retried() -> None:
    async with open_app_rig(PortRange(0, 0), retry_initial=0.05) as rig:

        async def body(call: CallSession) -> None:
            await call.send_audio(b"\x00\x00" * 160)
            rig.sb.faults.fail_next_requests(
                4, 500, method="DELETE", path="^/(bridges|channels)/vf-"
            )

        await rig.call(body)
        await rig.result()
        # the rig's exit asserts no channel, bridge, port or pacer stream is left


def _closing_soon(sb: Sandbox) -> VoxtraApp:
    """An app on ``sb`` that retries refused requests for ~20 s but closes after 0.5 s of grace."""
    return VoxtraApp(
        sb.ari_url, sb.user, sb.password, retry_initial=0.5, retry_max=2.0, handler_grace=0.5
    )


async def test_close_does_not_wait_out_a_teardown_asterisk_keeps_refusing() -> None:
    async with Sandbox(port=0, preload_sounds=False) as sb:
        app = _closing_soon(sb)
        bridged: list[str] = []

        @app.default()
        async def handler(call: CallSession) -> None:
            await call.answer()
            leg = await app.originate("PJSIP/operator", timeout=5, owner=call)
            bridged.append(await call.bridge_with(leg))
            await call.wait_ended()

        await app.start()
        sim = await sb.place_call(to="100")
        await until(lambda: bool(bridged), 10, "bridged")
        sb.faults.fail_next_requests(10**6, 503, method="DELETE", path="^/bridges/")
        await sim.hangup()  # the bridge's teardown now fails for ever (retried ~20 s)
        await until(lambda: not app.sessions, 10, "calls ended")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.wait_for(app.close(), 15)
        assert loop.time() - t0 < 5
        sb.faults.clear()


async def test_hangup_asterisk_accepts_but_never_clears_ends_the_session_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """DELETE answered 204 while the channel stays (GET 200, no StasisEnd): the hang-up looped
    DELETE / wait / GET for ever and the session never left the registry (a hung call)."""
    async with Sandbox(port=0, preload_sounds=False) as sb:
        app = VoxtraApp(sb.ari_url, sb.user, sb.password, event_wait=0.1, retry_initial=0.05)
        hung_up: list[str] = []

        @app.default()
        async def handler(call: CallSession) -> None:
            await call.answer()
            # the sandbox accepts every DELETE of this channel and keeps it
            sb.faults.fail_next_requests(10**6, 204, method="DELETE", path=f"^/channels/{call.id}$")
            await asyncio.wait_for(call.hangup(), 10)
            hung_up.append(call.id)

        await app.start()
        try:
            sim = await sb.place_call(to="100")
            await until(lambda: bool(hung_up), 15, "hangup returned")
            cid = hung_up[0]
            assert cid not in app.sessions
            assert cid in sb.pbx.channels  # Asterisk's to clear: voxflow did not pretend
            deletes = [p for m, p in sb.rest_api.http_log if m == "DELETE" and cid in p]
            assert len(deletes) == 3, deletes
            warned = [r for r in caplog.records if "accepted hang-ups" in r.getMessage()]
            assert len(warned) == 1 and cid in warned[0].getMessage()
        finally:
            sb.faults.clear()
            await app.close()
        await sim.hangup()
        await until(lambda: not sb.pbx.channels, 10, "channel gone")


async def test_close_cancelling_a_refused_media_teardown_still_closes_the_rtp_socket() -> None:
    # CI failure: a media teardown still retrying its DELETEs when the app closed was cancelled
    # before it reached the socket, and the RTP socket was left open (a ResourceWarning).
    async with Sandbox(port=0, preload_sounds=False) as sb:
        app = _closing_soon(sb)
        voices: list[CallMedia] = []

        @app.default()
        async def handler(call: CallSession) -> None:
            await call.answer()
            await call.send_audio(b"\x00\x00" * 160)
            assert isinstance(call._voice, CallMedia)
            voices.append(call._voice)
            await call.wait_ended()

        await app.start()
        sim = await sb.place_call(to="100")
        await until(lambda: bool(voices), 10, "media up")
        sb.faults.fail_next_requests(10**6, 503, method="DELETE", path="^/(bridges|channels)/vf-")
        await sim.hangup()  # the media teardown now fails for ever (retried ~20 s)
        ended = lambda: all(s.ended for s in app.sessions.values())  # noqa: E731 - one use
        await until(ended, 10, "calls ended")
        await asyncio.wait_for(app.close(), 15)
        sb.faults.clear()
        socket = voices[0].socket
        assert socket is not None and socket.closed


async def test_hangup_answered_later_than_the_deadline_ends_once_asterisk_is_heard() -> None:
    """An overloaded Asterisk serves each DELETE but answers after the client's deadline, and
    no StasisEnd comes (events held back): every DELETE timed out, its 404 included, and the
    hang-up was sent again for ever (a hung call). A DELETE that timed out now goes again with
    twice the deadline, so the second one hears the 404 and the session ends."""
    async with Sandbox(port=0, preload_sounds=False) as sb:
        app = VoxtraApp(
            sb.ari_url, sb.user, sb.password, request_timeout=0.3, event_wait=0.1,
            retry_initial=0.05,
        )  # fmt: skip
        hung_up: list[str] = []

        @app.default()
        async def handler(call: CallSession) -> None:
            await call.answer()
            sb.faults.slow_requests(0.5, method="DELETE", path=f"^/channels/{call.id}$")
            sb.faults.stall_events(20)  # no StasisEnd: only the REST answer can tell
            await asyncio.wait_for(call.hangup(), 10)
            hung_up.append(call.id)

        await app.start()
        try:
            sim = await sb.place_call(to="100")
            await until(lambda: bool(hung_up), 15, "hangup returned")
            cid = hung_up[0]
            assert cid not in app.sessions and cid not in sb.pbx.channels
            deletes = [p for m, p in sb.rest_api.http_log if m == "DELETE" and cid in p]
            assert len(deletes) == 2, deletes  # served, timed out; then its 404 heard
            assert await sim.wait_hangup(5) == 16
        finally:
            sb.faults.clear()
            await app.close()
