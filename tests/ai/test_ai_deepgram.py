"""DeepgramSTT against a local websockets server speaking Deepgram's live protocol."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

from voxflow.ai.deepgram_stt import DeepgramSTT
from voxflow.errors import ProviderError, ProviderTimeoutError

KEY = "dg-SECRET-key-42"


def results(text: str, *, final: bool, speech_final: bool = False, conf: float = 0.9) -> str:
    return json.dumps(
        {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": 1.0,
            "start": 0.0,
            "is_final": final,
            "speech_final": speech_final,
            "channel": {"alternatives": [{"transcript": text, "confidence": conf, "words": []}]},
        }
    )


METADATA = json.dumps({"type": "Metadata", "request_id": "r1", "duration": 1.0, "channels": 1})

Behaviour = Callable[[ServerConnection, "FakeDeepgram"], Awaitable[None]]


@dataclass
class FakeDeepgram:
    behaviour: Behaviour
    audio: bytearray = field(default_factory=bytearray)
    paths: list[str] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    server: Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/v1/listen"

    async def handler(self, ws: ServerConnection) -> None:
        self.paths.append(ws.request.path)  # type: ignore[union-attr]
        self.auth.append(ws.request.headers.get("Authorization"))  # type: ignore[union-attr]
        await self.behaviour(ws, self)


async def well_behaved(ws: ServerConnection, fake: FakeDeepgram) -> None:
    """Interim then final results while audio flows; flush and close on CloseStream."""
    sent_interim = False
    async for msg in ws:
        if isinstance(msg, bytes):
            fake.audio += msg
            if len(fake.audio) >= 3200 and not sent_interim:
                sent_interim = True
                await ws.send(results("I need", final=False))
                await ws.send(results("I need billing", final=True, conf=0.8))
        elif json.loads(msg)["type"] == "CloseStream":
            await ws.send(results("please", final=True, speech_final=True, conf=1.0))
            await ws.send(METADATA)
            await ws.close()
            return


@pytest.fixture
async def deepgram() -> AsyncIterator[Callable[[Behaviour], Awaitable[FakeDeepgram]]]:
    servers: list[Server] = []

    async def start(behaviour: Behaviour) -> FakeDeepgram:
        fake = FakeDeepgram(behaviour)
        fake.server = await serve(fake.handler, "127.0.0.1", 0)
        servers.append(fake.server)
        return fake

    yield start
    for s in servers:
        s.close()
        await s.wait_closed()


async def run_utterance(
    stt: DeepgramSTT, n_frames: int = 10, min_confidence: float | None = None
) -> Any:
    stream = await stt.open_stream(phrases=["billing"], min_confidence=min_confidence)
    try:
        for _ in range(n_frames):
            await stream.feed(b"\x01\x00" * 320)
            await asyncio.sleep(0.005)
        return await stream.finish()
    finally:
        await stream.aclose()


async def test_live_stream_final_transcript(deepgram: Any) -> None:
    fake = await deepgram(well_behaved)
    stt = DeepgramSTT(api_key=KEY, base_url=fake.url, sample_rate=16000, model="nova-2")
    result = await run_utterance(stt)
    assert result.text == "I need billing please"
    assert result.confidence == pytest.approx(0.9)
    assert fake.auth == [f"Token {KEY}"]
    assert len(fake.audio) == 10 * 640
    query = parse_qs(urlsplit(fake.paths[0]).query)
    assert query["encoding"] == ["linear16"] and query["sample_rate"] == ["16000"]
    assert query["keywords"] == ["billing"] and query["channels"] == ["1"]


async def test_a_recognition_under_its_min_confidence_is_rejected(deepgram: Any) -> None:
    """Deepgram's confidence (the finals' mean, 0.9 here) against this recognition's
    threshold: under it the text is "" (a flow's nomatch) and what was heard stays."""
    fake = await deepgram(well_behaved)
    stt = DeepgramSTT(api_key=KEY, base_url=fake.url, sample_rate=16000, model="nova-2")
    rejected = await run_utterance(stt, min_confidence=0.95)
    assert rejected.text == "" and rejected.confidence == pytest.approx(0.9)
    assert rejected.alternatives == ("I need billing please",)
    accepted = await run_utterance(stt, min_confidence=0.85)
    assert accepted.text == "I need billing please"


async def test_refused_handshake_is_provider_error(deepgram: Any) -> None:
    async def refuse(ws: ServerConnection, fake: FakeDeepgram) -> None:
        raise AssertionError("not reached")

    def reject(conn: ServerConnection, request: Any) -> Any:
        return conn.respond(401, "Unauthorized\n")

    fake = FakeDeepgram(refuse)
    fake.server = await serve(fake.handler, "127.0.0.1", 0, process_request=reject)
    stt = DeepgramSTT(api_key=KEY, base_url=fake.url)
    try:
        with pytest.raises(ProviderError, match="HTTP 401") as info:
            await stt.open_stream()
        assert KEY not in str(info.value)
    finally:
        fake.server.close()
        await fake.server.wait_closed()


async def test_error_close_mid_stream(deepgram: Any) -> None:
    async def fail(ws: ServerConnection, fake: FakeDeepgram) -> None:
        await ws.recv()
        await ws.close(1011, "DATA-0000 bad audio")

    fake = await deepgram(fail)
    stt = DeepgramSTT(api_key=KEY, base_url=fake.url)
    with pytest.raises(ProviderError, match="1011 DATA-0000"):
        await run_utterance(stt)


async def test_malformed_message(deepgram: Any) -> None:
    async def garbage(ws: ServerConnection, fake: FakeDeepgram) -> None:
        await ws.recv()
        await ws.send("{not json")
        await ws.wait_closed()

    fake = await deepgram(garbage)
    stt = DeepgramSTT(api_key=KEY, base_url=fake.url)
    with pytest.raises(ProviderError, match="malformed"):
        await run_utterance(stt)


async def test_early_normal_close_is_truncation(deepgram: Any) -> None:
    async def early(ws: ServerConnection, fake: FakeDeepgram) -> None:
        await ws.recv()
        await ws.send(results("half", final=True))
        await ws.close()

    fake = await deepgram(early)
    stt = DeepgramSTT(api_key=KEY, base_url=fake.url)
    with pytest.raises(ProviderError, match="closed"):
        await run_utterance(stt)


async def test_no_answer_to_close_stream_times_out(deepgram: Any) -> None:
    async def silent(ws: ServerConnection, fake: FakeDeepgram) -> None:
        async for _ in ws:
            pass

    fake = await deepgram(silent)
    stt = DeepgramSTT(api_key=KEY, base_url=fake.url, timeout=0.5)
    with pytest.raises(ProviderTimeoutError, match="CloseStream"):
        await run_utterance(stt, n_frames=2)


async def test_error_message(deepgram: Any) -> None:
    async def err(ws: ServerConnection, fake: FakeDeepgram) -> None:
        await ws.recv()
        await ws.send(json.dumps({"type": "Error", "description": "quota exceeded"}))
        await ws.wait_closed()

    fake = await deepgram(err)
    stt = DeepgramSTT(api_key=KEY, base_url=fake.url)
    with pytest.raises(ProviderError, match="quota exceeded"):
        await run_utterance(stt)


async def test_unreachable() -> None:
    stt = DeepgramSTT(api_key=KEY, base_url="ws://127.0.0.1:9/v1/listen", timeout=2)
    with pytest.raises(ProviderError, match="cannot reach"):
        await stt.open_stream()
