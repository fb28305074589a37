"""OpenAI-compatible TTS (/audio/speech, chunked pcm) and STT (/audio/transcriptions, multipart)."""

from __future__ import annotations

import asyncio
import io
import math
import struct
import wave
from typing import Any

import pytest
from ai_fakes import FakeOpenAI, hang, status
from aiohttp import web

from voxflow.ai.openai_stt import OpenAISTT, pcm16_to_wav, segments_confidence
from voxflow.ai.openai_tts import OpenAITTS, WavHeaderStripper
from voxflow.errors import ConfigError, ProviderError, ProviderTimeoutError

KEY = "sk-audio-SECRET-987"


def tone(n_samples: int) -> bytes:
    return b"".join(struct.pack("<h", int(8000 * math.sin(i / 10))) for i in range(n_samples))


def chunked_pcm(pcm: bytes, *, piece: int = 999, delay: float = 0.0, cut: bool = False) -> Any:
    async def handler(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(pcm), piece):
            await resp.write(pcm[i : i + piece])
            if delay:
                await asyncio.sleep(delay)
        if cut:
            assert request.transport is not None
            request.transport.close()
            return resp
        await resp.write_eof()
        return resp

    return handler


async def synth(tts: OpenAITTS, text: str = "Hello caller.") -> list[bytes]:
    return [c async for c in tts.synthesize(text)]


async def test_tts_streams_whole_samples(fake_openai: FakeOpenAI) -> None:
    pcm = tone(24000)  # one second at 24 kHz
    # odd pieces (samples split), a pause after each so they do not all arrive as one read
    fake_openai.speech.append(chunked_pcm(pcm, piece=999, delay=0.002))
    tts = OpenAITTS(base_url=fake_openai.url, api_key=KEY, voice="nova", model="tts-x")
    try:
        chunks = await synth(tts)
    finally:
        await tts.aclose()
    assert b"".join(chunks) == pcm
    assert len(chunks) > 1 and all(len(c) % 2 == 0 for c in chunks)
    req = fake_openai.requests[0]
    assert req.body == {
        "model": "tts-x",
        "input": "Hello caller.",
        "voice": "nova",
        "response_format": "pcm",
    }
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert tts.sample_rate == 24000


async def test_tts_first_chunk_arrives_before_the_end(fake_openai: FakeOpenAI) -> None:
    fake_openai.speech.append(chunked_pcm(tone(4800), piece=960, delay=0.3))
    tts = OpenAITTS(base_url=fake_openai.url)
    gen = tts.synthesize("Streaming please.")
    try:
        first = await asyncio.wait_for(gen.__anext__(), 5)
        assert len(first) == 960
        rest = [c async for c in gen]
        assert sum(map(len, rest)) == 4800 * 2 - 960
    finally:
        await gen.aclose()
        await tts.aclose()


async def test_tts_strips_wav_header(fake_openai: FakeOpenAI) -> None:
    pcm = tone(2400)
    fake_openai.speech.append(chunked_pcm(pcm16_to_wav(pcm, 24000), piece=7))
    tts = OpenAITTS(base_url=fake_openai.url)
    try:
        assert b"".join(await synth(tts)) == pcm
    finally:
        await tts.aclose()


def test_wav_stripper_passes_raw_pcm_through() -> None:
    s = WavHeaderStripper()
    pcm = tone(100)
    out = b"".join(s.feed(pcm[i : i + 3]) for i in range(0, len(pcm), 3))
    assert out == pcm


@pytest.mark.parametrize("code", [500, 502, 400])
async def test_tts_http_error(fake_openai: FakeOpenAI, code: int) -> None:
    fake_openai.speech.append(status(code, {"error": {"message": "voice not found"}}))
    tts = OpenAITTS(base_url=fake_openai.url, api_key=KEY)
    try:
        with pytest.raises(ProviderError, match=f"HTTP {code}.*voice not found") as info:
            await synth(tts)
    finally:
        await tts.aclose()
    assert KEY not in str(info.value)


async def test_tts_timeout(fake_openai: FakeOpenAI) -> None:
    fake_openai.speech.append(hang())
    tts = OpenAITTS(base_url=fake_openai.url, timeout=0.3)
    try:
        with pytest.raises(ProviderTimeoutError):
            await synth(tts)
    finally:
        await tts.aclose()


async def test_tts_truncated_body(fake_openai: FakeOpenAI) -> None:
    fake_openai.speech.append(chunked_pcm(tone(4800), piece=1000, cut=True))
    tts = OpenAITTS(base_url=fake_openai.url)
    try:
        with pytest.raises(ProviderError, match="truncated"):
            await synth(tts)
    finally:
        await tts.aclose()


async def test_tts_json_instead_of_audio(fake_openai: FakeOpenAI) -> None:
    fake_openai.speech.append(status(200, {"oops": True}))
    tts = OpenAITTS(base_url=fake_openai.url)
    try:
        with pytest.raises(ProviderError, match="expected audio"):
            await synth(tts)
    finally:
        await tts.aclose()


def transcript_answer(text: str) -> Any:
    async def handler(request: web.Request, form: dict[str, Any]) -> web.StreamResponse:
        return web.json_response({"text": text})

    return handler


async def test_stt_posts_wav_multipart(fake_openai: FakeOpenAI) -> None:
    fake_openai.transcribe.append(transcript_answer(" I need billing. "))
    stt = OpenAISTT(base_url=fake_openai.url, api_key=KEY, model="gpt-4o-x", sample_rate=8000)
    pcm = tone(8000)
    try:
        # the json answer has no confidence: a threshold cannot reject anything
        stream = await stt.open_stream(
            phrases=["billing", "sales"], language="en-US", min_confidence=0.99
        )
        for i in range(0, len(pcm), 320):
            await stream.feed(pcm[i : i + 320])
        result = await stream.finish()
        await stream.aclose()
    finally:
        await stt.aclose()
    assert result.text == "I need billing." and result.is_final and result.confidence is None
    form = fake_openai.requests[0].body
    assert form["model"] == "gpt-4o-x" and form["language"] == "en"
    assert form["prompt"] == "billing, sales" and form["response_format"] == "json"
    assert form["file"]["content_type"] == "audio/wav"
    with wave.open(io.BytesIO(form["file"]["data"])) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.readframes(10**6) == pcm
    assert fake_openai.requests[0].headers["Authorization"] == f"Bearer {KEY}"


def verbose_answer(text: str, *segments: tuple[float, float, float]) -> Any:
    """A whisper ``verbose_json`` answer: segments of (duration, avg_logprob, no_speech_prob)."""

    async def handler(request: web.Request, form: dict[str, Any]) -> web.StreamResponse:
        t, segs = 0.0, []
        for i, (span, logprob, no_speech) in enumerate(segments):
            segs.append(
                {
                    "id": i,
                    "start": t,
                    "end": t + span,
                    "text": text,
                    "avg_logprob": logprob,
                    "no_speech_prob": no_speech,
                }
            )
            t += span
        return web.json_response(
            {
                "task": "transcribe",
                "language": "english",
                "duration": t,
                "text": text,
                "segments": segs,
            }
        )

    return handler


async def test_whisper_transcripts_carry_a_confidence_a_threshold_can_reject(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.transcribe.append(verbose_answer(" Billing. ", (1.0, -0.1, 0.01)))
    fake_openai.transcribe.append(verbose_answer(" Bill in. ", (0.5, -0.2, 0.0), (1.5, -1.6, 0.3)))
    stt = OpenAISTT(base_url=fake_openai.url, model="whisper-1", sample_rate=8000)
    heard = []
    try:
        for _ in range(2):
            stream = await stt.open_stream(phrases=["billing"], min_confidence=0.5)
            await stream.feed(tone(1600))
            heard.append(await stream.finish())
    finally:
        await stt.aclose()
    assert fake_openai.requests[0].body["response_format"] == "verbose_json"
    assert heard[0].text == "Billing." and heard[0].confidence == pytest.approx(0.8959, abs=1e-3)
    # duration-weighted: 0.25 * exp(-0.2) + 0.75 * exp(-1.6) * 0.7 = 0.3104, under 0.5
    assert heard[1].text == "" and heard[1].alternatives == ("Bill in.",)
    assert heard[1].confidence == pytest.approx(0.3104, abs=1e-3)


def test_segments_confidence_ignores_what_it_cannot_read() -> None:
    assert segments_confidence(None) is None and segments_confidence([]) is None
    assert segments_confidence([{"avg_logprob": "x"}, 3]) is None
    assert segments_confidence([{"avg_logprob": 0.5}]) == 1.0  # a positive log-prob is clamped
    with pytest.raises(ConfigError, match="response_format must be one of"):
        OpenAISTT(response_format="srt")


async def test_stt_empty_utterance_posts_nothing(fake_openai: FakeOpenAI) -> None:
    stt = OpenAISTT(base_url=fake_openai.url)
    try:
        stream = await stt.open_stream()
        assert (await stream.finish()).text == ""
    finally:
        await stt.aclose()
    assert fake_openai.requests == []


@pytest.mark.parametrize(
    ("handler", "error", "match"),
    [
        (status(500, {"error": {"message": "backend down"}}), ProviderError, "HTTP 500"),
        (status(200, "{broken"), ProviderError, "malformed"),
        (status(200, {"no_text": 1}), ProviderError, "no text"),
        (hang(), ProviderTimeoutError, "timed out"),
    ],
)
async def test_stt_failures(fake_openai: FakeOpenAI, handler: Any, error: type, match: str) -> None:
    fake_openai.transcribe.append(handler)
    stt = OpenAISTT(base_url=fake_openai.url, timeout=0.5)
    try:
        stream = await stt.open_stream()
        await stream.feed(tone(1600))
        with pytest.raises(error, match=match):
            await stream.finish()
        with pytest.raises(ProviderError, match="already finished"):
            await stream.feed(b"\0\0")
    finally:
        await stt.aclose()
