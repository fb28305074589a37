"""OpenAI-compatible streaming speech synthesis: ``POST {base_url}/audio/speech``.

Asks for ``response_format: "pcm"`` (raw 24 kHz mono pcm16) and yields the body as it arrives, in
whole samples, so the first audio can be played before synthesis ends. A server that answers
with a WAV file anyway has its header stripped. Non-2xx -> ProviderError, no data for
``timeout`` seconds -> ProviderTimeoutError, a body cut short -> ProviderError.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from voxflow.ai._http import HttpProvider
from voxflow.ai.config import Secret
from voxflow.errors import ProviderError

__all__ = ["OpenAITTS", "WavHeaderStripper"]

log = logging.getLogger("voxflow.ai.tts")


class WavHeaderStripper:
    """Pure helper: passes raw pcm through; when the stream starts with ``RIFF`` it drops the
    header up to the ``data`` chunk. Also keeps output sample-aligned (even byte counts)."""

    def __init__(self) -> None:
        self._head = b""
        self._decided = False
        self._odd = b""
        self.sample_rate: int | None = None

    def feed(self, chunk: bytes) -> bytes:
        if not self._decided:
            self._head += chunk
            if len(self._head) < 12:
                return b""
            if self._head[:4] != b"RIFF":
                self._decided = True
                chunk, self._head = self._head, b""
            else:
                pcm = self._strip_header()
                if pcm is None:
                    return b""
                chunk = pcm
        data = self._odd + chunk
        cut = len(data) & ~1
        self._odd = data[cut:]
        return data[:cut]

    def _strip_header(self) -> bytes | None:
        head = self._head
        pos = 12
        while pos + 8 <= len(head):
            cid, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
            if cid == b"fmt " and pos + 16 <= len(head):
                self.sample_rate = struct.unpack("<I", head[pos + 12 : pos + 16])[0]
            if cid == b"data":
                self._decided = True
                rest, self._head = head[pos + 8 :], b""
                return rest
            pos += 8 + size + (size & 1)
        if len(head) > 1 << 16:
            raise ProviderError("TTS: WAV answer without a data chunk")
        return None


class OpenAITTS(HttpProvider):
    """A :class:`~voxflow.voice.providers.TextToSpeech` over ``/audio/speech`` (24 kHz pcm16)."""

    kind = "TTS"

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini-tts",
        voice: str = "alloy",
        base_url: str = "https://api.openai.com/v1",
        api_key: Secret | str | None = None,
        timeout: float = 30.0,
        sample_rate: int = 24000,
        speed: float | None = None,
        instructions: str | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(base_url=base_url, api_key=api_key, timeout=timeout, session=session)
        self.model = model
        self.voice = voice
        self.sample_rate = sample_rate
        self.speed = speed
        self.instructions = instructions

    def request_body(self, text: str, voice: str | None) -> dict[str, Any]:
        """The JSON body for ``text``."""
        body: dict[str, Any] = {
            "model": self.model,
            "input": text,
            "voice": voice or self.voice,
            "response_format": "pcm",
        }
        if self.speed is not None:
            body["speed"] = self.speed
        if self.instructions:
            body["instructions"] = self.instructions
        return body

    async def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
        """Yield pcm16 at ``sample_rate`` as the server streams it (nothing for blank text)."""
        if not text.strip():
            return
        session = self._get_session()
        stripper = WavHeaderStripper()
        total = 0
        try:
            async with session.post(
                f"{self.base_url}/audio/speech",
                json=self.request_body(text, voice),
                headers=self._headers(),
                timeout=self._client_timeout(),
            ) as resp:
                await self._raise_for_status(resp)
                ctype = resp.headers.get("Content-Type", "")
                if ctype.startswith(("application/json", "text/")):
                    body = (await resp.content.read(300)).decode("utf-8", "replace")
                    raise self._error(f"expected audio, got {ctype}: {body}")
                async for chunk in resp.content.iter_any():
                    pcm = stripper.feed(chunk)
                    if pcm:
                        total += len(pcm)
                        yield pcm
        except ProviderError:
            raise
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._map_exception(exc, "speech synthesis") from None
        if stripper.sample_rate and stripper.sample_rate != self.sample_rate:
            log.warning(
                "TTS server sent %d Hz audio, configured for %d Hz",
                stripper.sample_rate,
                self.sample_rate,
            )
        if total == 0:
            raise self._error("empty audio answer")
