"""OpenAI-compatible transcription: ``POST {base_url}/audio/transcriptions`` (multipart).

The stream buffers the utterance and posts it as a WAV file on ``finish`` (endpointing is the
caller's job, per :class:`~voxflow.voice.providers.SttStream`). ``phrases`` become the
``prompt`` hint. Whisper models are asked for ``verbose_json``: its segments' ``avg_logprob`` and
``no_speech_prob`` give the transcript a confidence (see :func:`segments_confidence`), so a
step's ``confidence`` threshold can reject a doubtful transcript.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import Any

import aiohttp

from voxflow.ai._http import HttpProvider
from voxflow.ai.config import Secret
from voxflow.errors import ConfigError, ProviderError
from voxflow.voice.providers import Transcript, below_confidence
from voxflow.voice.wav import pcm16_to_wav

__all__ = ["OpenAISTT", "OpenAISttStream", "pcm16_to_wav", "segments_confidence"]

RESPONSE_FORMATS = ("auto", "json", "verbose_json", "text")

log = logging.getLogger("voxflow.ai.stt")


class OpenAISttStream:
    """One utterance: audio is buffered (up to ``max_seconds``) and sent on ``finish``."""

    def __init__(
        self,
        owner: OpenAISTT,
        *,
        prompt: str | None,
        language: str | None,
        max_seconds: float,
        min_confidence: float | None = None,
    ) -> None:
        self._owner = owner
        self._min_confidence = min_confidence
        self._prompt = prompt
        self._language = language
        self._buf = bytearray()
        self._limit = int(max_seconds * owner.sample_rate) * 2
        self._closed = False
        self._dropped = 0

    async def feed(self, pcm: bytes) -> None:
        if self._closed:
            raise ProviderError("STT: stream already finished")
        room = self._limit - len(self._buf)
        if len(pcm) > room:
            self._dropped += len(pcm) - max(room, 0)
            pcm = pcm[: max(room, 0)]
        self._buf += pcm

    async def finish(self) -> Transcript:
        if self._closed:
            raise ProviderError("STT: stream already finished")
        self._closed = True
        if self._dropped:
            log.warning("STT: utterance longer than the buffer; %d bytes dropped", self._dropped)
        audio, self._buf = bytes(self._buf), bytearray()
        if len(audio) < 2:
            return Transcript("", is_final=True)
        heard = await self._owner.transcribe_wav(
            pcm16_to_wav(audio, self._owner.sample_rate),
            prompt=self._prompt,
            language=self._language,
        )
        return below_confidence(heard, self._min_confidence)

    async def aclose(self) -> None:
        self._closed = True
        self._buf = bytearray()


class OpenAISTT(HttpProvider):
    """A :class:`~voxflow.voice.providers.SpeechToText` over ``/audio/transcriptions``
    (whisper-style)."""

    kind = "STT"

    def __init__(
        self,
        *,
        model: str = "whisper-1",
        base_url: str = "https://api.openai.com/v1",
        api_key: Secret | str | None = None,
        language: str | None = None,
        sample_rate: int = 16000,
        timeout: float = 30.0,
        max_seconds: float = 60.0,
        response_format: str = "auto",
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(base_url=base_url, api_key=api_key, timeout=timeout, session=session)
        if response_format not in RESPONSE_FORMATS:
            raise ConfigError(
                f"STT response_format must be one of {', '.join(RESPONSE_FORMATS)}, "
                f"not {response_format!r}"
            )
        if response_format == "auto":  # gpt-4o-transcribe answers json or text only
            response_format = "verbose_json" if "whisper" in model.lower() else "json"
        self.response_format = response_format
        self.model = model
        self.language = language
        self.sample_rate = sample_rate
        self.max_seconds = max_seconds

    async def open_stream(
        self,
        *,
        phrases: Sequence[str] | None = None,
        language: str | None = None,
        min_confidence: float | None = None,
    ) -> OpenAISttStream:
        """Start an utterance. A transcript whose confidence is under ``min_confidence`` is
        rejected (text ""); only ``verbose_json`` answers carry one, other transcripts pass."""
        prompt = ", ".join(p for p in phrases if p) if phrases else None
        lang = language or self.language
        if lang and "-" in lang:
            lang = lang.split("-", 1)[0]  # the API takes ISO-639-1 ("en"), not "en-US"
        return OpenAISttStream(
            self,
            prompt=prompt,
            language=lang,
            max_seconds=self.max_seconds,
            min_confidence=min_confidence,
        )

    async def transcribe_wav(
        self, wav: bytes, *, prompt: str | None = None, language: str | None = None
    ) -> Transcript:
        """Post one WAV file; return its transcript."""
        form = aiohttp.FormData()
        form.add_field("file", wav, filename="utterance.wav", content_type="audio/wav")
        form.add_field("model", self.model)
        form.add_field("response_format", self.response_format)
        if prompt:
            form.add_field("prompt", prompt)
        if language:
            form.add_field("language", language)
        session = self._get_session()
        try:
            async with session.post(
                f"{self.base_url}/audio/transcriptions",
                data=form,
                headers=self._headers(),
                timeout=self._client_timeout(),
            ) as resp:
                await self._raise_for_status(resp)
                raw = await resp.read()
        except ProviderError:
            raise
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._map_exception(exc, "transcription") from None
        text = raw.decode("utf-8", "replace").strip()
        try:
            data = json.loads(text)
        except ValueError:
            if text.startswith(("{", "[")):
                raise self._error(f"malformed transcription answer: {text[:120]!r}") from None
            return Transcript(text)  # response_format=text servers
        if not isinstance(data, dict) or not isinstance(data.get("text", None), str):
            raise self._error(f"transcription answer has no text: {text[:120]!r}")
        return Transcript(
            data["text"].strip(),
            is_final=True,
            confidence=segments_confidence(data.get("segments")),
        )


def segments_confidence(segments: Any) -> float | None:
    """A transcript's confidence from whisper's ``verbose_json`` segments: per segment
    ``exp(avg_logprob) * (1 - no_speech_prob)``, averaged weighted by duration; None without
    usable segments."""
    if not isinstance(segments, list):
        return None
    total = weight = 0.0
    for seg in segments:
        if not isinstance(seg, dict):
            continue
        logprob, no_speech = seg.get("avg_logprob"), seg.get("no_speech_prob", 0.0)
        if not isinstance(logprob, int | float) or not isinstance(no_speech, int | float):
            continue
        start, end = seg.get("start"), seg.get("end")
        span = end - start if isinstance(start, int | float) and isinstance(end, int | float) else 0
        w = span if span > 0 else 1.0
        p = math.exp(min(float(logprob), 0.0)) * (1.0 - min(max(float(no_speech), 0.0), 1.0))
        total += w * p
        weight += w
    return round(total / weight, 4) if weight else None
