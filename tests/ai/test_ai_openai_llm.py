"""OpenAIChatModel against a local server speaking OpenAI's SSE protocol."""

from __future__ import annotations

import json

import pytest
from ai_fakes import FakeOpenAI, hang, sse, status, text_chunks, tool_chunks

from voxflow.ai.openai_llm import ChatStreamAssembler, OpenAIChatModel, SseEvent, SseParser
from voxflow.errors import ProviderError, ProviderTimeoutError
from voxflow.voice.providers import ChatMessage, LlmDelta, ToolCall, ToolSpec

KEY = "sk-test-SECRET-123456"


async def collect(model: OpenAIChatModel, **kw: object) -> list[LlmDelta]:
    msgs = [ChatMessage("system", "be brief"), ChatMessage("user", "hello")]
    return [d async for d in model.stream_chat(msgs, **kw)]  # type: ignore[arg-type]


def make(fake: FakeOpenAI, timeout: float = 10.0) -> OpenAIChatModel:
    return OpenAIChatModel(model="test-model", base_url=fake.url, api_key=KEY, timeout=timeout)


async def test_streams_text_and_sends_wire_request(fake_openai: FakeOpenAI) -> None:
    fake_openai.chat.append(sse(text_chunks("Hello there. How can I help?", size=3)))
    model = make(fake_openai)
    try:
        deltas = await collect(
            model, tools=[ToolSpec("transfer", "to a human", {"type": "object"})]
        )
    finally:
        await model.aclose()
    assert "".join(d.text for d in deltas) == "Hello there. How can I help?"
    assert len([d for d in deltas if d.text]) > 3  # really streamed in pieces
    assert deltas[-1].done and not deltas[-1].tool_calls
    req = fake_openai.requests[0]
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert req.body["stream"] is True and req.body["model"] == "test-model"
    assert req.body["messages"][0] == {"role": "system", "content": "be brief"}
    assert req.body["tools"][0]["function"]["name"] == "transfer"


async def test_tool_call_deltas_are_assembled(fake_openai: FakeOpenAI) -> None:
    args1 = json.dumps({"department": "sales", "reason": "wants a quote"})
    args2 = json.dumps({"n": 3})
    fake_openai.chat.append(
        sse(tool_chunks([("transfer", args1), ("count", args2)], text="One moment."))
    )
    model = make(fake_openai)
    try:
        deltas = await collect(model)
    finally:
        await model.aclose()
    calls = [c for d in deltas for c in d.tool_calls]
    assert calls == [ToolCall("call_0", "transfer", args1), ToolCall("call_1", "count", args2)]
    assert "".join(d.text for d in deltas) == "One moment."
    assert deltas[-1].done


async def test_assistant_tool_history_goes_back_on_the_wire(fake_openai: FakeOpenAI) -> None:
    fake_openai.chat.append(sse(text_chunks("ok")))
    model = make(fake_openai)
    msgs = [
        ChatMessage("user", "weather?"),
        ChatMessage("assistant", "", tool_calls=(ToolCall("c1", "weather", '{"city":"Oslo"}'),)),
        ChatMessage("tool", '{"temp": 3}', tool_call_id="c1"),
    ]
    try:
        _ = [d async for d in model.stream_chat(msgs)]
    finally:
        await model.aclose()
    wire = fake_openai.requests[0].body["messages"]
    assert wire[1]["tool_calls"][0]["function"] == {
        "name": "weather",
        "arguments": '{"city":"Oslo"}',
    }
    assert wire[1]["content"] is None
    assert wire[2] == {"role": "tool", "content": '{"temp": 3}', "tool_call_id": "c1"}


@pytest.mark.parametrize("code", [500, 503, 401, 429])
async def test_http_errors_are_provider_errors_without_the_key(
    fake_openai: FakeOpenAI, code: int
) -> None:
    fake_openai.chat.append(status(code, {"error": {"message": f"boom {code} key={KEY}"}}))
    model = make(fake_openai)
    try:
        with pytest.raises(ProviderError) as info:
            await collect(model)
    finally:
        await model.aclose()
    assert f"HTTP {code}" in str(info.value) and f"boom {code}" in str(info.value)
    assert KEY not in str(info.value) and KEY not in repr(info.value)


async def test_timeout_before_first_byte(fake_openai: FakeOpenAI) -> None:
    fake_openai.chat.append(hang())
    model = make(fake_openai, timeout=0.3)
    try:
        with pytest.raises(ProviderTimeoutError, match="timed out"):
            await collect(model)
    finally:
        await model.aclose()


async def test_stall_mid_stream_times_out(fake_openai: FakeOpenAI) -> None:
    chunks = text_chunks("Hello there friend")
    fake_openai.chat.append(sse(chunks[:3] + chunks[3:], delay=0.0))
    fake_openai.chat.append(sse(chunks, delay=2.0))
    model = make(fake_openai, timeout=0.5)
    try:
        await collect(model)  # the first one is fine
        with pytest.raises(ProviderTimeoutError):
            await collect(model)
    finally:
        await model.aclose()


async def test_truncated_without_done_or_finish(fake_openai: FakeOpenAI) -> None:
    fake_openai.chat.append(sse(text_chunks("Hello there")[:-1], done=False))
    model = make(fake_openai)
    try:
        with pytest.raises(ProviderError, match="truncated"):
            await collect(model)
    finally:
        await model.aclose()


async def test_connection_cut_mid_stream(fake_openai: FakeOpenAI) -> None:
    fake_openai.chat.append(sse(text_chunks("Hello there")[:2], cut=True))
    model = make(fake_openai)
    try:
        with pytest.raises(ProviderError):
            await collect(model)
    finally:
        await model.aclose()


async def test_malformed_chunk(fake_openai: FakeOpenAI) -> None:
    fake_openai.chat.append(sse([text_chunks("Hi")[1], "{not json"]))
    model = make(fake_openai)
    try:
        with pytest.raises(ProviderError, match="malformed"):
            await collect(model)
    finally:
        await model.aclose()


async def test_error_object_in_stream(fake_openai: FakeOpenAI) -> None:
    fake_openai.chat.append(sse([{"error": {"message": "model overloaded"}}]))
    model = make(fake_openai)
    try:
        with pytest.raises(ProviderError, match="model overloaded"):
            await collect(model)
    finally:
        await model.aclose()


async def test_finish_reason_without_done_is_accepted(fake_openai: FakeOpenAI) -> None:
    fake_openai.chat.append(sse(text_chunks("Fine."), done=False))
    model = make(fake_openai)
    try:
        deltas = await collect(model)
    finally:
        await model.aclose()
    assert "".join(d.text for d in deltas) == "Fine." and deltas[-1].done


async def test_unreachable_server() -> None:
    model = OpenAIChatModel(model="m", base_url="http://127.0.0.1:9/v1", timeout=2.0)
    try:
        with pytest.raises(ProviderError, match="cannot reach"):
            await collect(model)
    finally:
        await model.aclose()


def test_sse_parser_handles_split_lines_crlf_and_comments() -> None:
    parser = SseParser()
    stream = b': keep-alive\r\ndata: {"a":\r\ndata: 1}\r\n\r\nevent: error\ndata: x\n\n'
    events = []
    for i in range(len(stream)):
        events += parser.feed(stream[i : i + 1])
    assert events == [SseEvent('{"a":\n1}'), SseEvent("x", "error")]


def test_assembler_tool_call_without_name_is_an_error() -> None:
    asm = ChatStreamAssembler()
    asm.feed_chunk(
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]},
                }
            ]
        }
    )
    with pytest.raises(ProviderError, match="without a function name"):
        asm.finish()
