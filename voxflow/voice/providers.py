"""Provider protocols: speech-to-text, text-to-speech, language model, voice activity detection.

Audio between providers and the media path is always mono signed 16-bit little-endian PCM
("pcm16") at the provider's ``sample_rate``; the media path converts to and from the wire codec.
Each vendor lives in its own module and implements one of these small Protocols.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "ChatMessage",
    "LanguageModel",
    "LlmDelta",
    "ModelOptions",
    "SpeechToText",
    "SttStream",
    "TextToSpeech",
    "ToolCall",
    "ToolSpec",
    "Transcript",
    "VoiceActivityDetector",
    "below_confidence",
]


@dataclass(frozen=True, slots=True)
class Transcript:
    """What a speech-to-text stream heard. ``text`` is "" when nothing was recognised."""

    text: str
    is_final: bool = True
    confidence: float | None = None
    alternatives: tuple[str, ...] = ()  # n-best, best first, when the engine gives them
    latency_ms: float | None = None
    """From the end of the caller's speech to this result (the endpointer's silence and the
    decoding), when the media path knows it; traced so a replay places the speech in time."""
    endpoint: str | None = None
    """What ended the utterance, when the media path knows it: ``settled`` (the recogniser
    heard a whole final phrase it would accept and the caller stop), ``final``/``complete`` (the
    VAD's silence window after such a final phrase, a whole phrase), ``quiet`` (the longer
    window for anything else once the recogniser's phone loop heard no speech either),
    ``silence`` (the ``listen`` window), ``max_speech``."""
    silence_ms: int | None = None
    """The VAD silence the endpoint waited for (the window that ended the utterance: e.g. 60 ms
    once settled, 800 ms for the ``listen`` window), counted in frames, so it does not depend on
    how busy the machine is; None when no silence ended it."""
    behind_ms: int | None = None
    """How far the recogniser's decoding lagged the caller when the endpoint came: the audio it
    had not been handed yet. A stream that says ``settled``/``final`` can only shorten the wait
    once it has decoded that far, so on a loaded machine the longer windows end utterances."""


def below_confidence(t: Transcript, min_confidence: float | None) -> Transcript:
    """``t`` rejected (text "", what was heard kept first in ``alternatives``) when its
    confidence is known and under ``min_confidence``; else ``t`` unchanged."""
    if min_confidence is None or t.confidence is None or not t.text:
        return t
    if t.confidence >= min_confidence:
        return t
    alts = (t.text, *(a for a in t.alternatives if a != t.text))
    return Transcript("", is_final=t.is_final, confidence=t.confidence, alternatives=alts)


@runtime_checkable
class SttStream(Protocol):
    """One utterance being transcribed. Endpointing (when to call ``finish``) is the caller's job,
    driven by the VAD, so every provider behaves the same."""

    async def feed(self, pcm: bytes) -> None:
        """Add pcm16 audio at the provider's sample rate."""
        ...

    async def finish(self) -> Transcript:
        """End of the utterance: return the final transcript."""
        ...

    async def aclose(self) -> None:
        """Release the stream (idempotent); safe after ``finish`` or instead of it."""
        ...


@runtime_checkable
class SpeechToText(Protocol):
    """Streaming speech recognition."""

    sample_rate: int

    async def open_stream(
        self,
        *,
        phrases: Sequence[str] | None = None,
        language: str | None = None,
        min_confidence: float | None = None,
    ) -> SttStream:
        """Start an utterance. ``phrases`` (when given) are what the caller is expected to say:
        providers use them as a grammar or as hints. ``min_confidence`` (0..1, None: the
        provider's own default) is the least confidence this recognition must reach: below it
        the transcript's ``text`` is "" (its ``confidence`` and ``alternatives`` stay). A
        provider that gives no confidence accepts every result."""
        ...


@runtime_checkable
class TextToSpeech(Protocol):
    """Streaming speech synthesis."""

    sample_rate: int

    def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
        """Yield pcm16 audio at ``sample_rate`` as soon as it is produced."""
        ...


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered to the model: ``parameters`` is a JSON schema object."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call requested by the model; ``arguments`` is the raw JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a conversation, in OpenAI chat terms."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class LlmDelta:
    """A streamed piece of a reply: text, completed tool calls, or the end (``done``)."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    done: bool = False


@dataclass(frozen=True, slots=True)
class ModelOptions:
    """Per-request model settings (an agent step's ``model``/``temperature``); None keeps the
    provider's own."""

    model: str | None = None
    temperature: float | None = None


@runtime_checkable
class LanguageModel(Protocol):
    """Streaming chat completion with tool calls."""

    def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        options: ModelOptions | None = None,
    ) -> AsyncIterator[LlmDelta]:
        """Yield the reply as it streams; tool calls are yielded once complete."""
        ...


@runtime_checkable
class VoiceActivityDetector(Protocol):
    """Frame-level speech detection on pcm16 audio."""

    sample_rate: int
    frame_ms: int

    def is_speech(self, frame: bytes) -> bool:
        """True when this frame (exactly ``frame_ms`` long) holds speech."""
        ...
