"""An overloaded Asterisk answers requests after the client's deadline: a request whose repeat
cannot act twice goes again (Asterisk answering an Up channel changes nothing: ast_raw_answer),
so no call is failed for something that did not fail."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from _leaks_kit import clean, serving_text, until

from voxflow.errors import AriTimeoutError
from voxflow.runtime.events import End
from voxflow.sandbox import QueueAgent, Sandbox
from voxflow.telephony.app import VoxtraApp
from voxflow.telephony.session import CallSession

ANSWER_FLOW = """\
flow slowanswer "answer then hang up":
    answers "100"

state start:
    answer
    hangup "done"
"""


def _answers(sb: Sandbox, cid: str) -> list[str]:
    return [p for m, p in sb.rest_api.http_log if m == "POST" and p.endswith(f"{cid}/answer")]


async def test_answer_answered_later_than_the_deadline_does_not_fail_the_flow(
    tmp_path: Path,
) -> None:
    """The answer is served (the channel is Up, its ChannelStateChange sent) but its 204 comes
    after the client's deadline: the flow failed although the call was answered."""
    app = {"request_timeout": 0.3}
    async with serving_text(tmp_path, ANSWER_FLOW, app=app) as s:
        s.sb.faults.slow_requests(0.5, method="POST", path="/answer$")
        sim = await s.sb.place_call(from_="+15550100", to="100", app="voxflow")
        await until(lambda: s.server.results.total == 1 and clean(s), 15, "call done")
        assert list(s.server.results.values()) == [End("completed", "done")]
        assert await sim.wait_hangup(5) == 16


async def test_answer_that_timed_out_goes_again_and_hears_the_204() -> None:
    """No event says the channel is Up (events held back) and every 204 comes after the
    client's deadline: the answer raised. It now goes again with twice the deadline, and
    Asterisk answers the repeat on an Up channel with 204 (nothing done twice)."""
    async with Sandbox(port=0, preload_sounds=False) as sb:
        app = VoxtraApp(sb.ari_url, sb.user, sb.password, request_timeout=0.3, event_wait=0.1)
        answered: list[str] = []

        @app.default()
        async def handler(call: CallSession) -> None:
            sb.faults.slow_requests(0.5, method="POST", path=f"^/channels/{call.id}/answer$")
            sb.faults.stall_events(20)  # no ChannelStateChange: only the REST answer can tell
            await asyncio.wait_for(call.answer(), 10)
            answered.append(call.id)
            sb.faults.clear()
            await call.hangup()

        await app.start()
        try:
            sim = await sb.place_call(to="100")
            await until(lambda: bool(answered), 15, "answer returned")
            cid = answered[0]
            assert len(_answers(sb, cid)) == 2  # served, timed out; then its repeat heard
            assert await sim.wait_hangup(5) == 16
            await until(lambda: cid not in app.sessions, 5, "session ended")
        finally:
            sb.faults.clear()
            await app.close()


WAIT_FLOW = """\
flow waiting "answer and stay":
    answers "100"

state start:
    answer
    pause 30s
    hangup "done"
"""


async def test_calls_that_entered_stasis_during_timed_out_handshakes_are_answered_on_reconnect(
    tmp_path: Path,
) -> None:
    """The events socket drops and every handshake is then served later than the client's
    deadline (the app registered at once, the 101 late): the client retried with the same
    deadline for ever and calls entering Stasis meanwhile (their StasisStart sent on sockets
    it gave up) rang for ever. A handshake that timed out now goes again with twice the
    deadline, the socket comes back, and each call is answered by the flow within a bound."""
    app = {"request_timeout": 0.4, "reconnect_initial": 0.05, "reconnect_max": 0.1}
    async with serving_text(tmp_path, WAIT_FLOW, app=app) as s:
        sb, stream = s.sb, s.app._events
        connects = stream.connects
        sb.faults.slow_handshakes(1000, 0.8)
        sb.faults.drop_events_socket("voxflow")
        calls = []
        for left in (999, 998):  # a call in each late handshake's window

            def registered(left: int = left) -> bool:
                return sb.faults.slow_handshakes_left == left and sb.pbx.app_active("voxflow")

            await until(registered, 5, "a late handshake registered")
            assert not stream.connected
            calls.append(await sb.place_call(from_="+15550100", to="100", wait_app=0))
        await until(lambda: stream.connects > connects and stream.connected, 15, "reconnected")
        for sim in calls:
            await sim.wait_answered(3.0)  # the bound after the reconnect
        assert sorted(s.app.sessions) == sorted(c.id for c in calls)


async def test_a_call_whose_stasis_start_was_lost_is_adopted_when_the_listings_answer_late(
    tmp_path: Path,
) -> None:
    """A call's StasisStart went to a handshake the client gave up; once reconnected, the sweep
    lists the app's channels, but every GET is answered after the client's deadline: the sweep
    was given up after 6 tries with the same deadline and the call rang until the next
    reconnect. A listing that timed out now goes again with twice the deadline."""
    app = {"request_timeout": 0.4, "reconnect_initial": 0.05, "reconnect_max": 0.1}
    async with serving_text(tmp_path, WAIT_FLOW, app=app) as s:
        sb, stream = s.sb, s.app._events
        sb.faults.slow_handshakes(1, 0.8)
        sb.faults.slow_requests(
            0.8, method="GET", path="^/(applications/voxflow|channels|bridges)$"
        )
        sb.faults.drop_events_socket("voxflow")
        await until(lambda: sb.pbx.app_active("voxflow") and not stream.connected, 5, "late")
        sim = await sb.place_call(from_="+15550100", to="100", wait_app=0)
        await until(lambda: stream.connected, 10, "reconnected")
        await sim.wait_answered(8.0)  # the bound after the reconnect
        assert list(s.app.sessions) == [sim.id]


QUEUE_FLOW = """\
flow slowvars "a queue whose variables are set late":
    answers "100"

state start:
    answer
    queue "desk" timeout 20s:
        on answered:
            hangup "answered"
        on timeout:
            hangup "timeout"
        on failed:
            hangup "failed"
"""


async def test_channel_variables_set_later_than_the_deadline_do_not_fail_the_queue(
    tmp_path: Path,
) -> None:
    """The queue's channel variables (POST /channels/{id}/variable) are set but answered after
    the client's deadline: the queue step failed. Setting a variable to the same value again
    changes nothing, so one that timed out now goes again with twice the deadline."""
    app = {"request_timeout": 0.4}
    async with serving_text(tmp_path, QUEUE_FLOW, app=app) as s:
        s.sb.add_queue("desk", [QueueAgent("ann", answer_after=0.2, talk=0.2)])
        s.sb.faults.slow_requests(0.5, method="POST", path="/variable$")
        await s.sb.place_call(from_="+15550100", to="100", app="voxflow")
        await until(lambda: s.server.results.total == 1, 30, "call done")
        assert list(s.server.results.values()) == [End("completed", "answered")]


DIAL_FLOW = """\
flow slowdial "a dial whose originate is answered late":
    answers "100"

state start:
    answer
    dial "PJSIP/operator" timeout 10s:
        on answered:
            hangup "answered"
        on busy, noanswer, failed:
            hangup "failed"
"""


async def test_an_originate_answered_later_than_the_deadline_is_the_leg_that_rings(
    tmp_path: Path,
) -> None:
    """The originate (POST /channels, the id voxflow chose) is served, so the leg rings, but its
    200 comes after the client's deadline: the dial failed and the leg it had dialled was left
    to ring, answer and sit in Stasis with no session. The leg is now followed by its events
    (not dialled again: that would ring twice), answers, and the dial is answered."""
    app = {"request_timeout": 0.4}
    async with serving_text(tmp_path, DIAL_FLOW, sandbox={"answer_delay": 0.2}, app=app) as s:
        s.sb.faults.slow_requests(0.8, method="POST", path="^/channels$")
        sim = await s.sb.place_call(from_="+15550100", to="100", app="voxflow")
        far = await s.sb.next_outbound(10)
        await sim.wait_for("bridge", 20)  # the leg answered and was bridged with the caller
        await far.hangup()  # the operator hangs up: the flow goes on "on answered"
        await until(lambda: s.server.results.total == 1, 20, "call done")
        assert list(s.server.results.values()) == [End("completed", "answered")]
        originates = [p for m, p in s.sb.rest_api.http_log if m == "POST" and p == "/channels"]
        assert len(originates) == 1
        await until(lambda: clean(s), 10, "nothing left")


async def test_an_originate_that_timed_out_and_is_never_heard_of_fails_as_unavailable() -> None:
    """The originate timed out and no event about the leg comes within the dial's timeout
    (events held back): the leg fails as unavailable, not "no answer" (nothing says it rang),
    and is hung up: nothing is left behind."""
    async with Sandbox(port=0, preload_sounds=False, answer_delay=5) as sb:
        app = VoxtraApp(sb.ari_url, sb.user, sb.password, request_timeout=0.4, event_wait=0.5)
        legs: list[CallSession] = []

        @app.default()
        async def handler(call: CallSession) -> None:
            await call.answer()
            sb.faults.slow_requests(0.8, method="POST", path="^/channels$")
            sb.faults.stall_events(6)  # nothing about the leg until the dial gave up
            legs.append(await app.originate("PJSIP/operator", timeout=2, owner=call))
            sb.faults.clear()
            await call.hangup()

        await app.start()
        try:
            sim = await sb.place_call(to="100")
            await until(lambda: bool(legs), 20, "originate returned")
            assert legs[0].failure_reason is not None
            assert legs[0].failure_reason.startswith("unavailable"), legs[0].failure_reason
            await sim.wait_hangup(10)
            await until(lambda: not sb.pbx.channels and not app.sessions, 10, "nothing left")
        finally:
            sb.faults.clear()
            await app.close()


PLAY_FLOW = """\
flow slowplay "a prompt whose request is answered late":
    answers "100"

state start:
    answer
    play "beep"
    hangup "done"
"""


async def test_a_play_answered_later_than_the_deadline_plays_once_and_the_flow_goes_on(
    tmp_path: Path,
) -> None:
    """The play (POST /channels/{id}/play, the playback id voxflow chose) is served, so the
    prompt plays, but its 201 comes after the client's deadline: the flow failed. It is not
    sent again (Asterisk would play it twice): the playback is followed by its events."""
    app = {"request_timeout": 0.4}
    async with serving_text(tmp_path, PLAY_FLOW, app=app) as s:
        s.sb.faults.slow_requests(0.8, method="POST", path="/play$")
        sim = await s.sb.place_call(from_="+15550100", to="100", app="voxflow")
        await until(lambda: s.server.results.total == 1, 20, "call done")
        assert list(s.server.results.values()) == [End("completed", "done")]
        plays = [p for m, p in s.sb.rest_api.http_log if m == "POST" and p.endswith("/play")]
        assert len(plays) == 1
        assert await sim.wait_hangup(5) == 16


async def test_a_first_handshake_answered_late_at_start_goes_again() -> None:
    """start()'s handshake is served (the app registered, so a call enters Stasis) but its 101
    comes after the deadline: start() raised AriTimeoutError and the worker never came up. It
    now goes again with twice the deadline, and the call whose StasisStart went to the
    handshake given up is adopted by the start-up sweep and answered."""
    async with Sandbox(port=0, preload_sounds=False) as sb:
        app = VoxtraApp(sb.ari_url, sb.user, sb.password, request_timeout=0.4)

        @app.default()
        async def handler(call: CallSession) -> None:
            await call.answer()
            await call.wait_ended(30)

        sb.faults.slow_handshakes(1, 0.8)
        starting = asyncio.ensure_future(app.start())
        try:
            await until(lambda: sb.faults.slow_handshakes_left == 0, 5, "the late handshake")
            await until(lambda: sb.pbx.app_active("voxflow"), 5, "the app registered")
            sim = await sb.place_call(from_="+15550100", to="100", wait_app=0)
            await asyncio.wait_for(starting, 10)
            assert app.connected
            await sim.wait_answered(5.0)
            assert list(app.sessions) == [sim.id]
        finally:
            starting.cancel()
            sb.faults.clear()
            await app.close()


async def test_start_gives_up_on_handshakes_never_answered_in_time_with_a_clear_error() -> None:
    """Every handshake is answered later than the deadlines: start() tries three times
    (the deadline, twice and four times it) and raises an AriTimeoutError that says so."""
    async with Sandbox(port=0, preload_sounds=False) as sb:
        app = VoxtraApp(sb.ari_url, sb.user, sb.password, request_timeout=0.5)
        sb.faults.slow_handshakes(10, 9.0)
        try:
            with pytest.raises(AriTimeoutError) as info:
                await app.start()
            assert sb.faults.slow_handshakes_left >= 7  # (a try lost to load never got there)
            message = str(info.value)
            assert "events websocket handshake" in message
            assert "(3 tries, 0.5 + 1 + 2 s)" in message
            assert not app.connected
        finally:
            sb.faults.clear()
            await app.close()


async def test_a_dial_whose_bridge_is_answered_late_is_bridged(tmp_path: Path) -> None:
    """The call bridge (POST /bridges, POST /bridges/{id}/addChannel) is served but answered
    after the deadline: the dial failed ('could not bridge') and the answered leg was hung up."""
    app = {"request_timeout": 0.4}
    async with serving_text(tmp_path, DIAL_FLOW, sandbox={"answer_delay": 0.2}, app=app) as s:
        s.sb.faults.slow_requests(0.6, method="POST", path="^/bridges")
        sim = await s.sb.place_call(from_="+15550100", to="100", app="voxflow")
        far = await s.sb.next_outbound(10)
        await sim.wait_for("bridge", 20)
        # the dial has its answers (the operator hanging up before makes the bridging fail)
        await until(lambda: bool(s.app.sessions[sim.id]._shared_bridge), 10, "bridged")
        await far.hangup()
        await until(lambda: s.server.results.total == 1, 20, "call done")
        assert list(s.server.results.values()) == [End("completed", "answered")]
        bridges = [p for m, p in s.sb.rest_api.http_log if m == "POST" and p == "/bridges"]
        assert len(bridges) == 2  # served late; its repeat refused (409) and read back as ours
        await until(lambda: clean(s), 10, "nothing left")
