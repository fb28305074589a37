"""Every example flow in flows/ driven end to end over real ARI on the sandbox by scripted callers.

Timeouts are scaled down (``fast_flows``) so no-input paths take about half a second per attempt.
DTMF paths need no audio; the caller-hangs-up-mid-prompt case uses espeak over RTP.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
from array import array
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _e2e_kit import Env, fast_flows, serving

from voxflow.runtime.events import End
from voxflow.sandbox import QueueAgent
from voxflow.sandbox.caller import SimCall

CARD = "4111111111111111"


def _handler_logs(caplog: pytest.LogCaptureFixture, call_id: str, text: str) -> int:
    return sum(1 for r in caplog.records if call_id in r.getMessage() and text in r.getMessage())


async def _press(call: object, *keys: str, gap: float = 0.15) -> None:
    for k in keys:
        await asyncio.sleep(gap)
        await call.press(k)  # type: ignore[attr-defined]


def _no_channels_left(env: Env) -> bool:
    return not env.sb.pbx.channels


# ------------------------------------------------------------------ main_ivr


async def test_main_ivr_sales_dial_answered_then_goodbye(tmp_path: Path) -> None:
    flows = fast_flows(tmp_path)
    async with serving([flows / "main_ivr.flow"]) as env:
        call = await env.call("+18005550100")
        await _press(call, "1")
        agent = await env.sb.next_outbound(timeout=20)
        assert agent.to == "sales"
        await call.wait_for("bridge", 20)
        await asyncio.sleep(0.2)
        await agent.hangup()
        assert await env.result(call) == End("completed", "normal")
        assert env.states(call) == ["main_menu", "sales", "goodbye"]
        bridged = [e for e in call.experience() if e["type"] == "bridge" and e["partners"]]
        assert bridged and bridged[0]["partners"][0].startswith("PJSIP/sales")
        assert env.said(call)[-1] == "Thank you for calling. Goodbye."
        assert await call.wait_hangup(20) == 16
    assert _no_channels_left(env)


async def test_main_ivr_support_queue_and_billing_transfer(tmp_path: Path) -> None:
    flows = fast_flows(tmp_path)
    async with serving([flows / "main_ivr.flow"]) as env:
        env.sb.add_queue("support", [QueueAgent("ann", answer_after=0.3, talk=0.3)])
        queued = await env.call("100", from_="+15550001")
        paying = await env.call("100", from_="+15550002")
        await asyncio.gather(_press(queued, "2"), _press(paying, "3", "1"))
        # the agent answered and hung up: Queue() returned CONTINUE, the flow went on
        assert await env.result(queued) == End("completed", "normal")
        assert env.states(queued) == ["main_menu", "support", "goodbye"]
        assert await env.result(paying) == End("transferred", "PJSIP/payments")
        cont = [e for e in queued.experience() if e["type"] == "continue"]
        assert cont and (cont[0]["context"], cont[0]["exten"]) == ("voxflow-queue", "queue")
        assert [e["agent"] for e in queued.experience() if e["type"] == "agent"] == ["ann"]
        redirect = [e for e in paying.experience() if e["type"] == "redirect"]
        assert redirect and redirect[0]["endpoint"] == "PJSIP/payments"
        assert env.states(paying) == ["main_menu", "billing", "pay"]


async def test_main_ivr_noinput_escalates_then_operator_busy(tmp_path: Path) -> None:
    flows = fast_flows(tmp_path)
    async with serving([flows / "main_ivr.flow"]) as env:
        env.sb.set_outbound_behaviour("PJSIP/operator", "busy")
        call = await env.call("100")
        assert await env.result(call) == End("completed", "operator unavailable")
        said = env.said(call)
        menu = said.index(
            "For sales, press 1 or say sales. For support, press 2 or say support. "
            "For billing, press 3."
        )
        assert said[menu + 1 : menu + 5] == [
            "Sorry, I didn't hear anything.",
            "Press 1 or say sales, press 2 or say support, press 3 for billing.",
            "Sorry, I didn't hear anything.",
            "You can also press 0 or say operator at any time.",
        ]
        assert env.states(call)[-2:] == ["operator", "operator_unavailable"]
        assert "All of our operators are busy. Please call again later." in said


async def test_main_ivr_nomatch_then_anytime_operator_noanswer(tmp_path: Path) -> None:
    flows = fast_flows(tmp_path)
    async with serving([flows / "main_ivr.flow"]) as env:
        env.sb.set_outbound_behaviour("PJSIP/operator", "noanswer")
        call = await env.call("100")
        await _press(call, "7")
        await call.wait_for("pressed", 10, digit="7")
        await asyncio.sleep(0.3)
        await call.press("0")  # anytime command of the 'menus' scope
        assert await env.result(call) == End("completed", "operator unavailable")
        said = env.said(call)
        assert "Sorry, I didn't understand." in said
        assert said[said.index("Sorry, I didn't understand.") + 1].startswith("Press 1 or say")
        assert env.states(call) == ["main_menu", "operator", "operator_unavailable"]


async def test_main_ivr_billing_balance_loops_back(tmp_path: Path) -> None:
    flows = fast_flows(tmp_path)
    async with serving([flows / "main_ivr.flow"]) as env:
        call = await env.call("100")
        await _press(call, "3", "2", "9")
        await asyncio.sleep(0.3)
        await call.hangup()
        assert await env.result(call) == End("caller_hangup", "caller")
        assert env.states(call)[:4] == ["main_menu", "billing", "balance", "billing"]
        assert "main_menu" in env.states(call)[4:]


async def test_caller_hangs_up_mid_prompt_runs_handler_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    media = pytest.importorskip("voxflow.media.callmedia")
    espeak = pytest.importorskip("voxflow.media.tts_espeak")
    caplog.set_level(logging.INFO, logger="voxflow.runtime.driver")
    flows = fast_flows(tmp_path)
    app = {"tts": espeak.EspeakTTS(), "voice_factory": media.create_call_voice}
    async with serving([flows / "main_ivr.flow"], app=app) as env:
        call = await env.call("100")
        await call.wait_for("audio", 30)  # "Thank you for calling Acme." is being heard
        await asyncio.sleep(0.3)
        await call.hangup()
        assert await env.result(call) == End("caller_hangup", "caller")
        assert env.said(call) == ["Thank you for calling Acme."]  # the menu never started
        assert _handler_logs(caplog, call.id, "caller hung up") == 1
        assert len(call.heard_audio()) > 0
        for _ in range(100):
            if _no_channels_left(env):
                break
            await asyncio.sleep(0.05)
        assert _no_channels_left(env)


# ------------------------------------------------------------------ card_payment


class _Payments:
    """A local payments API: approves, answers 500, or stalls past the flow's timeout."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.bodies: list[dict[str, object]] = []

    async def charge(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        if self.mode == "500":
            return web.json_response({"error": "boom"}, status=500)
        if self.mode == "stall":
            await asyncio.sleep(2.5)  # the flow gives up after 800 ms
        return web.json_response({"approved": True, "id": "PAY-77"})


async def _card_call(tmp_path: Path, mode: str) -> tuple[Env, object, End, _Payments]:
    api = _Payments(mode)
    webapp = web.Application()
    webapp.router.add_post("/v1/charges", api.charge)
    runner = web.AppRunner(webapp)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        flows = fast_flows(
            tmp_path,
            replace={
                "https://payments.example.com": f"http://127.0.0.1:{port}",
                "call.metadata.amount_due, 0": "call.metadata.amount_due, 42",
                # the flow's own 4 s between keys: the scripted caller's 0.15 s per key must
                # not race a scaled 400 ms on a loaded loop (a stall there ended the card
                # early with 14 of its 16 digits); the keys end each gather by themselves
                "interdigit 400ms": "interdigit 4s",
            },
        )
        async with serving([flows / "card_payment.flow"]) as env:
            call = await env.call("+18005550142")
            await _press(call, *"123#")  # too short: nomatch, then retry
            await call.wait_for("pressed", 10, digit="#")
            await asyncio.sleep(0.3)
            await _press(call, *CARD, "#", gap=0.05)
            await asyncio.sleep(0.3)
            await _press(call, *"1228", gap=0.05)
            await asyncio.sleep(0.3)
            await _press(call, "1")  # confirm: yes
            end = await env.result(call)
            return env, call, end, api
    finally:
        await runner.cleanup()


async def test_card_payment_approved(tmp_path: Path) -> None:
    env, call, end, api = await _card_call(tmp_path, "ok")
    assert end == End("completed", "normal")
    said = env.said(call)
    assert "Your balance is 42 dollars." in said
    assert "That doesn't look like a card number." in said
    assert any("card ending in 1111" in s for s in said)
    assert any("confirmation number is PAY-77" in s for s in said)
    assert api.bodies == [{"card": CARD, "expiry": "1228", "amount": 42, "call": call.id}]  # type: ignore[attr-defined]
    assert env.states(call)[-2:] == ["charge", "goodbye"]


@pytest.mark.parametrize("mode", ["500", "stall"])
async def test_card_payment_failing_endpoint_goes_to_an_agent(tmp_path: Path, mode: str) -> None:
    env, call, end, api = await _card_call(tmp_path, mode)
    assert end == End("transferred", "PJSIP/billing")
    assert len(api.bodies) == 1  # POST is not idempotent: never retried
    assert env.states(call)[-2:] == ["charge", "operator_fallback"]
    assert "Let me transfer you to an agent who can help." in env.said(call)


async def test_card_payment_nothing_due(tmp_path: Path) -> None:
    async with serving([fast_flows(tmp_path) / "card_payment.flow"]) as env:
        call = await env.call("+18005550142")
        assert await env.result(call) == End("completed", "nothing due")
        assert env.said(call) == ["You have no balance to pay. Goodbye."]
        assert await call.wait_hangup(20) == 16


# ------------------------------------------------------------------ voicemail / support_line


# The caller ends its message with '#': the record step's silence (scaled to under a second by
# fast_flows) must not race the key on a loaded machine (test_e2e_record_silence.py covers it).
_KEY_ENDS_SUPPORT_VM = {"max 3m silence 500ms:": "max 3m silence 30s:"}


async def _leave_message(env: Env, call: SimCall) -> None:
    await env.wait_line(call, "recording ")
    await call.say_audio(_tone(1.0), label="a message")
    await call.press("#")


def _tone(seconds: float, hz: float = 440.0) -> bytes:
    n = int(8000 * seconds)
    return array(
        "h", (int(8000 * math.sin(2 * math.pi * hz * i / 8000)) for i in range(n))
    ).tobytes()


async def test_voicemail_records_and_saves(tmp_path: Path) -> None:
    # the shipped voicemail subflow (voxflow:voicemail.flow) is not scaled: its 4 s of silence
    # cannot race the caller's '#'
    flows = fast_flows(tmp_path)
    async with serving([flows / "voicemail.flow"]) as env:
        call = await env.call("300")
        await _leave_message(env, call)
        await _press(call, "1")  # keep
        assert await env.result(call) == End("completed", "voicemail saved")
        assert env.states(call) == [
            "start",
            "voicemail.greet",
            "voicemail.check",
            "voicemail.review",
            "voicemail.save",
            "saved",
        ]
        rec = [e for e in call.experience() if e["type"] == "recorded"]
        assert rec and rec[0]["name"] == f"vm-300-{call.id}"  # the mailbox dialled, then the call
        assert env.server.drivers == {}
        assert env.said(call)[-2:] == ["Your message has been saved.", "Goodbye."]


async def test_support_line_open_hours_queue(tmp_path: Path) -> None:
    flows = fast_flows(tmp_path, replace={'is_open("mon-fri 08:00-18:00")': "true"})
    async with serving([flows / "support_line.flow"]) as env:
        env.sb.add_queue("support", [QueueAgent("ann", answer_after=0.3, talk=0.3)])
        call = await env.call("200")
        assert await env.result(call) == End("completed", "normal")
        kinds = env.kinds(call)
        assert "continue" in kinds and "agent" in kinds
        assert env.states(call) == ["start", "open_hours", "wrap_up", "goodbye"]
        assert "All agents are busy. Press 1 at any time to leave a message." in env.said(call)


async def test_support_line_caller_presses_1_in_the_queue_for_voicemail(tmp_path: Path) -> None:
    # the shipped support queue: no members, queues.conf context = voxflow-queue-exit
    flows = fast_flows(tmp_path, replace={'is_open("mon-fri 08:00-18:00")': "true"})
    async with serving([flows / "support_line.flow"]) as env:
        call = await env.call("200")
        await call.wait_for("queue", 20)
        await call.press("1")
        await env.wait_line(call, "Please leave a message")
        await call.hangup()
        await env.result(call)
        assert env.states(call) == ["start", "open_hours", "voicemail"]


async def test_support_line_caller_hangs_up_while_queued(tmp_path: Path) -> None:
    flows = fast_flows(tmp_path, replace={'is_open("mon-fri 08:00-18:00")': "true"})
    async with serving([flows / "support_line.flow"]) as env:
        call = await env.call("200")  # the shipped queues.conf: nobody answers
        await call.wait_for("queue", 20)
        await call.hangup()
        assert (await env.result(call)).outcome == "caller_hangup"
        assert env.states(call) == ["start", "open_hours"]
        assert env.server.drivers == {}
    assert _no_channels_left(env)


async def test_support_line_after_hours_voicemail(tmp_path: Path) -> None:
    closed = {'is_open("mon-fri 08:00-18:00")': "false", **_KEY_ENDS_SUPPORT_VM}
    flows = fast_flows(tmp_path, replace=closed)
    assert "silence 30s" in (flows / "support_line.flow").read_text()
    async with serving([flows / "support_line.flow"]) as env:
        call = await env.call("200")
        await _leave_message(env, call)
        assert await env.result(call) == End("completed", "voicemail")
        assert env.states(call) == ["start", "after_hours", "voicemail"]
        assert env.said(call)[-1] == "Thanks, we'll call you back within one business day."


# ------------------------------------------------------------------ appointment_reminder (outbound)


@pytest.mark.parametrize(
    ("key", "frontdesk", "outcome"),
    [
        ("1", "answer", End("completed", "confirmed")),
        ("2", "busy", End("completed", "callback")),
    ],
)
async def test_appointment_reminder_outbound(
    tmp_path: Path, key: str, frontdesk: str, outcome: End
) -> None:
    async with serving([fast_flows(tmp_path) / "appointment_reminder.flow"]) as env:
        env.sb.set_outbound_behaviour("PJSIP/frontdesk", frontdesk)
        meta = {"patient_name": "Ada", "appointment_time": "on Monday at 9"}
        placed = asyncio.ensure_future(
            env.server.call_out("appointment_reminder", "PJSIP/ada", metadata=meta)
        )
        patient = await env.sb.next_outbound(timeout=20)
        await patient.wait_answered(20)
        await _press(patient, key, gap=0.4)
        end = await asyncio.wait_for(placed, 60)
        assert end == outcome
        said = env.said(patient)
        assert said[0] == (
            "Hello Ada, this is Acme Clinic with a reminder of your appointment on Monday at 9."
        )
        if key == "2":
            assert "Our front desk is busy. We will call you back to reschedule." in said
