"""The contract between CallSession and the per-call media path.

``CallSession.say/listen/audio_stream/send_audio`` delegate to a :class:`CallVoice`, built lazily on
first use by the app's voice factory from a :class:`VoiceContext`. The media package implements it
(externalMedia + RTP); the contract lives in the bottom package ``voxflow.voice`` so telephony,
media and the AI pipeline share it without importing each other.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

from voxflow.voice.chunk import AudioChunk
from voxflow.voice.prompt_cache import PromptCache
from voxflow.voice.providers import (
    LanguageModel,
    SpeechToText,
    TextToSpeech,
    Transcript,
    VoiceActivityDetector,
)

__all__ = [
    "AiProviders",
    "AriRequests",
    "BargeIn",
    "BargeInMode",
    "CallVoice",
    "PromptResult",
    "VoiceContext",
    "VoiceFactory",
    "weak_get",
]

BargeInMode = Literal["none", "dtmf", "speech", "any"]


@dataclass(frozen=True, slots=True)
class BargeIn:
    """When the caller may interrupt a prompt: by DTMF, speech, either, or not at all.

    ``min_speech_ms`` is how much voiced audio confirms speech. The default, 60 ms (3 frames of
    20 ms), is what lets a prompt stop within 100 ms of the caller starting to talk (200 ms could
    not, by construction). The media path decides barge-in on webrtcvad's strictest mode (3):
    ``bench/rtp.py --part barge-in`` shows it rejecting -30 dBFS white noise (1 false onset in
    20 s, 188 in mode 2) with onset-to-silence p99 ~45 ms at 60 ms (~185 ms at 200). Neither
    mode rejects loud noise, hum or tone bursts: raise ``min_speech_ms`` (200 also ignores
    bursts shorter than 200 ms) on noisy lines.
    """

    mode: BargeInMode = "any"
    min_speech_ms: int = 60

    @property
    def dtmf(self) -> bool:
        return self.mode in ("dtmf", "any")

    @property
    def speech(self) -> bool:
        return self.mode in ("speech", "any")


@dataclass(frozen=True, slots=True)
class PromptResult:
    """How a prompt (say / play_file) ended. ``by`` is "dtmf" or "speech" when interrupted;
    ``digit`` is the digit that interrupted it (also left in the DTMF queue for listen_dtmf)."""

    interrupted: bool = False
    by: Literal["dtmf", "speech"] | None = None
    digit: str | None = None
    heard_ms: int = 0


class AiProviders(NamedTuple):
    """The AI providers a call can use (``CallSession.providers``); None when not configured."""

    llm: LanguageModel | None
    stt: SpeechToText | None
    tts: TextToSpeech | None


class AriRequests(Protocol):
    """What the media path asks of ARI (``voxflow.ari.rest.AriRestClient`` is one): a REST
    request and its decoded JSON answer; a non-2xx raises the ARI error tree."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        expect_json: bool = True,
        timeout: float | None = None,
    ) -> Any:
        """Send ``method path`` with query ``params`` (``expect_json=False``: no body wanted;
        ``timeout``: this request's deadline, else the client's)."""
        ...


@dataclass(slots=True)
class VoiceContext:
    """What the media path needs from a call. ``rest`` is the call's ``AriRestClient``."""

    rest: AriRequests
    channel_id: str
    app_name: str
    tts: TextToSpeech | None
    stt: SpeechToText | None
    vad: VoiceActivityDetector | None
    current_bridge_id: Callable[[], str | None]
    options: Mapping[str, Any] = field(default_factory=dict)
    prompt_cache: PromptCache | None = None
    # Registers interest in a channel's StasisStart before the channel is created (the app's
    # ``expect_stasis_start``); None when no events are seen (then a refused addChannel is retried).
    expect_stasis_start: Callable[[str], asyncio.Future[None]] | None = None
    # Seconds: the client's deadline for one request (``rest``'s own); a set-up request that
    # timed out goes again with twice it (``voxflow.ari.late``).
    request_timeout: float = 10.0


class CallVoice(Protocol):
    """Audio I/O of one call over externalMedia. Every method may be called before or after the
    media path is up; the first use starts it. ``aclose`` tears everything down (idempotent)."""

    async def say(
        self, text: str, *, voice: str | None = None, barge_in: BargeIn | None = None
    ) -> PromptResult:
        """Synthesize ``text`` with the TTS and stream it to the caller, paced."""
        ...

    async def listen(
        self,
        timeout: float = 10.0,
        *,
        phrases: Sequence[str] | None = None,
        end_silence_ms: int = 800,
        max_speech_s: float = 15.0,
        min_confidence: float | None = None,
    ) -> str | None:
        """Transcribe the caller's next utterance; None when nothing was said within ``timeout``,
        "" when the caller spoke but nothing was recognised with confidence (``min_confidence``
        for this recognition; None: the STT's own threshold)."""
        ...

    async def recognize(
        self,
        timeout: float = 10.0,
        *,
        phrases: Sequence[str] | None = None,
        end_silence_ms: int = 800,
        max_speech_s: float = 15.0,
        min_confidence: float | None = None,
    ) -> Transcript | None:
        """As ``listen``, the whole transcript (``confidence``, n-best ``alternatives``)."""
        ...

    def audio_stream(self) -> AsyncIterator[AudioChunk]:
        """The caller's audio, ~20 ms chunks; every concurrent consumer gets every chunk."""
        ...

    async def send_audio(self, data: AudioChunk | bytes) -> None:
        """Queue audio (wire-codec bytes, or a chunk of any codec) to the caller, paced."""
        ...

    async def wait_for_speech(self, min_speech_ms: int = 200) -> None:
        """Return when the caller starts speaking (VAD), for barge-in on Asterisk-side playbacks."""
        ...

    def on_dtmf(self, digit: str) -> None:
        """Called by the session for each DTMF digit (drives DTMF barge-in of streamed prompts)."""
        ...

    async def aclose(self) -> None:
        """Tear down the externalMedia channel, bridge/snoop and socket; return the port."""
        ...


VoiceFactory = Callable[[VoiceContext], CallVoice]


def weak_get(obj: object, name: str) -> Callable[[], Any]:
    """A getter of ``obj.name`` that holds ``obj`` weakly (None once it is gone), e.g. a
    session's bridge id for its media path's :class:`VoiceContext`: the session holds its media
    path, so a strong reference back would make a reference cycle of every call, freed by the
    cyclic garbage collector only (docs/media-performance.md, "Per-call garbage")."""
    ref = weakref.ref(obj)

    def get() -> Any:
        target = ref()
        return None if target is None else getattr(target, name)

    return get
