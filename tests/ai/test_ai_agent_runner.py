"""The agent step runner and VoicePipeline, with a local OpenAI-compatible server streaming replies
and tool calls, a scripted TTS and a scripted call voice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ai_fakes import (
    FakeOpenAI,
    FakeTTS,
    FakeVoice,
    hang,
    last_user_text,
    sse,
    status,
    text_chunks,
    tool_chunks,
)
from aiohttp import web
from http_kit import local_http

from voxflow.agent.agent import (
    ACTION_MAX_BYTES,
    Agent,
    AgentAction,
    AgentExit,
    AgentSettings,
    ToolParam,
    http_action,
    run_agent,
)
from voxflow.agent.pipeline import HeardTracker, SpokenSpan, VoicePipeline
from voxflow.ai.openai_llm import OpenAIChatModel
from voxflow.voice.call import BargeIn

TRANSFER = AgentExit(
    "transfer",
    "Hand the caller to a human in a department",
    (ToolParam("department", "string"), ToolParam("urgent", "bool", required=False)),
)


class Rig:
    def __init__(self, fake: FakeOpenAI, voice: FakeVoice, tts: FakeTTS | None = None) -> None:
        self.llm = OpenAIChatModel(model="m", base_url=fake.url, timeout=10)
        self.agent = Agent(self.llm, metadata=lambda: {"customer": "c-42"})
        self.tts = tts or FakeTTS()
        self.voice = voice
        self.pipeline = VoicePipeline(voice, tts=self.tts, agent=self.agent)  # type: ignore[arg-type]

    async def run(self, **kw: Any) -> Any:
        settings = AgentSettings(system_prompt="You are Acme's receptionist.", **kw)
        return await run_agent(settings, self.pipeline, self.agent)

    async def aclose(self) -> None:
        await self.pipeline.aclose()
        await self.llm.aclose()


@pytest.fixture
async def rig_factory(fake_openai: FakeOpenAI) -> AsyncIterator[Any]:
    rigs: list[Rig] = []

    def make(voice: FakeVoice, tts: FakeTTS | None = None) -> Rig:
        rig = Rig(fake_openai, voice, tts)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        await rig.aclose()
    assert {t.get_name() for t in asyncio.all_tasks()} & {"agent-llm", "pipeline-tts"} == set()


async def test_tool_exit_with_valid_args(fake_openai: FakeOpenAI, rig_factory: Any) -> None:
    fake_openai.chat.append(
        sse(tool_chunks([("transfer", '{"department": "sales"}')], text="Connecting you now."))
    )
    rig = rig_factory(FakeVoice(["I want to buy something"]))
    out = await rig.run(exits=(TRANSFER,), greeting="Hello, Acme here.")
    assert out.outcome == "tool:transfer" and out.args == {"department": "sales"}
    assert rig.tts.texts == ["Hello, Acme here.", "Connecting you now."]
    assert len(rig.voice.sent) > 10  # audio really went out
    body = fake_openai.requests[0].body
    assert body["messages"][0] == {"role": "system", "content": "You are Acme's receptionist."}
    assert body["tools"][0]["function"]["parameters"]["required"] == ["department"]
    assert [m.role for m in out.transcript] == ["assistant", "user", "assistant"]
    assert "caller: I want to buy something" in out.transcript_text()
    assert out.metrics[0].llm_ttft_ms is not None and out.metrics[0].voice_to_voice_ms is not None


async def test_malformed_args_get_one_corrective_retry(
    fake_openai: FakeOpenAI, rig_factory: Any
) -> None:
    fake_openai.chat.append(sse(tool_chunks([("transfer", '{"dept": "sales"')])))
    fake_openai.chat.append(sse(tool_chunks([("transfer", '{"department": "billing"}')])))
    rig = rig_factory(FakeVoice(["billing please"]))
    out = await rig.run(exits=(TRANSFER,))
    assert out.outcome == "tool:transfer" and out.args == {"department": "billing"}
    retry_msgs = fake_openai.requests[1].body["messages"]
    assert retry_msgs[-1]["role"] == "tool" and "not valid JSON" in retry_msgs[-1]["content"]
    assert retry_msgs[-2]["tool_calls"][0]["id"] == retry_msgs[-1]["tool_call_id"]


async def test_malformed_twice_is_the_error_outcome(
    fake_openai: FakeOpenAI, rig_factory: Any
) -> None:
    fake_openai.chat.append(sse(tool_chunks([("transfer", '{"department": 7}')])))
    fake_openai.chat.append(sse(tool_chunks([("transfr", "{}")])))
    rig = rig_factory(FakeVoice(["billing please", "more"]))
    out = await rig.run(exits=(TRANSFER,))
    assert out.outcome == "error" and "unknown tool 'transfr'" in (out.error or "")
    assert "department must be string" in fake_openai.requests[1].body["messages"][-1]["content"]
    assert len(fake_openai.requests) == 2
    # Every tool call in the history has its answer (the history stays valid for the next step).
    ids = [c.id for m in rig.agent.history for c in m.tool_calls]
    answered = [m.tool_call_id for m in rig.agent.history if m.role == "tool"]
    assert ids == answered


async def test_slow_model_triggers_the_filler(fake_openai: FakeOpenAI, rig_factory: Any) -> None:
    fake_openai.chat.append(sse(text_chunks("Your order shipped."), first_delay=0.8))
    rig = rig_factory(FakeVoice(["where is my order", None]))
    out = await rig.run(filler="One moment please.", filler_after_s=0.2, give_up_s=10)
    assert rig.tts.texts == ["One moment please.", "Your order shipped."]
    assert out.metrics[0].filler and out.outcome == "noinput"


async def test_fast_model_says_no_filler(fake_openai: FakeOpenAI, rig_factory: Any) -> None:
    fake_openai.chat.append(sse(text_chunks("Right away.")))
    rig = rig_factory(FakeVoice(["hi", None]))
    await rig.run(filler="One moment please.", filler_after_s=2.0)
    assert rig.tts.texts == ["Right away."]


async def test_give_up_deadline(fake_openai: FakeOpenAI, rig_factory: Any) -> None:
    fake_openai.chat.append(hang(30))
    rig = rig_factory(FakeVoice(["hello?"]))
    out = await rig.run(filler="Hmm.", filler_after_s=0.1, give_up_s=0.5)
    assert out.outcome == "timeout" and "0.5 s" in (out.error or "")
    assert rig.tts.texts == ["Hmm."]


async def test_max_turns(fake_openai: FakeOpenAI, rig_factory: Any) -> None:
    async def echo(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return await sse(text_chunks(f"You said {last_user_text(body)}."))(request, body)

    fake_openai.chat_default = echo
    rig = rig_factory(FakeVoice(["one", "two", "three"]))
    out = await rig.run(max_turns=2)
    assert out.outcome == "max_turns" and out.turns == 2
    assert rig.tts.texts == ["You said one.", "You said two."]


async def test_silence_reprompts_then_noinput(fake_openai: FakeOpenAI, rig_factory: Any) -> None:
    rig = rig_factory(FakeVoice([None, "", None, None]))
    out = await rig.run(silence_s=3.5, silence_reprompts=("Are you there?", "Still there?"))
    assert out.outcome == "noinput"
    assert rig.tts.texts == ["Are you there?", "Still there?"]
    assert rig.voice.listens == [3.5, 3.5, 3.5]
    assert fake_openai.requests == []


async def test_llm_failure_is_the_error_outcome(fake_openai: FakeOpenAI, rig_factory: Any) -> None:
    fake_openai.chat.append(status(503, {"error": {"message": "overloaded"}}))
    rig = rig_factory(FakeVoice(["hi"]))
    out = await rig.run()
    assert out.outcome == "error" and "503" in (out.error or "")


async def test_hangup_and_overall_timeout(fake_openai: FakeOpenAI, rig_factory: Any) -> None:
    rig = rig_factory(FakeVoice(["<hangup>"]))
    assert (await rig.run()).outcome == "hangup"
    fake_openai.chat.append(hang(30))
    rig2 = rig_factory(FakeVoice(["hello"]))
    out = await rig2.run(timeout_s=0.5)
    assert out.outcome == "timeout"


async def test_context_append_and_reset(fake_openai: FakeOpenAI, rig_factory: Any) -> None:
    fake_openai.chat_default = sse(text_chunks("Okay."))
    rig = rig_factory(FakeVoice(["first step", None, "second step", None, "third step", None]))
    await rig.run()
    await rig.run(context="append")
    appended = [m["content"] for m in fake_openai.requests[-1].body["messages"]]
    assert "first step" in appended and "second step" in appended
    await rig.run(context="reset")
    reset = [m["content"] for m in fake_openai.requests[-1].body["messages"]]
    assert "first step" not in reset and "second step" not in reset and "third step" in reset
    assert reset[0] == "You are Acme's receptionist." and reset.count(reset[0]) == 1


async def test_barge_in_stops_audio_and_trims_history(
    fake_openai: FakeOpenAI, rig_factory: Any
) -> None:
    reply = "The first sentence is short. " + "This second sentence goes on and on " * 8 + "end."
    fake_openai.chat.append(sse(text_chunks(reply, size=6), delay=0.005))
    fake_openai.chat.append(sse(text_chunks("Sure, billing it is.")))
    voice = FakeVoice(["tell me everything", "actually, billing", None], barge_after_frames=40)
    rig = rig_factory(voice)
    out = await rig.run()
    assert out.outcome == "noinput"
    heard = out.transcript[1].content
    assert heard.startswith("The first sentence is short.") and heard.endswith("...")
    assert len(heard) < len(reply) / 2
    assert voice.cleared == 1
    # The frames stopped right away: far fewer than the whole reply's ~4 s (200 frames).
    assert len(voice.sent) < 40 + 10 + 60
    # The next request carries the trimmed reply, not the full one.
    msgs = fake_openai.requests[1].body["messages"]
    assert msgs[2] == {"role": "assistant", "content": heard}
    assert rig.pipeline.metrics == [] and out.metrics[0].interrupted


async def test_action_tool_result_returns_to_the_model(
    fake_openai: FakeOpenAI, rig_factory: Any
) -> None:
    seen: list[tuple[Any, Any]] = []

    async def balance(args: Any, metadata: Any) -> Any:
        seen.append((dict(args), dict(metadata)))
        return {"balance": 42}

    action = AgentAction(
        "get_balance",
        "Look up the balance",
        balance,
        {"type": "object", "properties": {"account": {"type": "string"}}, "required": ["account"]},
    )
    fake_openai.chat.append(sse(tool_chunks([("get_balance", '{"account": "A1"}')])))
    fake_openai.chat.append(sse(text_chunks("Your balance is 42 dollars.")))
    rig = rig_factory(FakeVoice(["what is my balance", None]))
    out = await rig.run(actions=(action,))
    assert seen == [({"account": "A1"}, {"customer": "c-42"})]
    tool_msg = fake_openai.requests[1].body["messages"][-1]
    assert tool_msg["role"] == "tool" and json.loads(tool_msg["content"]) == {"balance": 42}
    assert rig.tts.texts == ["Your balance is 42 dollars."] and out.outcome == "noinput"


async def test_http_action_and_agent_respond(fake_openai: FakeOpenAI) -> None:
    got: list[Any] = []

    async def crm(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.json_response({"status": "gold"})

    app = web.Application()
    app.router.add_post("/crm", crm)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    llm = OpenAIChatModel(model="m", base_url=fake_openai.url)
    try:
        action = http_action("crm", "Customer tier", f"http://127.0.0.1:{port}/crm")
        agent = Agent(llm, system_prompt="sys", actions=[action], metadata=lambda: {"vip": True})
        fake_openai.chat.append(sse(tool_chunks([("crm", "{}")])))
        fake_openai.chat.append(sse(text_chunks("You are a gold customer.")))
        assert await agent.respond("what tier am I?") == "You are a gold customer."
        assert got == [{"arguments": {}, "metadata": {"vip": True}}]
        fake_openai.chat.append(sse(text_chunks("Bye.")))
        assert await agent.respond("thanks") == "Bye."
        roles = [m["role"] for m in fake_openai.requests[-1].body["messages"]]
        assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
    finally:
        await llm.aclose()
        await runner.cleanup()


async def test_pipeline_respond_streams_before_the_model_finishes(fake_openai: FakeOpenAI) -> None:
    fake_openai.chat.append(
        sse(text_chunks("Hello there. " + "More words follow here. " * 3), delay=0.08)
    )
    voice = FakeVoice()
    llm = OpenAIChatModel(model="m", base_url=fake_openai.url)
    pipeline = VoicePipeline(voice, tts=FakeTTS(), llm=llm)  # type: ignore[arg-type]
    try:
        result = await pipeline.respond("hi")
    finally:
        await pipeline.aclose()
        await llm.aclose()
    assert not result.interrupted and result.heard.startswith("Hello there.")
    assert pipeline.metrics[0].voice_to_voice_ms is not None
    # The first audio frame left long before the last one (the stream took > 1 s).
    assert voice.sent_at[0] < voice.sent_at[-1] - 0.5
    assert pipeline.agent.history[-1].content == result.heard


async def test_dtmf_interrupt_and_barge_in_none() -> None:
    voice = FakeVoice()
    pipeline = VoicePipeline(voice, tts=FakeTTS(), llm=object())  # type: ignore[arg-type]
    task = asyncio.create_task(pipeline.speak(["A long prompt " * 20], barge_in=BargeIn("dtmf")))
    await asyncio.wait_for(voice.wait_frames(5), 10)
    voice.barge_in()  # speech must not interrupt a dtmf-only prompt
    await asyncio.sleep(0.1)
    assert not task.done()
    pipeline.interrupt()
    spoken = await asyncio.wait_for(task, 5)
    assert spoken.interrupted and len(voice.sent) < 50


async def test_a_cancelled_speech_drops_its_queued_audio() -> None:
    """The flow stops the agent while it speaks (an anytime key, a deadline): what was queued
    to the caller is dropped, as on a barge-in, not played out."""
    voice = FakeVoice()
    pipeline = VoicePipeline(voice, tts=FakeTTS(), llm=object())  # type: ignore[arg-type]
    task = asyncio.create_task(pipeline.speak(["A long prompt " * 20], barge_in=BargeIn("none")))
    await asyncio.wait_for(voice.wait_frames(5), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert voice.cleared == 1


def test_heard_tracker_cuts_at_the_word_reached() -> None:
    t = HeardTracker()
    t.begin(SpokenSpan("one two three four", total=1.0))
    for i in range(10):
        t.played(float(i) * 0.1, 0.1)
    t.begin("five six")
    t.played(1.0, 1.0)
    assert t.heard_at(0.5) == "one two..."
    assert t.heard_at(1.0) == "one two three four"
    assert t.heard_at(5.0) == "one two three four five six"
    assert t.heard_at(0.0) == ""
    t.begin("seven eight nine ten")  # still being synthesized: length estimated from the text
    t.played(2.0, 0.1)
    assert t.heard_at(2.1) == "one two three four five six"


class BrokenTTS(FakeTTS):
    async def synthesize(self, text: str, *, voice: str | None = None) -> Any:
        from voxflow.errors import ProviderTimeoutError

        yield b"\x00\x00" * 160
        raise ProviderTimeoutError("TTS: speech synthesis timed out after 1 s")


async def test_tts_failure_is_the_error_outcome(fake_openai: FakeOpenAI, rig_factory: Any) -> None:
    fake_openai.chat.append(sse(text_chunks("Hello.")))
    rig = rig_factory(FakeVoice(["hi"]), BrokenTTS())
    out = await rig.run()
    assert out.outcome == "error" and "TTS" in (out.error or "")


async def test_http_action_reads_at_most_its_limit_and_any_charset() -> None:
    """An endless answer was read whole into memory (it is now an error result past
    ACTION_MAX_BYTES); an answer in a charset Python does not know is read as UTF-8."""

    async def odd(request: web.Request) -> web.Response:
        return web.Response(body=b'{"tier": "gold"}', content_type="application/json",
                            charset="x-no-such-charset")  # fmt: skip

    async def huge(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for _ in range(40):  # 2.6 MB, more than the action reads
            await resp.write(b"x" * 65536)
        return resp

    async with local_http("/huge", huge) as url:
        huge_action = http_action("huge", "endless", f"{url}/huge")
        assert await huge_action.handler({}, {}) == {
            "error": f"response larger than {ACTION_MAX_BYTES} bytes"
        }
    async with local_http("/odd", odd) as url:
        odd_action = http_action("odd", "odd charset", f"{url}/odd")
        assert await odd_action.handler({}, {}) == {"tier": "gold"}
