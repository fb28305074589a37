"""VoxtraApp + CallSession against an ARI peer speaking real HTTP and websocket bytes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from vf_fake_asterisk import PASSWORD, USER, FakeAsterisk

from voxflow.errors import (
    ApplicationReplacedError,
    AriUnauthorized,
    CallEndedError,
    PlaybackFailedError,
    RecordingError,
)
from voxflow.telephony.app import VoxtraApp
from voxflow.telephony.recording import CallbackSink, LocalDirectorySink, RecordingMetadata
from voxflow.telephony.session import CallSession
from voxflow.telephony.state import CallDirection, CallState
from voxflow.telephony.voice import BargeIn

WAIT = 10.0


@pytest.fixture
async def fa() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk() as fake:
        yield fake


def make_app(fa: FakeAsterisk, **kw: Any) -> VoxtraApp:
    kw.setdefault("event_wait", 2.0)
    kw.setdefault("reconnect_initial", 0.05)
    kw.setdefault("reconnect_max", 0.2)
    return VoxtraApp(fa.ari_url, USER, PASSWORD, **kw)


async def until(cond: Callable[[], bool], timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while not cond():  # noqa: ASYNC110 - polling state that several sources change
            await asyncio.sleep(0.01)


def requests(fa: FakeAsterisk, method: str, suffix: str) -> list[dict[str, str]]:
    return [q for m, p, q in fa.requests if m == method and p.endswith(suffix)]


async def run_call(
    fa: FakeAsterisk,
    app: VoxtraApp,
    handler: Callable[[CallSession], Awaitable[Any]],
    to: str = "100",
) -> tuple[CallSession, str]:
    seen: list[CallSession] = []

    @app.default()
    async def _h(call: CallSession) -> None:
        seen.append(call)
        await handler(call)

    chan = await fa.place_call(to=to)
    await until(lambda: bool(seen))
    return seen[0], chan.id


async def test_inbound_call_answer_play_dtmf_hangup(fa: FakeAsterisk) -> None:
    results: dict[str, Any] = {}
    hangups: list[str] = []
    app = make_app(fa)

    @app.route(number="100", metadata={"team": "support"})
    async def handle(call: CallSession) -> None:
        @call.on_hangup
        async def done() -> None:
            hangups.append(call.id)

        results["state0"] = call.state
        await call.answer()
        results["state1"] = call.state
        results["play"] = await call.play_file("hello-world")
        results["digit"] = await call.listen_dtmf(timeout=WAIT)
        results["none"] = await call.listen_dtmf(timeout=0.05)
        await call.send_dtmf("12#")
        results["duration"] = call.duration
        await call.hangup()
        await call.hangup()  # idempotent
        results["state2"] = call.state

    async with app:
        chan = await fa.place_call(to="100")
        await until(lambda: "play" in results)
        await fa.press(chan.id, "7")
        await until(lambda: "state2" in results)
        await until(lambda: not app.sessions and hangups == [chan.id])
    assert results["state0"] is CallState.RINGING
    assert results["state1"] is CallState.IN_PROGRESS
    assert results["state2"] is CallState.COMPLETED
    assert results["play"].interrupted is False
    assert (results["digit"], results["none"]) == ("7", None)
    assert results["duration"] > 0
    assert len(requests(fa, "DELETE", f"/channels/{chan.id}")) == 1
    assert requests(fa, "POST", f"/channels/{chan.id}/dtmf")[0]["dtmf"] == "12#"
    assert app.removed == 1


async def test_route_metadata_and_identity(fa: FakeAsterisk) -> None:
    app = make_app(fa)
    got: list[CallSession] = []

    @app.route(number=["200", "201"], metadata={"queue": "sales"})
    async def sales(call: CallSession) -> None:
        got.append(call)
        call.metadata.update_for_webhook(customer="c-1")
        call.metadata["private"] = 1
        await call.hangup()

    async with app:
        chan = await fa.place_call(to="201", from_="+15550001")
        await until(lambda: bool(got) and not app.sessions)
    call = got[0]
    assert (call.id, call.caller_id, call.called_number) == (chan.id, "+15550001", "201")
    assert call.direction is CallDirection.INBOUND
    assert call.metadata["queue"] == "sales"
    assert call.metadata.for_webhook() == {"customer": "c-1"}


async def test_handler_returning_or_raising_gets_call_hung_up(
    fa: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(fa)
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
        c1 = await fa.place_call(to="1")
        c2 = await fa.place_call(to="2")
        await until(lambda: len(calls) == 2 and not app.sessions)
    assert all(c.state is CallState.COMPLETED for c in calls)
    assert requests(fa, "DELETE", f"/channels/{c1.id}")
    assert requests(fa, "DELETE", f"/channels/{c2.id}")
    assert f"handler for call {c2.id} raised" in caplog.text
    assert "boom in handler" in caplog.text


async def test_no_handler_hangs_up(fa: FakeAsterisk) -> None:
    app = make_app(fa)
    async with app:
        chan = await fa.place_call(to="999")
        await until(lambda: bool(requests(fa, "DELETE", f"/channels/{chan.id}")))
        await until(lambda: not app.sessions)


async def test_playback_failures_and_play_before_answer(fa: FakeAsterisk) -> None:
    app = make_app(fa, playback_poll=0.1)
    errors: list[BaseException] = []

    async def handler(call: CallSession) -> None:
        play = asyncio.ensure_future(call.play_file("hello-world"))
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
        call, _ = await run_call(fa, app, handler)
        await until(lambda: call.ended and not app.sessions)
    assert len(errors) == 2


async def test_dtmf_barge_in_stops_playback_and_keeps_digit(fa: FakeAsterisk) -> None:
    fa.play_seconds = 30
    app = make_app(fa)
    out: dict[str, Any] = {}

    async def handler(call: CallSession) -> None:
        await call.answer()
        out["result"] = await call.play_file("long-prompt", barge_in=BargeIn("dtmf"))
        out["digit"] = await call.listen_dtmf(1)

    async with app:
        _, cid = await run_call(fa, app, handler)
        await until(lambda: bool(fa.playbacks))
        await fa.press(cid, "5")
        await until(lambda: "digit" in out and not app.sessions)
    assert out["result"].interrupted and out["result"].by == "dtmf"
    assert out["result"].digit == "5" and out["digit"] == "5"
    assert any(m == "DELETE" and p.startswith("/playbacks/") for m, p, _ in fa.requests)


async def test_caller_hangup_during_playback_raises_call_ended(fa: FakeAsterisk) -> None:
    fa.play_seconds = 30
    app = make_app(fa)
    out: list[BaseException] = []
    fired: list[int] = []

    async def handler(call: CallSession) -> None:
        call.on_hangup(lambda: fired.append(1))
        await call.answer()
        try:
            await call.play_file("long")
        except CallEndedError as exc:
            out.append(exc)
            raise

    async with app:
        call, cid = await run_call(fa, app, handler)
        await until(lambda: bool(fa.playbacks))
        await fa.caller_hangup(cid)
        await until(lambda: bool(out) and not app.sessions)
    assert fired == [1]
    assert not requests(fa, "DELETE", f"/channels/{cid}")  # already gone: no extra hangup
    with pytest.raises(CallEndedError):
        await call.listen_dtmf(0.1)


async def test_transfer_and_queue_continue_into_contexts(fa: FakeAsterisk) -> None:
    app = make_app(fa, transfer_context="xfer", queue_context="queues")

    @app.route(number="1")
    async def t(call: CallSession) -> None:
        await call.answer()
        await call.transfer_to("+265999")

    @app.route(number="2")
    async def q(call: CallSession) -> None:
        await call.transfer_to_queue("support-queue")

    async with app:
        c1 = await fa.place_call(to="1")
        c2 = await fa.place_call(to="2")
        await until(lambda: c1.continued is not None and c2.continued is not None)
        await until(lambda: not app.sessions)
    assert c1.continued == ("xfer", "+265999")
    assert c2.continued == ("queues", "support-queue")
    assert c2.variables["VOXFLOW_QUEUE"] == "support-queue"
    # a transferred call is not hung up by the framework
    assert not requests(fa, "DELETE", f"/channels/{c1.id}")
    with pytest.raises(ValueError):
        await CallSession.transfer_to_queue(None, "bad name")  # type: ignore[arg-type]


async def test_bridge_with_and_teardown_when_one_leaves(fa: FakeAsterisk) -> None:
    app = make_app(fa)
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
        a = await fa.place_call(to="1")
        b = await fa.place_call(to="2")
        await asyncio.wait_for(bridged.wait(), WAIT)
        bid = calls["a"].bridge_id
        assert bid is not None and fa.bridges[bid] == {a.id, b.id}
        await fa.caller_hangup(a.id)
        await until(lambda: bid not in fa.bridges)
        assert calls["b"].bridge_id is None and not calls["b"].ended
        await fa.caller_hangup(b.id)
        await until(lambda: not app.sessions)


async def test_recording_sink_called_once_on_stop_and_at_hangup(
    fa: FakeAsterisk, tmp_path: Path
) -> None:
    delivered: list[RecordingMetadata] = []
    app = make_app(fa, recording_sink=CallbackSink(delivered.append))
    out: dict[str, Any] = {}

    @app.route(number="1")
    async def stop_explicitly(call: CallSession) -> None:
        await call.answer()
        name = await call.record_start(sink=LocalDirectorySink(tmp_path))
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
        await fa.place_call(to="1")
        await until(lambda: "meta" in out)
        c2 = await fa.place_call(to="2")
        await until(lambda: "auto" in out)
        await fa.caller_hangup(c2.id)
        await until(lambda: not app.sessions and len(delivered) == 1)
    meta = out["meta"]
    assert meta.location == str(tmp_path / f"{out['name']}.wav")
    data = await asyncio.to_thread(Path(meta.location).read_bytes)
    assert data.startswith(b"RIFF") and meta.size == len(data)
    assert [d.name for d in delivered] == ["keep-me"]  # app-level sink, exactly once


async def test_originate_answered_busy_noanswer_and_bad_tech(fa: FakeAsterisk) -> None:
    app = make_app(fa)
    async with app:
        ok = await app.originate("PJSIP/alice", caller_id="+1555", timeout=5)
        assert ok.direction is CallDirection.OUTBOUND
        assert ok.state is CallState.IN_PROGRESS and ok.id in app.sessions
        await ok.play_file("hello-world")
        await ok.hangup()
        busy = await app.originate("PJSIP/busy", timeout=5)
        noans = await app.originate("PJSIP/noanswer", timeout=5)
        cong = await app.originate("PJSIP/congestion", timeout=5)
        bogus = await app.originate("Bogus/1", timeout=5)
        await until(lambda: not app.sessions)
    assert (busy.state, busy.failure_reason) == (CallState.FAILED, "busy")
    assert (noans.state, noans.failure_reason) == (CallState.FAILED, "no answer")
    assert cong.failure_reason == "congestion"
    assert bogus.state is CallState.FAILED and "Allocation failed" in str(bogus.failure_reason)
    assert ok.state is CallState.COMPLETED


async def test_reconnect_resyncs_calls(fa: FakeAsterisk) -> None:
    app = make_app(fa)
    fired: list[str] = []
    calls: list[CallSession] = []

    @app.default()
    async def handler(call: CallSession) -> None:
        calls.append(call)
        call.on_hangup(lambda: fired.append(call.id))
        await call.answer()
        await call.wait_ended()

    async with app:
        a = await fa.place_call(to="1")
        b = await fa.place_call(to="2")
        await until(lambda: len(calls) == 2)
        connects = fa.connects
        await fa.drop_socket()
        await fa.caller_hangup(a.id)  # lost: nobody is connected
        await until(lambda: fa.connects > connects and app.connected)
        await until(lambda: fired == [a.id])
        survivor = app.sessions[b.id]
        assert survivor.state is CallState.IN_PROGRESS
        await survivor.play_file("hello-world")
        await fa.caller_hangup(b.id)
        await until(lambda: not app.sessions)
    assert sorted(fired) == sorted([a.id, b.id])


async def test_malformed_events_are_skipped(fa: FakeAsterisk) -> None:
    app = make_app(fa)
    got: list[CallSession] = []

    @app.default()
    async def handler(call: CallSession) -> None:
        got.append(call)
        await call.hangup()

    async with app:
        await fa.send_raw("{not json")
        await fa.send_raw('{"type": "Whatever", "x": 1}')
        await fa.place_call()
        await until(lambda: bool(got) and not app.sessions)
        assert app.events.parser.malformed == 1 and app.events.parser.unknown == 1


async def test_ai_methods_without_pipeline(fa: FakeAsterisk) -> None:
    app = make_app(fa)
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
        await run_call(fa, app, handler)
        await until(lambda: len(errors) == 3)
    assert errors == ["AI pipeline not configured"] * 3


async def test_bad_credentials_and_application_replaced(
    fa: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = VoxtraApp(fa.ari_url, USER, "wrong-secret")
    with pytest.raises(AriUnauthorized):
        await bad.start()
    assert "wrong-secret" not in caplog.text and "wrong-secret" not in repr(bad)
    app = make_app(fa)
    serving = asyncio.ensure_future(app.serve())
    await until(lambda: app.connected)
    other = make_app(fa)
    await other.start()
    with pytest.raises(ApplicationReplacedError):
        await asyncio.wait_for(serving, WAIT)
    await other.close()
