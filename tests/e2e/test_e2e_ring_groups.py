"""Ring groups over real ARI on the sandbox: the first leg to answer is bridged and the others
are hung up; hunting rings one endpoint after another; "A&B" dial strings are refused by the
sandbox as by Asterisk (ARI originate allocates one channel)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _e2e_kit import serving

from voxflow.errors import AriServerError
from voxflow.runtime.events import End

FLOW = """\
flow ring:
    answers "500"

state start:
    answer
    dial "PJSIP/alice", "PJSIP/bob", "PJSIP/carol" timeout 10s:
        on answered -> bye
        on busy, noanswer, failed -> hunt

state hunt:
    dial "PJSIP/dave", "PJSIP/erin" ring hunt timeout 1s:
        on answered -> bye
        on busy, noanswer, failed -> nobody

state nobody:
    hangup "nobody"

state bye:
    hangup
"""


def _flow(tmp_path: Path) -> Path:
    path = tmp_path / "ring.flow"
    path.write_text(FLOW)
    return path


async def test_ring_all_bridges_the_first_answer_and_hangs_up_the_others(tmp_path: Path) -> None:
    async with serving([_flow(tmp_path)]) as env:
        env.sb.set_outbound_behaviour("PJSIP/alice", "busy")
        env.sb.set_outbound_behaviour("PJSIP/carol", "ring")
        call = await env.call("500")
        far = {}
        for _ in range(3):  # all three are called at once
            leg = await env.sb.next_outbound(timeout=20)
            far[leg.to] = leg
        bob = far["bob"]
        await call.wait_for("bridge", 20)
        for _ in range(50):
            if not any("carol" in c.name for c in env.sb.pbx.channels.values()):
                break
            await asyncio.sleep(0.05)
        assert not any("carol" in c.name for c in env.sb.pbx.channels.values())  # hung up
        await asyncio.sleep(0.2)
        await bob.hangup()
        assert await env.result(call) == End("completed", "normal")
        assert env.states(call) == ["start", "bye"]
    assert not env.sb.pbx.channels


async def test_hunting_rings_each_endpoint_for_its_timeout(tmp_path: Path) -> None:
    async with serving([_flow(tmp_path)]) as env:
        for name in ("alice", "bob", "carol"):
            env.sb.set_outbound_behaviour(f"PJSIP/{name}", "busy")
        env.sb.set_outbound_behaviour("PJSIP/dave", "ring")
        call = await env.call("500")
        order = []
        while not order or order[-1].to != "erin":  # erin only after dave rang out (1 s)
            order.append(await env.sb.next_outbound(timeout=20))
        assert [leg.to for leg in order] == ["alice", "bob", "carol", "dave", "erin"]
        erin = order[-1]
        await call.wait_for("bridge", 20)
        await erin.hangup()
        assert await env.result(call) == End("completed", "normal")
        assert env.states(call) == ["start", "hunt", "bye"]
        env.sb.set_outbound_behaviour("PJSIP/erin", "busy")
        again = await env.call("500")
        assert await env.result(again) == End("completed", "nobody")
    assert not env.sb.pbx.channels


async def test_an_ampersand_dial_string_is_refused_like_asterisk(tmp_path: Path) -> None:
    async with serving([_flow(tmp_path)]) as env:
        with pytest.raises(AriServerError) as info:
            await env.app.rest.originate("PJSIP/alice&PJSIP/bob", app="voxflow")
        assert info.value.status == 500
        assert "Allocation failed" in info.value.message
        assert not env.sb.pbx.channels


SCREEN = """\
flow screen:
    answers "600"

state start:
    answer
    dial "PJSIP/agent" timeout 10s:
        dtmf "12"
        whisper "A call for you. Press 1 to take it."
        accept "1"
        accept_timeout 10s
        on answered -> bye
        on busy, noanswer, failed -> declined

state declined:
    hangup "declined"

state bye:
    hangup
"""


async def _screened(tmp_path: Path, key: str) -> tuple[End, list[str], list[dict[str, object]]]:
    path = tmp_path / "screen.flow"
    path.write_text(SCREEN)
    async with serving([path]) as env:
        call = await env.call("600")
        agent = await env.sb.next_outbound(timeout=20)
        await agent.wait_for("dtmf", 20, digit="2")  # the keys came first
        await env.wait_line(call, "dial PJSIP/agent", 20)
        await asyncio.sleep(1.0)  # during the whisper
        await agent.press(key)
        if key == "1":
            await call.wait_for("bridge", 20)
            await asyncio.sleep(0.2)
            await agent.hangup()
        end = await env.result(call)
        kinds = env.kinds(call)
        seen = agent.experience()
        if key != "1":
            await agent.wait_hangup(20)
    assert not env.sb.pbx.channels
    return end, kinds, seen


async def test_call_screening_the_called_party_accepts_with_its_key(tmp_path: Path) -> None:
    end, _, seen = await _screened(tmp_path, "1")
    assert end == End("completed", "normal")
    assert [e["digit"] for e in seen if e["type"] == "dtmf"] == ["1", "2"]
    assert any(e["type"] == "bridge" and e["partners"] for e in seen)


async def test_call_screening_another_key_declines_and_the_caller_is_never_joined(
    tmp_path: Path,
) -> None:
    end, _, seen = await _screened(tmp_path, "9")
    assert end == End("completed", "declined")
    assert not any(e["type"] == "bridge" and e["partners"] for e in seen)


CARRY = """\
flow handover:
    answers "700"

var case_id: string = "C-42"

state start:
    answer
    transfer "PJSIP/survey":
        carry {"case": case_id}
"""


async def test_transfer_carries_call_data_as_channel_variables(tmp_path: Path) -> None:
    path = tmp_path / "handover.flow"
    path.write_text(CARRY)
    async with serving([path]) as env:
        call = await env.call("700")
        channel = env.sb.pbx.channels[call.id]
        assert (await env.result(call)).outcome == "transferred"
        assert channel.variables.get("VOXFLOW_META_CASE") == "C-42"  # call.metadata.case next
