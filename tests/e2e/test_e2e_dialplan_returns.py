"""Flows whose transfer or queue comes back from the shipped dialplan, end to end over real ARI
on the sandbox (which runs docs/asterisk/extensions.conf as Asterisk 22 did in the captures)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest
from _e2e_kit import serving

from voxflow.runtime.events import End
from voxflow.sandbox import QueueAgent

FLOW = """flow back "Dialplan returns":
    answers "100"
    timeout 5s

on error:
    say "That line cannot be reached."
    goto queued

state start:
    answer
    transfer "{target}"

state queued:
    queue "{queue}" timeout 1s:
        on answered:
            say "Thanks for talking to us."
            hangup "answered"
        on timeout:
            hangup "timeout"
        on failed:
            hangup "failed"
"""


async def _run(
    tmp_path: Path, target: str, queue: str, **queues: list[QueueAgent]
) -> tuple[End, list[str]]:
    flow = tmp_path / "back.flow"
    flow.write_text(FLOW.format(target=target, queue=queue))
    async with serving([flow]) as env:
        for name, agents in queues.items():
            env.sb.add_queue(name, agents)
        call = await env.call("100")
        end = await env.result(call, 30)
        return end, env.said(call)


async def test_an_unroutable_transfer_fails_and_the_flow_goes_on_to_a_queue_timeout(
    tmp_path: Path,
) -> None:
    end, said = await _run(tmp_path, "payments", "support")  # no TECH/: only numbers route
    assert said == ["That line cannot be reached."]
    assert end == End("completed", "timeout")  # the shipped support queue has no members


async def test_a_queue_agent_answers_then_the_flow_goes_on(tmp_path: Path) -> None:
    agents = [QueueAgent("ann", answer_after=0.2, talk=0.2)]
    end, said = await _run(tmp_path, "payments", "desk", desk=agents)
    assert said[-1] == "Thanks for talking to us."
    assert end == End("completed", "answered")


async def test_a_queue_that_cannot_take_the_call_is_failed(tmp_path: Path) -> None:
    end, _ = await _run(tmp_path, "payments", "no-such-queue")  # Queue() returns, no QUEUESTATUS
    assert end == End("completed", "failed")


FLOWS = Path(__file__).resolve().parents[2] / "flows"


async def test_card_payment_gets_its_balance_from_the_dialplan() -> None:
    # [voxflow-in] with Set(VOXFLOW_META_AMOUNT_DUE=...) before Stasis(), listed in ari.conf
    # channelvars; the number keeps its leading + and reaches card_payment
    async with serving([FLOWS / "card_payment.flow"]) as env:
        env.sb.pbx.ari_channelvars = ("VOXFLOW_META_AMOUNT_DUE",)
        call = await env.call("+18005550142", variables={"VOXFLOW_META_AMOUNT_DUE": "42.50"})
        await env.wait_line(call, "Please enter your card number")
        await call.hangup()
        await env.result(call)
        assert env.said(call)[0] == "Your balance is 42.5 dollars."


DROP = """flow drop "Dialplan drops":
    answers "100"
    timeout 5s

state start:
    answer
    transfer "+18005550111"
"""


async def test_a_transfer_the_dialplan_drops_is_an_error_not_a_caller_hang_up(
    tmp_path: Path,
) -> None:
    # a transfer_context the PBX does not have: Asterisk hangs the caller up right after the
    # continue, ChannelDestroyed cause 0 "Unknown" (continue-outcomes.json b, d)
    flow = tmp_path / "drop.flow"
    flow.write_text(DROP)
    async with serving([flow], app={"transfer_context": "voxflow-xfer"}, mode="classic") as env:
        call = await env.call("100")
        end = await env.result(call, 20)
        assert end.outcome == "error", end
        assert "voxflow-xfer" in end.reason and "dropped" in end.reason, end
        assert (await call.wait_for("hangup", 5))["cause"] == 0


async def test_a_per_call_transfer_that_comes_back_busy_runs_the_error_handler(
    tmp_path: Path,
) -> None:
    # per_call outbound websockets: the socket closes once the call left Stasis, and the
    # Stasis() after a Dial() that failed connects out again (capture outbound-websocket.json);
    # the call came back to a worker that had ended it 'transferred' and hung it up
    flow = tmp_path / "back.flow"
    flow.write_text(FLOW.format(target="+18005550111", queue="support"))
    async with serving([flow], mode="per_call") as env:
        env.sb.set_outbound_behaviour("+18005550111", "busy")
        call = await env.call("100")
        await env.wait_line(call, "That line cannot be reached.", 20)
        assert env.said(call)[0] == "That line cannot be reached."
        kinds = env.kinds(call)
        assert "transfer" in kinds and kinds.count("continue") >= 1


async def test_a_per_call_transfer_answered_after_its_socket_closed_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the call's socket closes (here 0.1 s) before the far end answers (0.5 s): Asterisk tells
    # this worker nothing more, so the flow cannot claim the transfer happened (it ended
    # 'transferred' after the wait)
    from voxflow.telephony import dialplan

    monkeypatch.setattr(dialplan, "PER_CALL_TRANSFER_WAIT", 1.5)
    flow = tmp_path / "back.flow"
    flow.write_text(FLOW.format(target="+18005550111", queue="support"))
    async with serving([flow], mode="per_call") as env:
        call = await env.call("100")
        end = await env.result(call, 20)
        assert end.outcome == "unknown", end
        assert "+18005550111" in end.reason and "answered, or" in end.reason, end
        assert "transferred" in env.kinds(call)  # it was answered: the worker could not know
        assert env.said(call) == []


async def test_a_per_call_caller_who_hangs_up_while_the_transfer_rings_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the caller hangs up in the Dial() after the socket closed: nothing reaches the worker
    # (it ended 'transferred' after the wait, as if the transfer had been answered)
    from voxflow.telephony import dialplan

    monkeypatch.setattr(dialplan, "PER_CALL_TRANSFER_WAIT", 1.5)
    flow = tmp_path / "back.flow"
    flow.write_text(FLOW.format(target="+18005550111", queue="support"))
    async with serving([flow], mode="per_call") as env:
        env.sb.set_outbound_behaviour("+18005550111", "noanswer")  # rings 60 s
        call = await env.call("100")
        await call.wait_for("transfer", 10)
        await asyncio.sleep(0.3)  # the call's socket is closed by now (0.1 s after StasisEnd)
        await call.hangup()
        end = await env.result(call, 20)
        assert end.outcome == "unknown", end
        assert "transferred" not in env.kinds(call)


async def test_a_per_call_transfer_answered_while_its_socket_is_open_is_transferred(
    tmp_path: Path,
) -> None:
    # Asterisk closes the socket 3 s after StasisEnd: a Dial() answered within that time is
    # seen (Dial ANSWER on the call's socket), and the transfer did happen
    flow = tmp_path / "back.flow"
    flow.write_text(FLOW.format(target="+18005550111", queue="support"))
    async with serving([flow], mode="per_call", close_after_end=3.0) as env:
        call = await env.call("100")  # the far end answers after 0.5 s
        assert await env.result(call, 20) == End("transferred", "+18005550111")
        assert "transferred" in env.kinds(call)
        await call.hangup()


async def test_a_per_call_queue_with_an_agent_past_its_wait_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an agent has the caller past the queue's timeout + slack: nothing reaches the worker
    # until Queue() returns (it ended 'transferred' after the wait)
    from voxflow.telephony import dialplan

    monkeypatch.setattr(dialplan, "PER_CALL_QUEUE_SLACK", 0.5)
    flow = tmp_path / "back.flow"
    flow.write_text(FLOW.format(target="payments", queue="desk"))
    async with serving([flow], mode="per_call") as env:
        env.sb.add_queue("desk", [QueueAgent("ann", answer_after=0.3, talk=3.0)])
        call = await env.call("100")
        end = await env.result(call, 20)
        assert end.outcome == "unknown", end
        assert end.reason.startswith("queue desk"), end
        # Queue() returns CONTINUE once the agent hung up: the call, kept for its return, goes
        # on at the queue step (tests/e2e/test_e2e_unknown_return.py), and ends
        await call.wait_hangup(15)


async def test_a_per_call_queue_that_times_out_comes_back_to_the_flow(tmp_path: Path) -> None:
    # the shipped queues have no members: Queue() returns TIMEOUT and its Stasis() connects out
    # again; the flow ended 'transferred' and the worker hung the returning caller up
    flow = tmp_path / "back.flow"
    flow.write_text(FLOW.format(target="payments", queue="support"))
    async with serving([flow], mode="per_call") as env:
        call = await env.call("100")
        assert await env.result(call, 20) == End("completed", "timeout")


async def test_a_per_call_caller_who_hangs_up_while_its_socket_is_open_is_a_caller_hang_up(
    tmp_path: Path,
) -> None:
    # the caller hangs up while the transfer rings and the call's socket is still open (3 s
    # after StasisEnd): the worker's subscription to the channel delivers the hang-up
    flow = tmp_path / "back.flow"
    flow.write_text(FLOW.format(target="+18005550111", queue="support"))
    async with serving([flow], mode="per_call", close_after_end=3.0) as env:
        env.sb.set_outbound_behaviour("+18005550111", "noanswer")  # rings 60 s
        call = await env.call("100")
        await call.wait_for("transfer", 10)
        await call.hangup()
        end = await env.result(call, 10)
        assert end.outcome == "caller_hangup", end
