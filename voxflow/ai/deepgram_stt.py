"""Deepgram live streaming speech recognition over websockets.

Wire protocol: connect to ``{base_url}?encoding=linear16&sample_rate=...&channels=1&model=...``
with ``Authorization: Token KEY``; send audio as binary frames; the server answers JSON messages
(``Results`` with ``is_final``/``speech_final`` and ``channel.alternatives[0].transcript``,
``Metadata``, ``SpeechStarted``, ``UtteranceEnd``); ``{"type": "CloseStream"}`` asks it to flush
and close. The final transcript is the ``is_final`` segments joined. A refused handshake, an
abnormal close, an ``Error`` message or a malformed message -> ProviderError; no answer to
``CloseStream`` within ``timeout`` -> ProviderTimeoutError.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from voxflow import observe
from voxflow.ai.config import Secret
from voxflow.errors import ProviderError, ProviderTimeoutError
from voxflow.voice.providers import Transcript, below_confidence

__all__ = ["DeepgramSTT", "DeepgramSttStream", "DeepgramTranscriptCollector"]

log = logging.getLogger("voxflow.ai.deepgram")


class DeepgramTranscriptCollector:
    """Pure: consumes Deepgram JSON messages and keeps the final segments (no I/O)."""

    def __init__(self) -> None:
        self.finals: list[str] = []
        self.confidences: list[float] = []
        self.interim = ""
        self.metadata_seen = False
        self.speech_final = False

    def feed(self, message: str) -> None:
        """Handle one text message; raise ProviderError for errors and malformed messages."""
        try:
            obj = json.loads(message)
        except json.JSONDecodeError:
            raise ProviderError(f"Deepgram: malformed message {message[:120]!r}") from None
        if not isinstance(obj, dict):
            raise ProviderError(f"Deepgram: unexpected message {message[:120]!r}")
        kind = obj.get("type")
        if kind == "Results":
            try:
                alt = obj["channel"]["alternatives"][0]
                text = str(alt.get("transcript", "")).strip()
            except (KeyError, IndexError, TypeError, AttributeError):
                raise ProviderError(f"Deepgram: malformed Results {message[:120]!r}") from None
            if obj.get("is_final"):
                if text:
                    self.finals.append(text)
                    conf = alt.get("confidence")
                    if isinstance(conf, int | float):
                        self.confidences.append(float(conf))
                self.interim = ""
                self.speech_final = bool(obj.get("speech_final"))
            else:
                self.interim = text
        elif kind == "Metadata":
            self.metadata_seen = True
        elif kind == "Error" or "err_code" in obj or "err_msg" in obj:
            detail = obj.get("description") or obj.get("message") or obj.get("err_msg") or obj
            raise ProviderError(f"Deepgram error: {str(detail)[:300]}")

    def transcript(self) -> Transcript:
        conf = sum(self.confidences) / len(self.confidences) if self.confidences else None
        return Transcript(" ".join(self.finals).strip(), is_final=True, confidence=conf)


class DeepgramSttStream:
    """One live Deepgram stream; a reader task collects results while audio is fed."""

    def __init__(
        self, ws: ClientConnection, timeout: float, min_confidence: float | None = None
    ) -> None:
        self._ws = ws
        self._min_confidence = min_confidence
        self._timeout = timeout
        self._collector = DeepgramTranscriptCollector()
        self._error: ProviderError | None = None
        self._close_sent = False
        self._finished = False
        self._reader = asyncio.create_task(self._read(), name="deepgram-reader")

    @property
    def partial(self) -> str:
        """What has been recognised so far (finals plus the latest interim result)."""
        return " ".join([*self._collector.finals, self._collector.interim]).strip()

    async def _read(self) -> None:
        try:
            async for message in self._ws:
                if isinstance(message, bytes):
                    continue
                self._collector.feed(message)
        except ProviderError as exc:
            self._error = exc
        except ConnectionClosed as exc:
            self._error = _closed_error(exc)
            return
        if not self._close_sent and self._error is None:
            self._error = ProviderError("Deepgram: server closed the stream before CloseStream")

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    async def feed(self, pcm: bytes) -> None:
        self._check()
        if self._finished:
            raise ProviderError("Deepgram: stream already finished")
        if not pcm:
            return
        try:
            await self._ws.send(pcm)
        except ConnectionClosed as exc:
            await asyncio.sleep(0)  # let the reader record why
            self._check()
            raise _closed_error(exc) from None

    async def finish(self) -> Transcript:
        self._check()
        if self._finished:
            raise ProviderError("Deepgram: stream already finished")
        self._finished = True
        self._close_sent = True
        try:
            await self._ws.send(json.dumps({"type": "CloseStream"}))
        except ConnectionClosed as exc:
            await self.aclose()
            self._check()
            raise _closed_error(exc) from None
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), self._timeout)
        except TimeoutError:
            await self.aclose()
            raise ProviderTimeoutError(
                f"Deepgram: no final result within {self._timeout:g} s of CloseStream"
            ) from None
        await self.aclose()
        self._check()
        if not self._collector.metadata_seen:
            log.debug("Deepgram closed without a Metadata message")
        return below_confidence(self._collector.transcript(), self._min_confidence)

    async def aclose(self) -> None:
        self._finished = True
        if not self._reader.done():
            self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(), 2.0)


def _closed_error(exc: ConnectionClosed) -> ProviderError:
    rcvd = exc.rcvd
    if rcvd is None:
        return ProviderError("Deepgram: connection lost (no close frame; stream truncated)")
    if rcvd.code == 1000:
        return ProviderError("Deepgram: connection closed")
    return ProviderError(
        f"Deepgram: connection closed with {rcvd.code} {rcvd.reason[:200]}".rstrip()
    )


class DeepgramSTT:
    """A :class:`~voxflow.voice.providers.SpeechToText` over Deepgram's live ``/v1/listen``
    websocket."""

    def __init__(
        self,
        *,
        api_key: Secret | str | None,
        base_url: str = "wss://api.deepgram.com/v1/listen",
        model: str = "nova-2",
        language: str | None = "en-US",
        sample_rate: int = 16000,
        timeout: float = 10.0,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        if not base_url.startswith(("ws://", "wss://")):
            raise ProviderError("Deepgram: base_url must start with ws:// or wss://")
        self._key = api_key if isinstance(api_key, Secret) or api_key is None else Secret(api_key)
        self.base_url = base_url
        self.model = model
        self.language = language
        self.sample_rate = sample_rate
        self.timeout = timeout
        self.params = dict(params or {})

    def url(self, *, phrases: Sequence[str] | None = None, language: str | None = None) -> str:
        """The listen URL with its query string."""
        query: list[tuple[str, str]] = [
            ("encoding", "linear16"),
            ("sample_rate", str(self.sample_rate)),
            ("channels", "1"),
            ("model", self.model),
            ("punctuate", "true"),
            ("interim_results", "true"),
        ]
        lang = language or self.language
        if lang:
            query.append(("language", lang))
        hint = "keyterm" if self.model.startswith("nova-3") else "keywords"
        for phrase in phrases or ():
            if phrase.strip():
                query.append((hint, phrase.strip()))
        for key, value in self.params.items():
            query.append((key, str(value).lower() if isinstance(value, bool) else str(value)))
        sep = "&" if "?" in self.base_url else "?"
        return f"{self.base_url}{sep}{urlencode(query)}"

    async def open_stream(
        self,
        *,
        phrases: Sequence[str] | None = None,
        language: str | None = None,
        min_confidence: float | None = None,
    ) -> DeepgramSttStream:
        """Open a live stream. Deepgram gives each final segment a ``confidence``; the
        utterance's (their mean) under ``min_confidence`` rejects it (text "")."""
        headers = {"Authorization": f"Token {self._key.get()}"} if self._key else {}
        url = self.url(phrases=phrases, language=language)
        try:
            ws = await self._connect(url, headers)
        except ProviderError:
            observe.provider_error("stt", "deepgram")
            raise
        return DeepgramSttStream(ws, self.timeout, min_confidence)

    async def _connect(self, url: str, headers: dict[str, str]) -> ClientConnection:
        """The websocket to Deepgram, or a ProviderError saying why not."""
        try:
            ws = await connect(
                url,
                additional_headers=headers,
                open_timeout=self.timeout,
                max_size=1 << 20,
                user_agent_header="voxflow",
            )
        except InvalidStatus as exc:
            code = exc.response.status_code
            raise ProviderError(f"Deepgram refused the connection: HTTP {code}") from None
        except (InvalidHandshake, InvalidURI) as exc:
            raise ProviderError(f"Deepgram handshake failed: {exc}") from None
        except TimeoutError:
            raise ProviderTimeoutError(
                f"Deepgram: connection not open within {self.timeout:g} s"
            ) from None
        except OSError as exc:
            raise ProviderError(f"Deepgram: cannot reach {self.base_url} ({exc})") from None
        return ws
