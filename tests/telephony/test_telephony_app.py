"""VoxtraApp + CallSession against the embedded sandbox (voxflow.sandbox), over real ARI bytes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from vf_sandbox_util import (
    LONG,
    SHORT,
    WAIT,
    RequestLog,
    make_app,
    sandbox_fixture,
    tone,
    until,
)

from voxflow.errors import (
    ApplicationReplacedError,
    AriUnauthorized,
    CallEndedError,
    ConfigError,
    PlaybackFailedError,
    RecordingError,
)
from voxflow.sandbox import Sandbox, SimCall
from voxflow.telephony.app import VoxtraApp
from voxflow.telephony.recording import CallbackSink, LocalDirectorySink, RecordingMetadata
from voxflow.telephony.session import CallSession
from voxflow.telephony.state import CallDirection, CallState
from voxflow.voice.call import BargeIn


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async for s in sandbox_fixture():
        yield s


async def run_call(
    sb: Sandbox,
    app: VoxtraApp,
    handler: Callable[[CallSession], Awaitable[Any]],
    to: str = "100",
) -> tuple[CallSession, SimCall]:
    seen: list[CallSession] = []

    @app.default()
    async def _h(call: CallSession) -> None:
        seen.append(call)
        await handler(call)

    sim = await sb.place_call(to=to)
    await until(lambda: bool(seen))
    return seen[0], sim


def kinds(sim: SimCall, kind: str) -> list[dict[str, Any]]:
    return [e for e in sim.experience() if e["type"] == kind]


async def test_inbound_call_answer_play_dtmf_hangup(sb: Sandbox) -> None:
    results: dict[str, Any] = {}
    hangups: list[str] = []
    app = make_app(sb)
    log = RequestLog(app)

    @app.route(number="100", metadata={"team": "support"})
    async def handle(call: CallSession) -> None:
        @call.on_hangup
        async def done() -> None:
            hangups.append(call.id)

        results["state0"] = call.state
        await call.answer()
        results["state1"] = call.state
        results["play"] = await call.play_file(SHORT)
        results["digit"] = await call.listen_dtmf(timeout=WAIT)
        results["none"] = await call.listen_dtmf(timeout=0.05)
        await call.send_dtmf("12#", duration_ms=40, between_ms=40)
        await until(lambda: len(kinds(sim, "dtmf")) == 3)
        results["duration"] = call.duration
        await call.hangup()
        await call.hangup()  # idempotent
        results["state2"] = call.state

    async with app:
        sim = await sb.place_call(to="100")
        await until(lambda: "play" in results)
        await sim.press("7")
        await until(lambda: "state2" in results)
        await until(lambda: not app.sessions and hangups == [sim.id])
    assert results["state0"] is CallState.RINGING
    assert results["state1"] is CallState.IN_PROGRESS
    assert results["state2"] is CallState.COMPLETED
    assert results["play"].interrupted is False
    assert (results["digit"], results["none"]) == ("7", None)
    assert results["duration"] > 0
    assert len(log.find("DELETE", f"/channels/{sim.id}")) == 1
    assert [e["digit"] for e in kinds(sim, "dtmf")] == ["1", "2", "#"]
    assert [e["type"] for e in sim.experience() if e["type"] in ("answered", "hangup")] == [
        "answered",
        "hangup",
    ]
    assert sim.hangup_by == "pbx" and app.removed == 1


async def test_route_metadata_and_identity(sb: Sandbox) -> None:
    app = make_app(sb)
    got: list[CallSession] = []

    @app.route(number=["200", "201"], metadata={"queue": "sales"})
    async def sales(call: CallSession) -> None:
        got.append(call)
        call.metadata.update_for_webhook(customer="c-1")
        call.metadata["private"] = 1
        await call.hangup()

    async with app:
        sim = await sb.place_call(to="201", from_="+15550001")
        await until(lambda: bool(got) and not app.sessions)
    call = got[0]
    assert (call.id, call.caller_id, call.called_number) == (sim.id, "+15550001", "201")
    assert call.direction is CallDirection.INBOUND
    assert call.metadata["queue"] == "sales"
    assert call.metadata.for_webhook() == {"customer": "c-1"}


async def test_handler_returning_or_raising_gets_call_hung_up(
    sb: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(sb)
    log = RequestLog(app)
    calls: list[CallSession] = []

    @app.route(number="1")
    async def quiet(call: CallSession) -> None:
        calls.append(call)
        await call.answer()

    @app.route(number="2")
    async def broken(call: CallSession) -> None:
        calls.append(call)
        raise ValueError("boom in handler")

    async with app:
        c1 = await sb.place_call(to="1")
        c2 = await sb.place_call(to="2")
        await until(lambda: len(calls) == 2 and not app.sessions)
        await c1.wait_hangup(WAIT)
        await c2.wait_hangup(WAIT)
    assert all(c.state is CallState.COMPLETED for c in calls)
    assert (c1.hangup_by, c2.hangup_by) == ("pbx", "pbx")
    assert len(log.find("DELETE", f"/channels/{c1.id}")) == 1
    assert len(log.find("DELETE", f"/channels/{c2.id}")) == 1
    assert f"handler for call {c2.id} raised" in caplog.text
    assert "boom in handler" in caplog.text


async def test_no_handler_hangs_up(sb: Sandbox) -> None:
    app = make_app(sb)
    async with app:
        sim = await sb.place_call(to="999")
        assert await sim.wait_hangup(WAIT) == 16
        await until(lambda: not app.sessions)
    assert sim.hangup_by == "pbx" and not kinds(sim, "answered")


async def test_playback_failures_and_play_before_answer(sb: Sandbox) -> None:
    app = make_app(sb, playback_poll=0.1)
    errors: list[BaseException] = []

    async def handler(call: CallSession) -> None:
        play = asyncio.ensure_future(call.play_file(SHORT))
        await asyncio.sleep(0.05)
        assert not play.done()  # waits for the answer
        await call.answer()
        await play
        for media in ("this-does-not-exist", "bogus:xyz"):
            try:
                await call.play_file(media)
            except PlaybackFailedError as exc:
                errors.append(exc)
        await call.hangup()

    async with app:
        call, sim = await run_call(sb, app, handler)
        await until(lambda: call.ended and not app.sessions)
    assert len(errors) == 2
    played = kinds(sim, "playback")
    assert {"uri": f"sound:{SHORT}", "state": "done"}.items() <= played[1].items()
    assert any(e["uri"] == "sound:this-does-not-exist" and e["state"] == "failed" for e in played)


async def test_a_playback_gone_before_its_finished_event_arrives_did_not_fail(
    sb: Sandbox,
) -> None:
    """A loaded host: the 0.1 s tone is over and gone from ARI (404) when the poll asks, its
    PlaybackFinished still on the events socket: the prompt played (it failed the flow's step
    before: tests/cluster/test_cluster_load.py at load 24)."""
    app = make_app(sb, playback_poll=1.0)
    results: list[Any] = []

    async def handler(call: CallSession) -> None:
        await call.answer()
        sb.faults.stall_events(1.5)  # the poll at 1.0 s finds it gone; the event comes at 1.5 s
        results.append(await call.play_file(SHORT))
        await call.hangup()

    async with app:
        call, sim = await run_call(sb, app, handler)
        await until(lambda: call.ended and not app.sessions, 15)
    assert [r.interrupted for r in results] == [False]
    played = kinds(sim, "playback")
    assert any(e["uri"] == f"sound:{SHORT}" and e["state"] == "done" for e in played)


async def test_dtmf_barge_in_stops_playback_and_keeps_digit(sb: Sandbox) -> None:
    app = make_app(sb)
    log = RequestLog(app)
    out: dict[str, Any] = {}

    async def handler(call: CallSession) -> None:
        await call.answer()
        out["result"] = await call.play_file(LONG, barge_in=BargeIn("dtmf"))
        out["digit"] = await call.listen_dtmf(1)

    async with app:
        _, sim = await run_call(sb, app, handler)
        await sim.wait_for("playback", WAIT, state="playing")
        await sim.press("5")
        await until(lambda: "digit" in out and not app.sessions)
    assert out["result"].interrupted and out["result"].by == "dtmf"
    assert out["result"].digit == "5" and out["digit"] == "5"
    assert len(log.paths("DELETE", "/playbacks/")) == 1
    done = [e for e in kinds(sim, "playback") if e["state"] == "done"]
    assert len(done) == 1 and done[0]["t"] < 10  # stopped long before its 30 s end


async def test_caller_hangup_during_playback_raises_call_ended(sb: Sandbox) -> None:
    app = make_app(sb)
    log = RequestLog(app)
    out: list[BaseException] = []
    fired: list[int] = []

    async def handler(call: CallSession) -> None:
        call.on_hangup(lambda: fired.append(1))
        await call.answer()
        try:
            await call.play_file(LONG)
        except CallEndedError as exc:
            out.append(exc)
            raise

    async with app:
        call, sim = await run_call(sb, app, handler)
        await sim.wait_for("playback", WAIT, state="playing")
        await sim.hangup()
        await until(lambda: bool(out) and not app.sessions)
    assert fired == [1]
    assert not log.find("DELETE", f"/channels/{sim.id}")  # already gone: no extra hangup
    with pytest.raises(CallEndedError):
        await call.listen_dtmf(0.1)


async def test_transfer_and_queue_continue_into_contexts(sb: Sandbox) -> None:
    """Custom contexts are honoured; contexts that do not exist drop the call, as Asterisk
    does (continue-outcomes.json d): the session ends, the framework sends no hangup."""
    app = make_app(sb, transfer_context="xfer", queue_context="queues")
    log = RequestLog(app)
    errors: list[BaseException] = []

    @app.route(number="1")
    async def t(call: CallSession) -> None:
        await call.answer()
        try:
            await call.transfer_to("+265999")
        except CallEndedError as exc:
            errors.append(exc)

    @app.route(number="2")
    async def q(call: CallSession) -> None:
        try:
            await call.transfer_to_queue("support-queue")
        except CallEndedError as exc:
            errors.append(exc)

    async with app:
        c1 = await sb.place_call(to="1")
        c2 = await sb.place_call(to="2")
        await c1.wait_for("continue", WAIT)
        await c2.wait_for("continue", WAIT)
        await until(lambda: not app.sessions and len(errors) == 2)
        assert c2.channel is not None and c2.channel.variables["VOXFLOW_QUEUE"] == "support-queue"
    cont1, cont2 = kinds(c1, "continue")[0], kinds(c2, "continue")[0]
    assert (cont1["context"], cont1["exten"], cont1["priority"]) == ("xfer", "+265999", 1)
    assert (cont2["context"], cont2["exten"]) == ("queues", "queue")
    assert c1.hangup_cause == 0 and c2.hangup_cause == 0  # ChannelDestroyed "Unknown"
    assert not log.find("DELETE", f"/channels/{c1.id}")
    assert not log.find("DELETE", f"/channels/{c2.id}")
    with pytest.raises(ValueError):
        await CallSession.transfer_to_queue(None, "bad name")  # type: ignore[arg-type]


async def test_redirect_for_same_technology(sb: Sandbox) -> None:
    app = make_app(sb)

    async def handler(call: CallSession) -> None:
        await call.answer()
        await call.transfer_to("PJSIP/bob")

    async with app:
        call, sim = await run_call(sb, app, handler)
        got = await sim.wait_for("redirect", WAIT)
        await until(lambda: not app.sessions)
    assert got["endpoint"] == "PJSIP/bob" and call.state is CallState.COMPLETED


async def test_hold_and_unhold_play_music_on_hold(sb: Sandbox) -> None:
    app = make_app(sb)
    states: list[CallState] = []
    proceed = asyncio.Event()

    async def handler(call: CallSession) -> None:
        early = asyncio.ensure_future(call.hold())
        await asyncio.sleep(0.1)
        assert not early.done()  # hold waits for the answer
        await call.answer()
        await early
        states.append(call.state)
        await proceed.wait()
        await call.unhold()
        states.append(call.state)
        await call.unhold()  # off hold already: harmless
        await call.hangup()
        await call.hold()  # after the end: no error, state stays COMPLETED
        states.append(call.state)

    async with app:
        call, sim = await run_call(sb, app, handler)
        await sim.wait_for("moh", WAIT, state="started")
        assert call.channel is not None and sb.pbx.channels[sim.id].moh == "default"
        proceed.set()
        await sim.wait_for("moh", WAIT, state="stopped")
        await until(lambda: not app.sessions and len(states) == 3)
    assert states == [CallState.ON_HOLD, CallState.IN_PROGRESS, CallState.COMPLETED]
    moh = [e["type"] for e in sim.experience() if e["type"] in ("answered", "moh")]
    assert moh == ["answered", "moh", "moh"]


async def test_bridge_with_and_teardown_when_one_leaves(sb: Sandbox) -> None:
    app = make_app(sb)
    calls: dict[str, CallSession] = {}
    bridged = asyncio.Event()

    @app.route(number="1")
    async def first(call: CallSession) -> None:
        calls["a"] = call
        await call.answer()
        await until(lambda: "b" in calls)
        await call.bridge_with(calls["b"])
        bridged.set()
        await call.wait_ended()

    @app.route(number="2")
    async def second(call: CallSession) -> None:
        calls["b"] = call
        await call.answer()
        await call.wait_ended(WAIT)

    async with app:
        a = await sb.place_call(to="1")
        b = await sb.place_call(to="2")
        await asyncio.wait_for(bridged.wait(), WAIT)
        bid = calls["a"].bridge_id
        assert bid is not None and {c.id for c in sb.pbx.bridges[bid].members} == {a.id, b.id}
        assert (await b.wait_for("bridge", WAIT, bridge=bid))["partners"]
        await a.hangup()
        await until(lambda: bid not in sb.pbx.bridges)
        await until(lambda: calls["b"].bridge_id is None)
        assert not calls["b"].ended
        await b.hangup()
        await until(lambda: not app.sessions)


async def test_recording_sink_called_once_on_stop_and_at_hangup(
    sb: Sandbox, tmp_path: Path
) -> None:
    delivered: list[RecordingMetadata] = []
    app = make_app(sb, recording_sink=CallbackSink(delivered.append))
    out: dict[str, Any] = {}

    @app.route(number="1")
    async def stop_explicitly(call: CallSession) -> None:
        await call.answer()
        name = await call.record_start(sink=LocalDirectorySink(tmp_path))
        await asyncio.sleep(0.3)
        meta = await call.record_stop()
        out["meta"] = meta
        out["name"] = name
        with pytest.raises(RecordingError):
            await call.record_stop()
        with pytest.raises(ValueError):
            await call.record_start("../etc/passwd")

    @app.route(number="2")
    async def hang_up_while_recording(call: CallSession) -> None:
        await call.answer()
        out["auto"] = await call.record_start("keep-me")
        await call.wait_ended()

    async with app:
        c1 = await sb.place_call(to="1")
        await until(lambda: "auto" not in out and c1.state == "up")
        say = asyncio.ensure_future(c1.say_audio(b"\x00\x10" * 4000, label="hum"))
        await until(lambda: "meta" in out)
        say.cancel()
        c2 = await sb.place_call(to="2")
        await until(lambda: "auto" in out)
        await c2.hangup()
        await until(lambda: not app.sessions and len(delivered) == 1)
    meta = out["meta"]
    assert meta.location == str(tmp_path / f"{out['name']}.wav")
    data = await asyncio.to_thread(Path(meta.location).read_bytes)
    assert data.startswith(b"RIFF") and meta.size == len(data) and len(data) > 44
    assert [d.name for d in delivered] == ["keep-me"]  # app-level sink, exactly once


async def test_originate_answered_busy_noanswer_and_bad_tech(sb: Sandbox) -> None:
    app = make_app(sb)
    async with app:
        ok = await app.originate("PJSIP/alice", caller_id="+1555", timeout=5)
        assert ok.direction is CallDirection.OUTBOUND
        assert ok.state is CallState.IN_PROGRESS and ok.id in app.sessions
        far = await sb.next_outbound(WAIT)
        assert far.id == ok.id and far.to == "alice"
        await ok.play_file(SHORT)
        await ok.hangup()
        busy = await app.originate("PJSIP/busy", timeout=5)
        noans = await app.originate("PJSIP/noanswer", timeout=1)
        cong = await app.originate("PJSIP/congestion", timeout=5)
        bogus = await app.originate("Bogus/1", timeout=5)
        await until(lambda: not app.sessions)
    assert (busy.state, busy.failure_reason) == (CallState.FAILED, "busy")
    assert (noans.state, noans.failure_reason) == (CallState.FAILED, "no answer")
    assert cong.failure_reason == "congestion"
    assert bogus.state is CallState.FAILED and "Allocation failed" in str(bogus.failure_reason)
    assert ok.state is CallState.COMPLETED
    assert far.hangup_by == "pbx" and kinds(far, "playback")


async def test_reconnect_resyncs_calls(sb: Sandbox) -> None:
    app = make_app(sb)
    fired: list[str] = []
    calls: list[CallSession] = []

    @app.default()
    async def handler(call: CallSession) -> None:
        calls.append(call)
        call.on_hangup(lambda: fired.append(call.id))
        await call.answer()
        await call.wait_ended()

    async with app:
        a = await sb.place_call(to="1")
        b = await sb.place_call(to="2")
        await until(lambda: len(calls) == 2)
        connects = app.events.connects
        assert sb.faults.drop_events_socket("voxflow")
        await a.hangup()  # its StasisEnd is lost with the socket
        await until(lambda: app.events.connects > connects and app.connected)
        await until(lambda: fired == [a.id])
        survivor = app.sessions[b.id]
        assert survivor.state is CallState.IN_PROGRESS
        await survivor.play_file(SHORT)
        await b.hangup()
        await until(lambda: not app.sessions)
    assert sorted(fired) == sorted([a.id, b.id])


async def test_malformed_events_are_skipped(sb: Sandbox) -> None:
    app = make_app(sb)
    got: list[CallSession] = []

    @app.default()
    async def handler(call: CallSession) -> None:
        got.append(call)
        await call.hangup()

    async with app:
        assert sb.faults.send_malformed_event("voxflow", "invalid_json")
        assert sb.faults.send_malformed_event("voxflow", "unknown_type")
        assert sb.faults.send_malformed_event("voxflow", "no_type")
        await sb.place_call()
        await until(lambda: bool(got) and not app.sessions)
        parser = app.events.parser
        assert (parser.malformed, parser.unknown, parser.invalid) == (1, 1, 1)


async def test_ai_methods_without_pipeline(sb: Sandbox) -> None:
    app = make_app(sb)
    errors: list[str] = []

    async def handler(call: CallSession) -> None:
        await call.answer()
        for coro in (call.say("hi"), call.listen(1)):
            try:
                await coro
            except RuntimeError as exc:
                errors.append(str(exc))
        try:
            call.agent  # noqa: B018
        except RuntimeError as exc:
            errors.append(str(exc))

    async with app:
        await run_call(sb, app, handler)
        await until(lambda: len(errors) == 3)
    assert errors == ["AI pipeline not configured"] * 3


async def test_call_agent_comes_from_the_hook_the_agent_layer_registers(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Telephony never imports the agent: ``call.agent`` is the factory ``voxflow.agent``
    registers in ``telephony.agents`` (or the app's own); with neither, a clear error."""
    from voxflow.agent.call_agent import CallAgent
    from voxflow.ai.openai_llm import OpenAIChatModel
    from voxflow.telephony import agents

    llm = OpenAIChatModel(model="m", base_url="http://127.0.0.1:9/v1")
    got: list[object] = []

    async def handler(call: CallSession) -> None:
        try:
            got.append(call.agent)
        except ConfigError as exc:
            got.append(str(exc))

    try:
        async with make_app(sb, llm=llm) as app:
            await run_call(sb, app, handler)  # the registered factory: voxflow.agent's
            monkeypatch.setattr(agents, "_registered", [])
            await run_call(sb, app, handler)  # no agent layer loaded
            await until(lambda: len(got) == 2)
        async with make_app(sb, llm=llm, agent_factory=lambda call: "own agent") as app:
            await run_call(sb, app, handler)
            await until(lambda: len(got) == 3)
    finally:
        await llm.aclose()
    assert isinstance(got[0], CallAgent)
    assert got[1:] == [
        "call.agent: no agent layer loaded (import voxflow.agent, or pass "
        "VoxtraApp(agent_factory=...))",
        "own agent",
    ]


async def test_bad_credentials_and_application_replaced(
    sb: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = VoxtraApp(sb.ari_url, sb.user, "wrong-secret")
    with pytest.raises(AriUnauthorized):
        await bad.start()
    assert "wrong-secret" not in caplog.text and "wrong-secret" not in repr(bad)
    app = make_app(sb)
    serving = asyncio.ensure_future(app.serve())
    await until(lambda: app.connected)
    other = make_app(sb)
    await other.start()
    with pytest.raises(ApplicationReplacedError):
        await asyncio.wait_for(serving, WAIT)
    await other.close()


async def test_bridged_recording_ends_on_silence(sb: Sandbox) -> None:
    """A bridged call records the mix; max_silence reaches Asterisk for bridge recordings too,
    so the recording ends about that long after the caller stops making sound."""
    app = make_app(sb)
    log = RequestLog(app)
    calls: dict[str, CallSession] = {}
    out: dict[str, Any] = {}

    @app.route(number="1")
    async def first(call: CallSession) -> None:
        calls["a"] = call
        await call.answer()
        await until(lambda: "b" in calls)
        await call.bridge_with(calls["b"])
        out["name"] = await call.record_start(max_silence=1)
        out["started"] = asyncio.get_running_loop().time()
        await call.wait_recording()
        out["ended_after"] = asyncio.get_running_loop().time() - out["started"]
        out["meta"] = await call.record_stop()
        await call.hangup()

    @app.route(number="2")
    async def second(call: CallSession) -> None:
        calls["b"] = call
        await call.answer()
        await call.wait_ended(WAIT)

    async with app:
        a = await sb.place_call(to="1")
        b = await sb.place_call(to="2")
        await until(lambda: "name" in out)
        await a.say_audio(tone(1.0), label="tone")  # then the line stays quiet
        await until(lambda: "meta" in out)
        await b.hangup()
        await until(lambda: not app.sessions)
    (params,) = log.find("POST", "/record")
    assert params["maxSilenceSeconds"] == 1
    assert out["ended_after"] < 6.0  # no max duration: only the silence limit ends it
    assert out["meta"].duration is not None and 0.5 <= out["meta"].duration <= 3.0


def test_request_timeout_bounds_the_events_handshake_too() -> None:
    """A slow Asterisk given ``request_timeout=60`` had its REST requests wait 60 s but its
    events (re)connects still gave up after 10 s: the soak at load ~12 saw every reconnect
    time out while the PBX had already registered the socket."""
    app = VoxtraApp("http://127.0.0.1:9/ari", "u", "p", request_timeout=60.0)
    assert app.rest.timeout == 60.0
    assert app.events.connect_timeout == 60.0
