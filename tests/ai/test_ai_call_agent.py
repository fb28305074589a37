"""``call.agent`` on real sandbox calls: configuration errors, per-session history, tools that see
only the metadata marked for them, spoken turns heard by the caller, hang-up closing the
pipeline, and ``CallMedia.clear_audio``."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from ai_fakes import FakeOpenAI, FakeTTS, sse, text_chunks, tool_chunks
from sandbox_rig import open_app_rig as app_rig
from shared_stt import shared_stt

from voxflow.agent.agent import AgentAction
from voxflow.agent.call_agent import CallAgent, create_agent
from voxflow.ai.openai_llm import OpenAIChatModel
from voxflow.errors import CallEndedError
from voxflow.media.callmedia import CallMedia
from voxflow.media.transport import PortRange
from voxflow.telephony.session import CallSession
from voxflow.voice.chunk import AudioChunk

NOT_CONFIGURED = "AI pipeline not configured"


def _audible_frames(pcm: bytes) -> int:
    a = np.frombuffer(pcm, "<i2")
    frames = a[: len(a) // 160 * 160].reshape(-1, 160)
    return int(np.count_nonzero(np.abs(frames).max(axis=1) > 0))


async def test_agent_needs_an_llm_and_speaking_needs_stt_and_tts(fake_openai: FakeOpenAI) -> None:
    fake_openai.chat.append(sse(text_chunks("Hello there.")))
    llm = OpenAIChatModel(model="m", base_url=fake_openai.url, timeout=10)
    try:
        async with app_rig(PortRange()) as rig:

            async def no_llm(call: CallSession) -> Any:
                with pytest.raises(RuntimeError) as info:
                    _ = call.agent
                with pytest.raises(RuntimeError) as direct:
                    create_agent(call)
                return str(info.value), str(direct.value)

            await rig.call(no_llm)
            assert await rig.result() == (NOT_CONFIGURED, NOT_CONFIGURED)

            rig.app.llm = llm  # an LLM but no STT/TTS: text turns only

            async def text_only(call: CallSession) -> Any:
                agent = call.agent
                assert isinstance(agent, CallAgent) and agent is call.agent
                reply = await agent.respond("hi")
                with pytest.raises(RuntimeError) as info:
                    await agent.respond_aloud("hi again")
                return reply, str(info.value)

            await rig.call(text_only)
            assert await rig.result() == ("Hello there.", NOT_CONFIGURED)
    finally:
        await llm.aclose()


async def test_history_is_per_session_and_tools_see_only_marked_metadata(
    fake_openai: FakeOpenAI,
) -> None:
    seen: list[dict[str, Any]] = []

    async def lookup(args: Mapping[str, Any], metadata: Mapping[str, Any]) -> Any:
        seen.append({"args": dict(args), "metadata": dict(metadata)})
        return {"ships": "Monday"}

    fake_openai.chat += [
        sse(tool_chunks([("lookup_order", '{"order": "A17"}')])),
        sse(text_chunks("Your order ships Monday.")),
        sse(text_chunks("Goodbye!")),
        sse(text_chunks("Hello, other caller.")),
    ]
    llm = OpenAIChatModel(model="m", base_url=fake_openai.url, timeout=10)
    action = AgentAction(
        "lookup_order",
        "Look up an order",
        lookup,
        {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
    )
    try:
        async with app_rig(PortRange(), llm=llm) as rig:

            async def first(call: CallSession) -> Any:
                call.metadata.update_for_webhook(customer="c-42")
                call.metadata["card_pin"] = "1234"  # not marked: tools must not see it
                call.agent.add_action(action)
                one = await call.agent.respond("Where is my order A17?")
                two = await call.agent.respond("Thanks, bye")
                return one, two, len(call.agent.history)

            await rig.call(first)
            one, two, n = await rig.result()
            assert (one, two) == ("Your order ships Monday.", "Goodbye!")
            # user, assistant(tool call), tool, assistant, user, assistant
            assert n == 6

            async def second(call: CallSession) -> Any:
                return await call.agent.respond("Hello?"), len(call.agent.history)

            await rig.call(second)
            assert await rig.result() == ("Hello, other caller.", 2)
    finally:
        await llm.aclose()
    assert seen == [{"args": {"order": "A17"}, "metadata": {"customer": "c-42"}}]
    tool_round = fake_openai.requests[1].body["messages"]
    assert tool_round[-1]["role"] == "tool"
    assert json.loads(tool_round[-1]["content"]) == {"ships": "Monday"}
    # The second turn of the first call carries the first turn; the other call starts fresh.
    roles = [m["role"] for m in fake_openai.requests[2].body["messages"]]
    assert roles[:2] == ["user", "assistant"]
    assert [m["content"] for m in fake_openai.requests[3].body["messages"]] == ["Hello?"]


async def test_spoken_turn_is_heard_and_hangup_closes_the_pipeline(
    fake_openai: FakeOpenAI,
) -> None:
    long_reply = "This is a long answer about our opening hours. " * 8
    fake_openai.chat += [
        sse(text_chunks("Hello, this is Acme.")),
        sse(text_chunks(long_reply, size=8), delay=0.02),
    ]
    llm = OpenAIChatModel(model="m", base_url=fake_openai.url, timeout=10)
    tts = FakeTTS(ms_per_char=40)
    try:
        async with app_rig(PortRange(), llm=llm, tts=tts, stt=shared_stt()) as rig:
            agents: list[CallAgent] = []

            async def body(call: CallSession) -> Any:
                agent = call.agent
                agents.append(agent)
                first = await agent.respond_aloud("hello")
                rig.results.put_nowait(first)
                await agent.respond_aloud("when are you open?")
                return "finished"

            sim = await rig.call(body)
            first = await rig.result()
            assert first.heard == "Hello, this is Acme." and not first.interrupted
            assert first.metrics.llm_ttft_ms is not None and first.metrics.tts_ttfb_ms is not None
            # The caller heard the first reply: ~20 characters at 40 ms each.
            await sim.wait_for("audio", 20)
            await asyncio.sleep(1.0)  # well into the long second reply
            await sim.hangup()
            with pytest.raises(CallEndedError):
                await rig.result()
            agent = agents[0]
            for _ in range(200):
                if agent.closed:
                    break
                await asyncio.sleep(0.05)
            assert agent.closed and agent._pipeline is None
            with pytest.raises(CallEndedError):
                await agent.respond_aloud("anyone there?")
            heard_s = _audible_frames(sim.heard_audio()) * 0.02
            assert 0.5 < heard_s < 0.8 * len(long_reply) * 0.04
    finally:
        await llm.aclose()


async def test_clear_audio_drops_what_is_queued() -> None:
    async with app_rig(PortRange()) as rig:

        async def body(call: CallSession) -> Any:
            tone = np.tile(np.int16([0, 5000, 0, -5000]), 8000 * 3 // 4).tobytes()  # 3 s
            await call.send_audio(AudioChunk("pcm16", 8000, tone))
            media = call._voice
            assert isinstance(media, CallMedia)
            # (a first packet sent at once holds 20-40 ms of it)
            queued = media.outbound.queued_frames + math.ceil(media.outbound.sent_ms / 20)
            await asyncio.sleep(0.4)
            dropped = media.clear_audio()
            left = media.outbound.queued_frames
            await asyncio.sleep(0.5)
            return queued, dropped, left

        sim = await rig.call(body)
        queued, dropped, left = await rig.result()
        assert queued >= 145 and left == 0
        assert 60 < dropped < queued  # some frames had gone out before the flush
        heard = _audible_frames(sim.heard_audio())
        assert heard + dropped <= queued + 2 and heard < 100
