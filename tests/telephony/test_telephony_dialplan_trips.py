"""Transfers and queues through the shipped dialplan contexts, on the sandbox over real ARI bytes.

The sandbox runs docs/asterisk/extensions.conf's [voxflow-transfer] and [voxflow-queue] as real
Asterisk 22 did in captures/continue-outcomes.json and captures/queue-return.json.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from vf_sandbox_util import WAIT, RequestLog, make_app, sandbox_fixture, until

from voxflow.errors import CallEndedError, TransferFailedError
from voxflow.sandbox import QueueAgent, Sandbox, SimCall
from voxflow.telephony.app import VoxtraApp
from voxflow.telephony.dialplan import QueueReturn
from voxflow.telephony.session import CallSession


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async for s in sandbox_fixture():
        yield s


Outcome = dict[str, Any]


async def run(
    sb: Sandbox,
    app: VoxtraApp,
    body: Callable[[CallSession, Outcome], Awaitable[None]],
    **call: Any,
) -> tuple[Outcome, SimCall]:
    """Place one call into ``body``; returns what the body recorded (``error`` = its exception)."""
    out: Outcome = {}
    done = asyncio.Event()

    async def handler(session: CallSession) -> None:
        out["session"] = session
        await session.answer()
        try:
            await body(session, out)
        except Exception as exc:
            out["error"] = exc
            raise
        finally:
            done.set()

    app.default()(handler)
    sim = await sb.place_call(**call)
    await asyncio.wait_for(done.wait(), WAIT)
    return out, sim


def returned_args(sim: SimCall) -> list[str]:
    ch = sim.channel
    assert ch is not None
    return list(ch.app_args)


# ------------------------------------------------------------------ transfers


async def test_unroutable_transfer_comes_back_failed_and_the_call_stays(sb: Sandbox) -> None:
    app = make_app(sb)

    async def body(call: CallSession, out: Outcome) -> None:
        try:
            await call.transfer_to("payments")  # no TECH/: the context only routes numbers
        except TransferFailedError as exc:
            out["status"] = exc.status
            out["ended_after"] = call.ended
            await call.play_file("sound:vf-short")  # still ours: it can be spoken to
            out["played"] = True

    async with app:
        out, sim = await run(sb, app, body)
        await until(lambda: not app.sessions)
    assert out["status"] == "INVALID" and out["ended_after"] is False and out["played"]
    assert returned_args(sim) == ["transfer-return", "INVALID", "payments"]
    ch = sim.channel
    assert ch is not None and ch.variables["INVALID_EXTEN"] == "payments"


async def test_endpoint_transfer_of_another_technology_dials_through_the_context(
    sb: Sandbox,
) -> None:
    app = make_app(sb)
    log = RequestLog(app)

    async def body(call: CallSession, out: Outcome) -> None:
        await call.transfer_to("SIP/payments")  # a PJSIP channel cannot be redirected to SIP
        out["ended"] = call.ended

    async with app:
        await sb.wait_app()
        sb.pbx.outbound_behaviour["payments"] = "answer"
        call_task = asyncio.ensure_future(run(sb, app, body))
        out, sim = await call_task
        await until(lambda: not app.sessions)
        assert log.find("POST", "/continue")[0]["extension"] == "endpoint"
        assert not log.find("POST", "/redirect")
        assert not log.find("DELETE", f"/channels/{sim.id}")  # handed over, not hung up
        assert sim.state != "ended"
        await sim.hangup()
    assert out["ended"] is True
    kinds = [e["type"] for e in sim.experience()]
    assert "transferred" in kinds


async def test_endpoint_transfer_on_pjsip_uses_redirect(sb: Sandbox) -> None:
    app = make_app(sb)
    log = RequestLog(app)

    async def body(call: CallSession, out: Outcome) -> None:
        assert call.channel.technology == "PJSIP"
        await call.transfer_to("PJSIP/payments")

    async with app:
        out, _ = await run(sb, app, body)
        await until(lambda: not app.sessions)
    assert "error" not in out
    assert log.find("POST", "/redirect")[0]["endpoint"] == "PJSIP/payments"
    assert not log.find("POST", "/continue")


async def test_transfer_to_a_busy_number_comes_back_with_dialstatus(sb: Sandbox) -> None:
    app = make_app(sb)
    sb.pbx.outbound_behaviour["+15550100"] = "busy"

    async def body(call: CallSession, out: Outcome) -> None:
        with pytest.raises(TransferFailedError) as info:
            await call.transfer_to("+15550100")
        out["status"] = info.value.status

    async with app:
        out, sim = await run(sb, app, body)
    assert out["status"] == "BUSY"
    assert returned_args(sim) == ["transfer-return", "BUSY"]


# ------------------------------------------------------------------ queues


async def queue_status(sb: Sandbox, **kw: Any) -> tuple[str, SimCall, list[tuple[str, str]]]:
    app = make_app(sb)
    log = RequestLog(app)

    async def body(call: CallSession, out: Outcome) -> None:
        back = await call.transfer_to_queue(kw.pop("name", "q"), **kw)
        out["status"], out["back"] = (back.status if back else None), back
        out["ended"] = call.ended

    async with app:
        out, sim = await run(sb, app, body)
        await until(lambda: not app.sessions)
    assert out.get("ended") is False, out
    sets = [(q["variable"], q["value"]) for q in log.find("POST", "/variable")]
    return str(out["status"]), sim, sets


async def test_queue_timeout_returns_timeout_with_the_flows_options(sb: Sandbox) -> None:
    sb.add_queue("q")  # no members, joinempty: waits until the timeout
    status, sim, sets = await queue_status(sb, timeout=0.4, music="jazz", priority=5)
    assert status == "TIMEOUT"
    assert ("VOXFLOW_QUEUE", "q") in sets and ("VOXFLOW_QUEUE_OPTIONS", "cm(jazz)") in sets
    assert ("VOXFLOW_QUEUE_TIMEOUT", "1") in sets and ("QUEUE_PRIO", "5") in sets
    ch = sim.channel
    assert ch is not None and ch.variables["ABANDONED"] == "TRUE"
    assert "DIALSTATUS" not in ch.variables  # Queue() never sets it (queue-return.json)
    assert returned_args(sim)[:2] == ["queue-return", "TIMEOUT"]


async def test_queue_agent_answers_then_hangs_up_continue(sb: Sandbox) -> None:
    sb.add_queue("q", [QueueAgent("alice", answer_after=0.1, talk=0.2)])
    status, sim, _ = await queue_status(sb, timeout=5)
    assert status == "CONTINUE"
    kinds = [e["type"] for e in sim.experience()]
    assert "agent" in kinds
    assert returned_args(sim) == ["queue-return", "CONTINUE", "0", "1", "0"]


async def test_queue_joinempty_full_leaveempty_unknown(sb: Sandbox) -> None:
    sb.add_queue("closed", joinempty=False)
    sb.add_queue("leaving", leavewhenempty=True)
    assert (await queue_status(sb, name="closed"))[0] == "JOINEMPTY"
    assert (await queue_status(sb, name="leaving", timeout=30))[0] == "LEAVEEMPTY"
    assert (await queue_status(sb, name="no-such-queue"))[0] == "UNKNOWN"
    sb.add_queue("small", maxlen=1)
    sb.pbx.contexts.queues["small"].waiting.append("someone")
    sb.pbx.channels["someone"] = sb.pbx.channels.get("someone") or _placeholder(sb)
    assert (await queue_status(sb, name="small"))[0] == "FULL"


def _placeholder(sb: Sandbox) -> Any:
    from voxflow.sandbox.model import Channel

    return Channel(id="someone", name="PJSIP/x-1", state="Up", creationtime=sb.pbx.now_ts())


async def test_caller_hanging_up_in_the_queue_ends_the_call(sb: Sandbox) -> None:
    sb.add_queue("q")
    app = make_app(sb)
    log = RequestLog(app)
    left = asyncio.Event()

    async def body(call: CallSession, out: Outcome) -> None:
        waiting = asyncio.ensure_future(call.transfer_to_queue("q", timeout=30))
        await until(lambda: call._trip is not None and call._left_stasis)
        left.set()
        with pytest.raises(CallEndedError):
            await waiting

    async with app:
        task = asyncio.ensure_future(run(sb, app, body))
        await sb.wait_app()
        await until(lambda: bool(sb.calls))
        await asyncio.wait_for(left.wait(), WAIT)
        sim = next(iter(sb.calls.values()))
        await sim.wait_for("queue", WAIT)
        await sim.hangup()
        out, _ = await task
        await until(lambda: not app.sessions)
    assert "error" not in out
    assert not log.find("DELETE", f"/channels/{sim.id}")


async def test_a_return_with_no_waiting_call_is_hung_up_not_a_new_call(sb: Sandbox) -> None:
    app = make_app(sb)
    started: list[str] = []
    app.default()(lambda call: started.append(call.id))  # type: ignore[arg-type,func-returns-value]
    async with app:
        sim = await sb.place_call(args=["queue-return", "TIMEOUT"])
        assert await sim.wait_hangup(WAIT) is not None
    assert started == []


# ------------------------------------------------------------------ call data in


async def test_metadata_from_stasis_args_and_channel_variables(sb: Sandbox) -> None:
    app = make_app(sb)
    sb.pbx.ari_channelvars = ("VOXFLOW_META_AMOUNT_DUE", "VOXFLOW_META_EMPTY")

    async def body(call: CallSession, out: Outcome) -> None:
        out["meta"] = dict(call.metadata)
        out["called"] = call.called_number

    async with app:
        out, _ = await run(
            sb,
            app,
            body,
            to="+18005550142",
            args=["account=77", "not a pair"],
            variables={"VOXFLOW_META_AMOUNT_DUE": "42.50"},
        )
    assert out["meta"] == {"account": "77", "amount_due": "42.50"}
    assert out["called"] == "+18005550142"  # the leading + reaches the app


async def test_a_key_leaves_the_queue_through_its_exit_context(sb: Sandbox) -> None:
    """The shipped ``support`` queue has ``context = voxflow-queue-exit``: the caller's key
    ends Queue() there and the session gets it back with QUEUEPOSITION (no QUEUESTATUS, no
    QUEUEWAIT: app_queue sets neither then)."""
    app = make_app(sb)

    async def body(call: CallSession, out: Outcome) -> None:
        out["back"] = await call.transfer_to_queue("support", timeout=30, exit_keys="1")
        out["ended"] = call.ended

    async def caller() -> None:
        await until(lambda: bool(sb.pbx.contexts.queues["support"].waiting))
        sim = next(iter(sb.calls.values()))
        await sim.press("1")

    async with app:
        presser = asyncio.ensure_future(caller())
        out, sim = await run(sb, app, body)
        await presser
    assert out["back"] == QueueReturn("EXITWITHKEY", position=1, wait=None, key="1")
    assert out["ended"] is False
    assert returned_args(sim) == ["queue-return", "EXITWITHKEY", "", "1", "", "1"]
    ch = sim.channel
    assert ch is not None and "QUEUESTATUS" not in ch.variables


def test_queue_return_reads_the_shipped_arguments() -> None:
    assert QueueReturn.from_args(["TIMEOUT", "0", "3", "45"]) == QueueReturn("TIMEOUT", 3, 45)
    assert QueueReturn.from_args(["CONTINUE", "12"]) == QueueReturn("CONTINUE")  # older dialplan
    assert QueueReturn.from_args([]) == QueueReturn("")
    assert QueueReturn.from_args(["EXITWITHKEY", "", "2", "", "7"]) == QueueReturn(
        "EXITWITHKEY", position=2, key="7"
    )
