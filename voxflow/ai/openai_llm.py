"""OpenAI-compatible chat completions with SSE streaming and tool calls.

Works with OpenAI, Ollama (``http://127.0.0.1:11434/v1``), vLLM, llama.cpp's server and similar:
only ``POST {base_url}/chat/completions`` with ``stream: true`` is used. The wire handling is pure
(:class:`SseParser` bytes -> events, :class:`ChatStreamAssembler` chunks -> :class:`LlmDelta`);
:class:`OpenAIChatModel` is the thin aiohttp edge. Tool-call deltas are assembled by ``index`` and
yielded once the choice finishes. Errors: non-2xx, a stream that ends before ``[DONE]`` or a
``finish_reason``, malformed chunks and an ``error`` object -> ProviderError; no data for
``timeout`` seconds -> ProviderTimeoutError. Messages never contain the API key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from voxflow.ai._http import HttpProvider
from voxflow.ai.config import Secret
from voxflow.errors import ProviderError
from voxflow.voice.providers import ChatMessage, LlmDelta, ModelOptions, ToolCall, ToolSpec

__all__ = [
    "ChatStreamAssembler",
    "OpenAIChatModel",
    "SseEvent",
    "SseParser",
    "messages_to_wire",
    "tools_to_wire",
]

log = logging.getLogger("voxflow.ai.llm")

_MAX_LINE = 1 << 20  # a single SSE line above 1 MiB is not a chat stream


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One server-sent event: ``data`` lines joined by newlines."""

    data: str
    event: str = "message"


@dataclass(slots=True)
class SseParser:
    """Incremental ``text/event-stream`` parser: ``feed(bytes)`` returns the complete events."""

    _buf: bytes = b""
    _data: list[str] = field(default_factory=list)
    _event: str = "message"

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self._buf += chunk
        out: list[SseEvent] = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > _MAX_LINE:
                    raise ProviderError("LLM stream: line too long (not an event stream?)")
                return out
            line = self._buf[:nl].rstrip(b"\r")
            self._buf = self._buf[nl + 1 :]
            event = self._line(line.decode("utf-8", "replace"))
            if event is not None:
                out.append(event)

    def close(self) -> list[SseEvent]:
        """End of input: dispatch a pending event that lacked its final blank line."""
        out = self.feed(b"\n") if self._buf else []
        if self._data:
            out.append(SseEvent("\n".join(self._data), self._event))
            self._data = []
        return out

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            if not self._data:
                self._event = "message"
                return None
            event = SseEvent("\n".join(self._data), self._event)
            self._data, self._event = [], "message"
            return event
        if line.startswith(":"):
            return None  # comment / keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ChatStreamAssembler:
    """Turns parsed chat-completion chunks into :class:`LlmDelta` values (pure, no I/O)."""

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}
        self.finish_reason: str | None = None
        self.done = False
        self._counter = 0

    def feed_event(self, event: SseEvent) -> list[LlmDelta]:
        """Handle one SSE event; ``[DONE]`` ends the stream."""
        data = event.data.strip()
        if not data:
            return []
        if data == "[DONE]":
            return self.finish()
        try:
            obj = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ProviderError(
                f"LLM stream: malformed chunk ({exc.msg}): {data[:120]!r}"
            ) from None
        if event.event == "error" or (isinstance(obj, dict) and "error" in obj):
            err = obj.get("error", obj) if isinstance(obj, dict) else obj
            msg = err.get("message", err) if isinstance(err, dict) else err
            raise ProviderError(f"LLM stream error: {str(msg)[:300]}")
        return self.feed_chunk(obj)

    def feed_chunk(self, obj: Any) -> list[LlmDelta]:
        """Handle one ``chat.completion.chunk`` (or a whole ``chat.completion``) object."""
        if not isinstance(obj, dict) or not isinstance(obj.get("choices", []), list):
            raise ProviderError(f"LLM stream: unexpected chunk {str(obj)[:120]!r}")
        out: list[LlmDelta] = []
        for choice in obj.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if delta is None:
                delta = choice.get("message")  # non-streaming answer
            if isinstance(delta, dict):
                text = delta.get("content")
                if isinstance(text, str) and text:
                    out.append(LlmDelta(text=text))
                for tc in delta.get("tool_calls") or []:
                    self._add_tool_delta(tc)
            elif delta is not None:
                raise ProviderError("LLM stream: choice delta is not an object")
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        return out

    def _add_tool_delta(self, tc: Any) -> None:
        if not isinstance(tc, dict):
            raise ProviderError("LLM stream: tool call delta is not an object")
        index = tc.get("index")
        if not isinstance(index, int):
            index = len(self._calls) if tc.get("id") else max(self._calls, default=0)
        part = self._calls.setdefault(index, _PartialCall())
        if tc.get("id"):
            part.id = str(tc["id"])
        fn = tc.get("function") or {}
        if not isinstance(fn, dict):
            raise ProviderError("LLM stream: tool call function is not an object")
        if fn.get("name"):
            part.name += str(fn["name"]) if not part.name else ""
        args = fn.get("arguments")
        if isinstance(args, str):
            part.arguments.append(args)
        elif isinstance(args, dict):  # some servers send parsed arguments
            part.arguments.append(json.dumps(args))

    def finish(self) -> list[LlmDelta]:
        """End of stream: the assembled tool calls (if any) and the final ``done`` delta."""
        if self.done:
            return []
        self.done = True
        calls: list[ToolCall] = []
        for index in sorted(self._calls):
            part = self._calls[index]
            if not part.name:
                raise ProviderError("LLM stream: tool call without a function name")
            self._counter += 1
            call_id = part.id or f"call_{index}_{self._counter}"
            calls.append(ToolCall(id=call_id, name=part.name, arguments="".join(part.arguments)))
        self._calls.clear()
        out = [LlmDelta(tool_calls=tuple(calls))] if calls else []
        out.append(LlmDelta(done=True))
        return out


def messages_to_wire(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Chat messages in the OpenAI JSON shape."""
    out: list[dict[str, Any]] = []
    for m in messages:
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            item["content"] = m.content or None
            item["tool_calls"] = [
                {
                    "id": tc.id,
                    "type": "function",
                    "function": {"name": tc.name, "arguments": tc.arguments or "{}"},
                }
                for tc in m.tool_calls
            ]
        if m.tool_call_id is not None:
            item["tool_call_id"] = m.tool_call_id
        if m.name is not None:
            item["name"] = m.name
        out.append(item)
    return out


def tools_to_wire(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Tool specs in the OpenAI ``tools`` shape."""
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": dict(t.parameters) or {"type": "object", "properties": {}},
            },
        }
        for t in tools
    ]


class OpenAIChatModel(HttpProvider):
    """A :class:`~voxflow.voice.providers.LanguageModel` over an OpenAI-compatible
    ``/chat/completions``.

    ``timeout`` bounds the wait for each piece of the stream (time to first byte and every gap);
    the agent bounds whole turns.
    """

    kind = "LLM"

    def __init__(
        self,
        *,
        model: str,
        base_url: str = "https://api.openai.com/v1",
        api_key: Secret | str | None = None,
        timeout: float = 30.0,
        temperature: float | None = None,
        max_tokens: int | None = None,
        extra_body: dict[str, Any] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(base_url=base_url, api_key=api_key, timeout=timeout, session=session)
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})

    def request_body(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        options: ModelOptions | None = None,
    ) -> dict[str, Any]:
        """The JSON body of one streamed request (``options`` override the model and the
        temperature for this request)."""
        opts = options or ModelOptions()
        body: dict[str, Any] = {
            "model": opts.model or self.model,
            "messages": messages_to_wire(messages),
            "stream": True,
        }
        if tools:
            body["tools"] = tools_to_wire(tools)
        temperature = opts.temperature if opts.temperature is not None else self.temperature
        if temperature is not None:
            body["temperature"] = temperature
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        body.update(self.extra_body)
        return body

    async def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        options: ModelOptions | None = None,
    ) -> AsyncIterator[LlmDelta]:
        """Yield text deltas as they stream, then the tool calls, then ``LlmDelta(done=True)``."""
        session = self._get_session()
        url = f"{self.base_url}/chat/completions"
        headers = self._headers()
        headers["Accept"] = "text/event-stream"
        try:
            async with session.post(
                url,
                json=self.request_body(messages, tools, options),
                headers=headers,
                timeout=self._client_timeout(),
            ) as resp:
                await self._raise_for_status(resp)
                ctype = resp.headers.get("Content-Type", "")
                if "application/json" in ctype:
                    async for delta in self._whole_answer(resp):
                        yield delta
                    return
                parser = SseParser()
                assembler = ChatStreamAssembler()
                async for chunk in resp.content.iter_any():
                    for event in parser.feed(chunk):
                        for delta in assembler.feed_event(event):
                            yield delta
                        if assembler.done:
                            return
                for event in parser.close():
                    for delta in assembler.feed_event(event):
                        yield delta
                if assembler.done:
                    return
                if assembler.finish_reason is None:
                    raise self._error("stream ended before [DONE] (truncated)")
                for delta in assembler.finish():
                    yield delta
        except ProviderError as exc:
            clean = self.redact(str(exc))
            if clean != str(exc):
                raise ProviderError(clean) from None
            raise
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._map_exception(exc, "chat completion") from None

    async def _whole_answer(self, resp: aiohttp.ClientResponse) -> AsyncIterator[LlmDelta]:
        try:
            obj = await resp.json(content_type=None)
        except ValueError:
            raise self._error("malformed JSON answer") from None
        if isinstance(obj, dict) and "error" in obj:
            raise self._error(f"error answer: {str(obj['error'])[:300]}")
        assembler = ChatStreamAssembler()
        for delta in assembler.feed_chunk(obj):
            yield delta
        for delta in assembler.finish():
            yield delta
