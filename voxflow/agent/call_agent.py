"""``call.agent``: the per-session agent of a ``VoxtraApp`` call, with its voice pipeline.

:func:`create_agent` (registered as telephony's agent factory by :mod:`voxflow.agent`) builds
a :class:`CallAgent` for a session whose app has an LLM. It keeps the conversation history for
the whole call and offers its tools the metadata marked with
``call.metadata.update_for_webhook`` (and only that). When the app also has an STT and a TTS,
the first spoken use wires one :class:`~voxflow.agent.pipeline.VoicePipeline` over the call's
media path; the agent registers an ``on_hangup`` callback that closes it, which cancels whatever
it is speaking (the seed's cleanup contract). Without STT/TTS the spoken methods raise
``RuntimeError("AI pipeline not configured")``; text-only :meth:`Agent.respond` still works.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from voxflow.agent.agent import (
    Agent,
    AgentAction,
    AgentIO,
    AgentOutcome,
    AgentSettings,
    Spoken,
    TurnMetrics,
    run_agent,
)
from voxflow.agent.pipeline import TurnResult, VoicePipeline
from voxflow.errors import AiNotConfiguredError, CallEndedError
from voxflow.voice.call import BargeIn
from voxflow.voice.providers import LanguageModel, SpeechToText, TextToSpeech

if TYPE_CHECKING:  # annotations only: `voxflow test` runs agents without the telephony stack
    from voxflow.telephony.session import CallSession

__all__ = ["CallAgent", "LineReporter", "ReportingIO", "create_agent"]

log = logging.getLogger("voxflow.agent.call_agent")


LineReporter = Callable[[str, str], None]
"""``(who, text)`` with ``who`` ``"agent"`` or ``"caller"``: one line of a live conversation."""


class ReportingIO:
    """An :class:`~voxflow.agent.agent.AgentIO` that tells ``report`` each line as it happens: what
    the caller heard of every greeting, filler, reprompt and reply once spoken, and each caller
    utterance once recognised. Other attributes come from the wrapped ``io``."""

    def __init__(self, io: AgentIO, report: LineReporter) -> None:
        self._io = io
        self._report = report

    def __getattr__(self, name: str) -> Any:
        return getattr(self._io, name)

    def _line(self, who: str, text: str) -> None:
        if not text.strip():
            return
        try:
            self._report(who, text.strip())
        except Exception as exc:  # a display callback must not break the call
            log.debug("transcript callback failed: %s", exc)

    async def say(self, text: str) -> Spoken:
        spoken = await self._io.say(text)
        self._line("agent", spoken.heard)
        return spoken

    async def speak(self, chunks: AsyncIterator[str]) -> Spoken:
        spoken = await self._io.speak(chunks)
        self._line("agent", spoken.heard)
        return spoken

    async def listen(self, timeout: float) -> str | None:
        text = await self._io.listen(timeout)
        if text is not None:
            self._line("caller", text)
        return text


class CallAgent(Agent):
    """The agent of one call. ``call`` is a ``CallSession`` (or anything with ``metadata``,
    ``on_hangup``, ``wait_answered``, ``ended`` and ``call_voice``)."""

    def __init__(
        self,
        call: Any,
        llm: LanguageModel,
        *,
        tts: TextToSpeech | None = None,
        stt: SpeechToText | None = None,
        system_prompt: str | None = None,
        actions: Sequence[AgentAction] = (),
        on_metrics: Callable[[TurnMetrics], None] | None = None,
        max_tool_rounds: int = 4,
        max_history: int = 60,
    ) -> None:
        meta = getattr(call, "metadata", None)
        shared: Callable[[], Mapping[str, Any]] | None = None
        if meta is not None and hasattr(meta, "for_webhook"):
            shared = meta.for_webhook
        super().__init__(
            llm,
            system_prompt=system_prompt,
            actions=actions,
            metadata=shared,
            max_tool_rounds=max_tool_rounds,
            max_history=max_history,
        )
        self.call = call
        self.tts = tts
        self.stt = stt
        self.on_metrics = on_metrics
        self.steps: dict[str, Any] = {}  # per-call state of flow agent steps (retry detection)
        self._pipeline: VoicePipeline | None = None
        self._pipe_lock = asyncio.Lock()
        self._closed = False
        on_hangup = getattr(call, "on_hangup", None)
        if callable(on_hangup):
            on_hangup(self.aclose)

    @classmethod
    def for_call(cls, call: CallSession) -> CallAgent:
        """The agent of ``call`` from its app's providers (the app must have an LLM)."""
        providers = call.providers
        if providers.llm is None:
            raise AiNotConfiguredError
        return cls(call, providers.llm, tts=providers.tts, stt=providers.stt)

    @property
    def speaks(self) -> bool:
        """True when the app has the STT and TTS a spoken conversation needs."""
        return self.tts is not None and self.stt is not None

    @property
    def closed(self) -> bool:
        return self._closed

    async def pipeline(self) -> VoicePipeline:
        """The call's voice pipeline, wired on first use (answers the call if needed)."""
        if not self.speaks:
            raise AiNotConfiguredError
        if self._closed or getattr(self.call, "ended", False):
            raise CallEndedError(f"call {getattr(self.call, 'id', '?')} has ended")
        async with self._pipe_lock:
            if self._pipeline is None:
                await self.call.wait_answered()
                voice = await self.call.call_voice()
                if self._closed:
                    raise CallEndedError(f"call {getattr(self.call, 'id', '?')} has ended")
                assert self.tts is not None
                self._pipeline = VoicePipeline(
                    voice, tts=self.tts, agent=self, on_metrics=self._metrics
                )
        return self._pipeline

    def _metrics(self, metrics: TurnMetrics) -> None:
        if self.on_metrics is not None:
            try:
                self.on_metrics(metrics)
            except Exception as exc:  # an observer must not break the call
                log.debug("metrics callback failed: %s", exc)

    async def respond_aloud(
        self, text: str, *, filler: str | None = None, filler_after_s: float | None = None
    ) -> TurnResult:
        """One spoken turn: add ``text``, speak the streamed reply (barge-in applies) and keep
        in the history only what the caller heard."""
        pipe = await self.pipeline()
        return await pipe.respond(text, filler=filler, filler_after_s=filler_after_s)

    async def converse(
        self,
        settings: AgentSettings,
        *,
        barge_in: BargeIn | None = None,
        voice: str | None = None,
        listen_options: Mapping[str, Any] | None = None,
        on_line: LineReporter | None = None,
    ) -> AgentOutcome:
        """Run an agent step (:func:`~voxflow.agent.agent.run_agent`) over the voice pipeline;
        ``on_line`` is told each line as it is spoken or heard (see :class:`ReportingIO`)."""
        pipe = await self.pipeline()
        pipe.barge_in = barge_in if barge_in is not None else BargeIn()
        pipe.voice_name = voice
        pipe.listen_options = dict(listen_options or {})
        io: AgentIO = pipe if on_line is None else ReportingIO(pipe, on_line)
        outcome = await run_agent(settings, io, self)
        for m in outcome.metrics:
            self._metrics(m)
        return outcome

    def interrupt(self) -> None:
        """Stop what the agent is saying now (e.g. on DTMF)."""
        if self._pipeline is not None:
            self._pipeline.interrupt()

    async def aclose(self) -> None:
        """Close the voice pipeline, cancelling what it speaks (idempotent; runs on hang-up)."""
        self._closed = True
        pipe, self._pipeline = self._pipeline, None
        if pipe is not None:
            await pipe.aclose()


def create_agent(call: CallSession) -> CallAgent:
    """``call.agent`` for a session of a ``VoxtraApp`` with an LLM: a :class:`CallAgent`
    (history, tools that see the metadata marked with ``update_for_webhook``, a per-call voice
    pipeline closed on hang-up). Raises ``AiNotConfiguredError`` (the seed's
    ``RuntimeError("AI pipeline not configured")``) when the app has no LLM."""
    return CallAgent.for_call(call)
