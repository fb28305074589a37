"""Benchmark the AI turn: framework overhead and barge-in stop latency, as distributions.

* overhead: end of caller speech (``listen`` returns) -> first TTS frame handed to the wire
  (``send_audio``), with instant providers (an in-process LLM that answers at once, a TTS that
  yields audio at once). Also measured with the LLM behind a local OpenAI-compatible HTTP server
  (real SSE parsing, aiohttp) for reference.
* barge-in: caller speech detected (``wait_for_speech`` returns) -> no more frames handed over and
  the model and TTS tasks cancelled (``speak`` returned); plus the audio still queued ahead of the
  wire at that moment (bounded by ``max_lead_ms``; dropped when the voice has ``clear_audio``).

Run: ``.venv/bin/python bench/ai_turn.py [--turns 300]``. Goals: overhead p99 <= 20 ms, barge-in
p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web
from loop_probe import BareLoopProbe

from voxflow.agent.agent import Agent
from voxflow.agent.pipeline import VoicePipeline
from voxflow.ai.openai_llm import OpenAIChatModel
from voxflow.voice.chunk import AudioChunk
from voxflow.voice.providers import ChatMessage, LlmDelta, ModelOptions, ToolSpec, Transcript

REPLY = "Thanks for calling. Your order shipped yesterday and should arrive on Friday."


class InstantLLM:
    async def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        options: ModelOptions | None = None,
    ) -> AsyncIterator[LlmDelta]:
        for word in REPLY.split(" "):
            yield LlmDelta(text=word + " ")
        yield LlmDelta(done=True)


class InstantTTS:
    sample_rate = 8000

    async def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
        for _ in range(len(text)):  # 20 ms of audio per character
            yield b"\x00\x01" * 160  # 20 ms


class WireVoice:
    """Records when the first frame reaches the wire; the caller may barge in on demand."""

    def __init__(self) -> None:
        self.first_frame_at: float | None = None
        self.frames = 0
        self.last_frame_at = 0.0
        self.speech = asyncio.Event()
        self.speech_at = 0.0
        self.barge_after: int | None = None

    async def listen(self, timeout: float = 10.0, **_: Any) -> str | None:
        return "where is my order"

    async def recognize(self, timeout: float = 10.0, **_: Any) -> Transcript:
        return Transcript("where is my order")

    async def send_audio(self, data: AudioChunk | bytes) -> None:
        now = time.perf_counter()
        if self.first_frame_at is None:
            self.first_frame_at = now
        self.frames += 1
        self.last_frame_at = now
        if self.barge_after is not None and self.frames >= self.barge_after:
            self.barge_after = None
            self.speech_at = time.perf_counter()
            self.speech.set()

    async def wait_for_speech(self, min_speech_ms: int = 200) -> None:
        await self.speech.wait()


def dist(name: str, values: list[float], goal: float | None = None) -> str:
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    med = statistics.median(values)
    verdict = "" if goal is None else ("  OK" if p99 <= goal else "  OVER GOAL")
    goal_s = "" if goal is None else f" (goal p99 <= {goal:g})"
    return (
        f"{name:<44} n={len(values):4d} median={med:7.2f} ms  p99={p99:7.2f} ms"
        f"  max={values[-1]:7.2f} ms{goal_s}{verdict}"
    )


async def overhead(turns: int, llm: Any) -> list[float]:
    out: list[float] = []
    for _ in range(turns):
        voice = WireVoice()
        voice.barge_after = 1  # stop after the first frame: only its timing matters here
        pipe = VoicePipeline(voice, tts=InstantTTS(), agent=Agent(llm))  # type: ignore[arg-type]
        text = await pipe.listen(5)
        t_end_of_speech = time.perf_counter()
        await pipe.respond(text or "")
        assert voice.first_frame_at is not None
        out.append((voice.first_frame_at - t_end_of_speech) * 1000)
        await pipe.aclose()
    return out


async def barge_in(turns: int) -> tuple[list[float], list[float]]:
    stop: list[float] = []
    queued: list[float] = []
    for i in range(turns):
        voice = WireVoice()
        voice.barge_after = 5 + i % 20
        agent = Agent(InstantLLM())
        pipe = VoicePipeline(voice, tts=InstantTTS(), agent=agent)  # type: ignore[arg-type]
        result = await pipe.respond("tell me")
        t_done = time.perf_counter()
        assert result.interrupted
        frames_then = voice.frames
        await asyncio.sleep(0.03)
        assert voice.frames == frames_then, "frames kept flowing after barge-in"
        stop.append((max(t_done, voice.last_frame_at) - voice.speech_at) * 1000)
        queued.append(pipe.max_lead * 1000)
        await pipe.aclose()
    return stop, queued


async def http_llm_server() -> tuple[web.AppRunner, str]:
    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for word in REPLY.split(" "):
            chunk = {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await resp.write(b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n')
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/v1"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[0]})  # this process and the bare-loop probe share one core
    with BareLoopProbe(cpus[0]) as probe:
        await overhead(20, InstantLLM())  # warm up
        instant = await overhead(args.turns, InstantLLM())
        runner, url = await http_llm_server()
        llm = OpenAIChatModel(model="bench", base_url=url)
        try:
            await overhead(20, llm)
            http = await overhead(args.turns, llm)
        finally:
            await llm.aclose()
            await runner.cleanup()
        stop, queued = await barge_in(args.turns)
    print(probe.describe())
    print(dist("turn overhead, instant providers", instant, 20))
    print(dist("turn overhead, LLM over local HTTP/SSE", http))
    print(dist("barge-in: speech -> sending stopped", stop, 100))
    print(dist("barge-in: audio queued ahead (max_lead)", queued))
    print(
        f"ratio p99 overhead/goal = {sorted(instant)[int(len(instant) * 0.99)] / 20:.3f}, "
        f"barge-in p99/goal = {sorted(stop)[int(len(stop) * 0.99)] / 100:.3f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
