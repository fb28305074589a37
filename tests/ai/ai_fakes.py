"""A local OpenAI-compatible server (aiohttp, 127.0.0.1, port 0) speaking the real wire protocol:
SSE chat completions with tool-call deltas and ``data: [DONE]``, multipart transcriptions,
chunked pcm speech. Handlers are scripted per test."""

from __future__ import annotations

import array
import asyncio
import io
import json
import wave
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from voxflow.agent.call_agent import CallAgent
from voxflow.ai.openai_llm import OpenAIChatModel
from voxflow.telephony.state import CallMetadata
from voxflow.voice.providers import Transcript

Handler = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


def text_chunks(text: str, size: int = 4) -> list[dict[str, Any]]:
    """Chat completion chunks streaming ``text`` ``size`` characters at a time, then stop."""
    out: list[dict[str, Any]] = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    for i in range(0, len(text), size):
        out.append({"choices": [{"index": 0, "delta": {"content": text[i : i + size]}}]})
    out.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return out


def tool_chunks(
    calls: Sequence[tuple[str, str]], *, text: str = "", split: int = 5
) -> list[dict[str, Any]]:
    """Chunks with optional text then tool calls ``(name, arguments_json)`` whose arguments arrive
    in pieces of ``split`` characters, as OpenAI streams them."""
    out = text_chunks(text)[:-1] if text else []
    for index, (name, args) in enumerate(calls):
        first = {
            "index": index,
            "id": f"call_{index}",
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        out.append({"choices": [{"index": 0, "delta": {"tool_calls": [first]}}]})
        for i in range(0, len(args), split):
            piece = {"index": index, "function": {"arguments": args[i : i + split]}}
            out.append({"choices": [{"index": 0, "delta": {"tool_calls": [piece]}}]})
    out.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    return out


def sse(
    chunks: Sequence[dict[str, Any] | str],
    *,
    delay: float = 0.0,
    first_delay: float = 0.0,
    done: bool = True,
    cut: bool = False,
) -> Handler:
    """A handler streaming ``chunks`` as SSE ``data:`` events (strings are sent verbatim as the
    data); ``cut`` drops the connection before the stream ends."""

    async def handler(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if first_delay:
            await asyncio.sleep(first_delay)
        for i, chunk in enumerate(chunks):
            data = chunk if isinstance(chunk, str) else json.dumps(chunk)
            await resp.write(f"data: {data}\n\n".encode())
            if delay and i + 1 < len(chunks):
                await asyncio.sleep(delay)
        if cut:
            assert request.transport is not None
            request.transport.close()
            return resp
        if done:
            await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    return handler


def status(code: int, body: dict[str, Any] | str) -> Handler:
    async def handler(request: web.Request, _body: dict[str, Any]) -> web.StreamResponse:
        if isinstance(body, str):
            return web.Response(status=code, text=body)
        return web.json_response(body, status=code)

    return handler


def hang(seconds: float = 60.0) -> Handler:
    async def handler(request: web.Request, _body: dict[str, Any]) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.Response(status=500)

    return handler


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeOpenAI:
    """Scripted OpenAI-compatible server. ``chat``/``speech``/``transcribe`` are FIFO handler
    queues; when a queue is empty its ``*_default`` handler answers (or 500)."""

    chat: list[Handler] = field(default_factory=list)
    speech: list[Handler] = field(default_factory=list)
    transcribe: list[Handler] = field(default_factory=list)
    chat_default: Handler | None = None
    speech_default: Handler | None = None
    transcribe_default: Handler | None = None
    requests: list[Recorded] = field(default_factory=list)
    runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _dispatch(
        self,
        request: web.Request,
        queue: list[Handler],
        default: Handler | None,
        body: dict[str, Any],
    ) -> web.StreamResponse:
        self.requests.append(Recorded(request.path, dict(request.headers), body))
        if queue:
            return await queue.pop(0)(request, body)
        if default is not None:
            return await default(request, body)
        return web.json_response({"error": {"message": "no scripted answer"}}, status=500)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        return await self._dispatch(request, self.chat, self.chat_default, body)

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        return await self._dispatch(request, self.speech, self.speech_default, body)

    async def _transcribe(self, request: web.Request) -> web.StreamResponse:
        form: dict[str, Any] = {}
        reader = await request.multipart()
        async for part in reader:
            if part.filename:  # type: ignore[union-attr]
                form[part.name or "file"] = {  # type: ignore[union-attr]
                    "filename": part.filename,  # type: ignore[union-attr]
                    "content_type": part.headers.get("Content-Type"),
                    "data": await part.read(),  # type: ignore[union-attr]
                }
            else:
                form[part.name or ""] = await part.text()  # type: ignore[union-attr]
        return await self._dispatch(request, self.transcribe, self.transcribe_default, form)


def last_user_text(body: dict[str, Any]) -> str:
    for m in reversed(body["messages"]):
        if m["role"] == "user":
            return str(m["content"])
    return ""


class FakeTTS:
    """Instant TTS: 8 kHz pcm16, ``ms_per_char`` of audio per character; records what it said."""

    sample_rate = 8000

    def __init__(self, ms_per_char: int = 10, delay: float = 0.0) -> None:
        self.ms_per_char = ms_per_char
        self.delay = delay
        self.texts: list[str] = []

    async def synthesize(self, text: str, *, voice: str | None = None) -> Any:
        self.texts.append(text)
        if self.delay:
            await asyncio.sleep(self.delay)
        total = len(text) * self.ms_per_char * 8 * 2
        piece = 320 * 3
        for i in range(0, total, piece):
            yield b"\x10\x00" * (min(piece, total - i) // 2)


class CallHungUp(Exception):
    pass


class FakeVoice:
    """A CallVoice stand-in for pipeline unit tests: ``utterances`` are what ``listen`` returns in
    order (None = silence, the string "<hangup>" = the caller hangs up); ``barge_after_frames``
    makes the caller start speaking once that many frames were sent."""

    def __init__(
        self, utterances: Sequence[str | None] = (), *, barge_after_frames: int | None = None
    ) -> None:
        self.utterances = list(utterances)
        self.sent: list[Any] = []
        self.sent_at: list[float] = []
        self.barge_after_frames = barge_after_frames
        self._speech = asyncio.Event()
        self.cleared = 0
        self.listens: list[float] = []
        self._waiters: list[tuple[int, asyncio.Event]] = []

    async def wait_frames(self, n: int) -> None:
        """Return once ``n`` frames have been sent."""
        event = asyncio.Event()
        self._waiters.append((n, event))
        if len(self.sent) >= n:
            event.set()
        await event.wait()

    async def listen(self, timeout: float = 10.0, **_: Any) -> str | None:
        from voxflow.errors import CallEndedError

        self.listens.append(timeout)
        self._speech.clear()
        await asyncio.sleep(0)
        if not self.utterances:
            raise CallEndedError("no more scripted utterances")
        item = self.utterances.pop(0)
        if item == "<hangup>":
            raise CallEndedError("caller hung up")
        return item

    async def recognize(self, timeout: float = 10.0, **options: Any) -> Transcript | None:
        text = await self.listen(timeout, **options)
        return None if text is None else Transcript(text)

    async def send_audio(self, data: Any) -> None:
        import time

        self.sent.append(data)
        self.sent_at.append(time.monotonic())
        for n, event in self._waiters:
            if len(self.sent) >= n:
                event.set()
        if self.barge_after_frames is not None and len(self.sent) >= self.barge_after_frames:
            self.barge_after_frames = None
            self._speech.set()

    async def wait_for_speech(self, min_speech_ms: int = 200) -> None:
        await self._speech.wait()

    def barge_in(self) -> None:
        self._speech.set()

    def clear_audio(self) -> None:
        self.cleared += 1

    async def say(self, text: str, **_: Any) -> Any:
        raise AssertionError("the pipeline streams audio itself")

    def audio_stream(self) -> Any:
        raise AssertionError("not used")

    def on_dtmf(self, digit: str) -> None:
        pass

    async def aclose(self) -> None:
        pass


class ScriptedCall:
    """What CallAgent needs from a session, over a scripted voice (no ARI: the sandbox tests
    cover the real path)."""

    def __init__(self, voice: FakeVoice, llm: OpenAIChatModel) -> None:
        self.id = "c1"
        self.ended = False
        self.metadata = CallMetadata()
        self.voice = voice
        self.hangup_callbacks: list[Any] = []
        self.agent = CallAgent(self, llm, tts=FakeTTS(ms_per_char=1), stt=object())  # type: ignore[arg-type]

    def on_hangup(self, callback: Any) -> Any:
        self.hangup_callbacks.append(callback)
        return callback

    async def wait_answered(self, timeout: float | None = None) -> None:
        return None

    async def call_voice(self) -> FakeVoice:
        return self.voice


def heard(text: str) -> Handler:
    """The local server's transcription: it checks that what it got is the caller's speech (a
    WAV of at least half a second with sound in it, sent by ``OpenAISTT`` over HTTP) and
    answers ``text`` (else an empty transcript)."""

    async def handler(request: web.Request, form: dict[str, Any]) -> web.StreamResponse:
        with wave.open(io.BytesIO(form["file"]["data"])) as w:
            pcm = w.readframes(w.getnframes())
            seconds = w.getnframes() / w.getframerate()
        loud = max(abs(v) for v in array.array("h", pcm))
        if seconds < 0.5 or loud < 1000:
            return web.json_response({"text": ""})
        return web.json_response({"text": text})

    return handler
