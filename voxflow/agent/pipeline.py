"""VoicePipeline: streamed LLM replies spoken through streaming TTS onto a call, with barge-in.

A reply flows ``LLM tokens -> sentence chunks -> TTS (one sentence ahead) -> 20 ms frames ->
CallVoice.send_audio``, so the first audio leaves while the model is still writing. Frames are
handed over at real time with at most ``max_lead_ms`` queued ahead of the wire, which bounds how
much audio can still play after a barge-in and lets the pipeline know what the caller heard: each
sentence's place on the playout timeline is recorded, and at a barge-in only the sentences (and
the share of the words of the current one) already played count as heard.

Barge-in: ``voice.wait_for_speech`` (speech, per :class:`~voxflow.voice.call.BargeIn`) or
:meth:`VoicePipeline.interrupt` (DTMF, or any caller) stops TTS and the model at once; a voice
with ``clear_audio()`` also drops the frames already queued, and so does a cancelled ``speak``
(the flow stopped the agent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from voxflow.agent.agent import Agent, Spoken, TurnMetrics, run_round
from voxflow.errors import CallEndedError, ProviderError
from voxflow.voice.call import BargeIn, CallVoice
from voxflow.voice.chunk import AudioChunk
from voxflow.voice.providers import ChatMessage, LanguageModel, TextToSpeech

__all__ = ["HeardTracker", "SpokenSpan", "TurnResult", "VoicePipeline"]

log = logging.getLogger("voxflow.agent.pipeline")


_SECONDS_PER_CHAR = 0.065  # ~15 characters a second: the estimate while TTS is still streaming


@dataclass(slots=True)
class SpokenSpan:
    """A sentence on the playout timeline; ``total``: its audio length once fully synthesized."""

    text: str
    start: float | None = None
    end: float = 0.0
    total: float | None = None


@dataclass(slots=True)
class HeardTracker:
    """Pure bookkeeping of the playout timeline: which text had been played by a given time."""

    spans: list[SpokenSpan] = field(default_factory=list)
    play_end: float = 0.0

    def begin(self, span: SpokenSpan | str) -> None:
        self.spans.append(span if isinstance(span, SpokenSpan) else SpokenSpan(span))

    def played(self, now: float, duration: float) -> float:
        """Record a frame of ``duration`` s handed over at ``now``; return its playout start."""
        start = max(self.play_end, now)
        self.play_end = start + duration
        span = self.spans[-1]
        if span.start is None:
            span.start = start
        span.end = self.play_end
        return start

    def lead(self, now: float) -> float:
        """Seconds of audio queued ahead of ``now``."""
        return max(0.0, self.play_end - now)

    def heard_at(self, t: float) -> str:
        """The text played by time ``t``; the sentence being played is cut at the word reached."""
        out: list[str] = []
        for span in self.spans:
            if span.start is None or span.start >= t:
                break
            total = span.total
            if total is None:
                total = max(span.end - span.start, len(span.text) * _SECONDS_PER_CHAR)
            if span.start + total <= t:
                out.append(span.text)
                continue
            words = span.text.split()
            share = (t - span.start) / max(total, 1e-6)
            n = int(len(words) * share)
            if n:
                out.append(" ".join(words[:n]) + "...")
            break
        return " ".join(out)

    def all_text(self) -> str:
        return " ".join(s.text for s in self.spans if s.start is not None)


@dataclass(frozen=True, slots=True)
class TurnResult:
    """One spoken model turn: the text the caller heard (all of it unless ``interrupted``)."""

    heard: str
    interrupted: bool
    metrics: TurnMetrics


async def _aiter(chunks: AsyncIterable[str] | Iterable[str]) -> AsyncIterator[str]:
    if isinstance(chunks, AsyncIterable):
        async for c in chunks:
            yield c
    else:
        for c in chunks:
            yield c


def _cancelled(*tasks: asyncio.Task[Any]) -> tuple[asyncio.Task[Any], ...]:
    """``tasks``, each cancelled unless already done."""
    for task in tasks:
        if not task.done():
            task.cancel()
    return tasks


class _Utterance:
    """One speak(): the synthesizer queues each sentence's span and its audio in whole frames;
    the sender hands them to the voice at play-out pace and tracks what was heard."""

    def __init__(self, pipe: VoicePipeline) -> None:
        self.pipe = pipe
        self.tracker = HeardTracker()
        self.frames: asyncio.Queue[SpokenSpan | bytes | None] = asyncio.Queue()
        self.errors: list[BaseException] = []
        self.ttfb_ms: float | None = None
        self.rate = pipe.tts.sample_rate
        self.frame_bytes = max(2, self.rate * pipe.frame_ms // 1000 * 2)

    async def synthesize(self, chunks: AsyncIterator[str]) -> None:
        """Synthesize every non-blank sentence in turn; a TTS failure is kept in ``errors``."""
        try:
            async for sentence in chunks:
                if sentence.strip():
                    await self._synthesize_one(sentence)
        except (ProviderError, OSError, ValueError) as exc:
            self.errors.append(exc)
        finally:
            self.frames.put_nowait(None)

    async def _synthesize_one(self, sentence: str) -> None:
        """Queue the sentence's span, then its audio cut into frames (the last one padded)."""
        pipe, frame_bytes = self.pipe, self.frame_bytes
        span = SpokenSpan(sentence)
        self.frames.put_nowait(span)
        t_req = pipe._clock()
        carry = b""
        size = 0
        async for pcm in pipe.tts.synthesize(sentence, voice=pipe.voice_name):
            if self.ttfb_ms is None and pcm:
                self.ttfb_ms = (pipe._clock() - t_req) * 1000
            data = carry + pcm
            cut = len(data) - len(data) % frame_bytes
            for i in range(0, cut, frame_bytes):
                self.frames.put_nowait(data[i : i + frame_bytes])
            carry = data[cut:]
            size += cut
        if carry:
            self.frames.put_nowait(carry + b"\0" * (frame_bytes - len(carry)))
            size += frame_bytes
        span.total = size / 2 / self.rate

    async def send(self) -> Spoken:
        """Send the queued frames at most ``max_lead`` ahead of play-out; return once the
        tail has played, so "heard" is true."""
        pipe, tracker, rate = self.pipe, self.tracker, self.rate
        first_audio: float | None = None
        while (item := await self.frames.get()) is not None:
            if isinstance(item, SpokenSpan):
                tracker.begin(item)
                continue
            now = pipe._clock()
            lead = tracker.lead(now)
            if lead > pipe.max_lead:
                await asyncio.sleep(lead - pipe.max_lead)
                now = pipe._clock()
            await pipe.voice.send_audio(AudioChunk("pcm16", rate, item))
            if first_audio is None:
                first_audio = now
            tracker.played(now, len(item) / 2 / rate)
        tail = tracker.lead(pipe._clock())
        if tail > 0:
            await asyncio.sleep(tail)
        return Spoken(
            heard=tracker.all_text(), first_audio_at=first_audio, tts_ttfb_ms=self.ttfb_ms
        )


class VoicePipeline:
    """Per-call voice pipeline over a :class:`CallVoice`: implements the agent's ``AgentIO``
    (``say``/``speak``/``listen``) and ``respond`` (one spoken model turn with history).

    ``agent`` keeps the history (one is created from ``llm`` when not given). ``on_metrics`` is
    called with every turn's :class:`TurnMetrics` (for the call trace).
    """

    def __init__(
        self,
        voice: CallVoice,
        *,
        tts: TextToSpeech,
        llm: LanguageModel | None = None,
        agent: Agent | None = None,
        barge_in: BargeIn | None = None,
        voice_name: str | None = None,
        max_lead_ms: int = 60,
        frame_ms: int = 20,
        on_metrics: Callable[[TurnMetrics], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if agent is None:
            if llm is None:
                raise ValueError("VoicePipeline needs an llm or an agent")
            agent = Agent(llm)
        self.voice = voice
        self.tts = tts
        self.agent = agent
        self.barge_in = barge_in if barge_in is not None else BargeIn()
        self.voice_name = voice_name
        self.max_lead = max_lead_ms / 1000
        self.frame_ms = frame_ms
        self.on_metrics = on_metrics
        self.metrics: list[TurnMetrics] = []
        self.last_stt_final_ms: float | None = None
        self.listen_options: dict[str, Any] = {}  # extra CallVoice.listen options (phrases...)
        self._clock = clock if clock is not None else asyncio.get_running_loop().time
        self._interrupt = asyncio.Event()
        self._speaking: asyncio.Task[Spoken] | None = None
        self._closed = False
        self.last_interrupt_at: float | None = None
        self.last_stop_at: float | None = None

    # ------------------------------------------------------------------ AgentIO

    async def say(self, text: str) -> Spoken:
        """Speak one fixed text (barge-in applies)."""
        return await self.speak([text] if text.strip() else [])

    async def listen(self, timeout: float) -> str | None:
        """The caller's next utterance (the voice does VAD endpointing and STT)."""
        t0 = self._clock()
        text = await self.voice.listen(timeout, **self.listen_options)
        stt_ms = getattr(self.voice, "last_stt_final_ms", None)
        self.last_stt_final_ms = float(stt_ms) if isinstance(stt_ms, int | float) else None
        log.debug("listen: %r after %.0f ms", text, (self._clock() - t0) * 1000)
        return text

    def interrupt(self) -> None:
        """Stop what is being spoken now (e.g. on DTMF); no effect when silent."""
        if self._speaking is not None and not self._speaking.done():
            self._interrupt.set()

    async def speak(
        self,
        chunks: AsyncIterable[str] | Iterable[str],
        *,
        barge_in: BargeIn | None = None,
    ) -> Spoken:
        """Synthesize and play ``chunks`` as they arrive; return what the caller heard."""
        if self._closed:
            raise CallEndedError("the voice pipeline is closed (the call ended)")
        self._interrupt = asyncio.Event()
        task = asyncio.create_task(self._speak(_aiter(chunks), barge_in or self.barge_in))
        self._speaking = task
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self._drop_queued()  # the flow stopped the agent: its speech stops now
            me = asyncio.current_task()
            if self._closed and me is not None and me.cancelling() == 0:
                # aclose() (the call's hang-up) stopped the speech, not a cancellation of ours
                raise CallEndedError("the call ended while the agent was speaking") from None
            raise
        finally:
            self._speaking = None

    async def _speak(self, chunks: AsyncIterator[str], barge_in: BargeIn) -> Spoken:
        """Play ``chunks`` until they have all been heard, or the caller barges in."""
        utt = _Utterance(self)
        t_start = self._clock()
        producer = asyncio.create_task(utt.synthesize(chunks), name="pipeline-tts")
        sender = asyncio.create_task(utt.send(), name="pipeline-send")
        watchers = self._barge_in_watchers(barge_in)
        try:
            done, _ = await asyncio.wait([sender, *watchers], return_when=asyncio.FIRST_COMPLETED)
            if sender in done:
                spoken = sender.result()
                if utt.errors:
                    raise ProviderError(f"TTS failed: {utt.errors[0]}") from utt.errors[0]
                return spoken
            for watcher in watchers:
                if watcher in done and not watcher.cancelled():
                    failure = watcher.exception()
                    if failure is not None:  # e.g. the media path closed: the call ended
                        raise failure
            return await self._barge_in(utt, producer, sender)
        finally:
            await asyncio.gather(*_cancelled(producer, sender, *watchers), return_exceptions=True)
            if isinstance(chunks, AsyncIterator) and hasattr(chunks, "aclose"):
                with contextlib.suppress(Exception):
                    await chunks.aclose()
            log.debug("spoke for %.0f ms", (self._clock() - t_start) * 1000)

    def _barge_in_watchers(self, barge_in: BargeIn) -> list[asyncio.Task[object]]:
        """Tasks that end when speaking must stop: interrupt(), and the caller's speech."""
        watchers: list[asyncio.Task[object]] = [
            asyncio.create_task(self._interrupt.wait(), name="pipeline-interrupt")
        ]
        if barge_in.speech:
            watchers.append(
                asyncio.create_task(
                    self.voice.wait_for_speech(barge_in.min_speech_ms), name="pipeline-bargein"
                )
            )
        return watchers

    async def _drop_queued(self) -> None:
        """Drop the audio already queued to the caller (a voice with ``clear_audio``)."""
        clear = getattr(self.voice, "clear_audio", None)
        if callable(clear):
            result = clear()
            if asyncio.iscoroutine(result):
                await result

    async def _barge_in(
        self, utt: _Utterance, producer: asyncio.Task[None], sender: asyncio.Task[Spoken]
    ) -> Spoken:
        """Stop synthesis and sending now, drop queued audio; what had been heard by then."""
        at = self._clock()
        self.last_interrupt_at = at
        producer.cancel()
        sender.cancel()
        await self._drop_queued()
        self.last_stop_at = self._clock()
        first = next((s.start for s in utt.tracker.spans if s.start is not None), None)
        return Spoken(
            heard=utt.tracker.heard_at(at),
            interrupted=True,
            first_audio_at=first,
            tts_ttfb_ms=utt.ttfb_ms,
        )

    # ------------------------------------------------------------------ turns

    async def respond(
        self, text: str, *, filler: str | None = None, filler_after_s: float | None = None
    ) -> TurnResult:
        """One spoken model turn: add ``text`` to the history, stream the reply to the caller and
        record only what was heard. Tool calls run through the agent's actions."""
        agent = self.agent
        t0 = self._clock()
        agent.history.append(ChatMessage("user", text))
        specs = [a.spec() for a in agent.actions.values()]
        heard_parts: list[str] = []
        metrics: TurnMetrics | None = None
        interrupted = False
        for _round in range(agent.max_tool_rounds + 1):
            rr = await run_round(
                agent.llm,
                list(agent.history),
                self,
                tools=specs,
                filler=filler if metrics is None else None,
                filler_after_s=filler_after_s,
                started_at=t0 if metrics is None else None,
            )
            if metrics is None:
                metrics = rr.metrics
                metrics.stt_final_ms = self.last_stt_final_ms
            calls = () if rr.interrupted else rr.tool_calls
            agent.history.append(ChatMessage("assistant", rr.heard, tool_calls=calls))
            if rr.heard:
                heard_parts.append(rr.heard)
            if rr.error is not None:
                for call in calls:
                    agent.history.append(ChatMessage("tool", "not run", tool_call_id=call.id))
                raise rr.error
            if rr.interrupted:
                interrupted = True
                break
            if not calls:
                break
            for call in calls:
                result = await agent.call_action(call)
                agent.history.append(ChatMessage("tool", result, tool_call_id=call.id))
        assert metrics is not None
        metrics.interrupted = interrupted
        self.metrics.append(metrics)
        if self.on_metrics is not None:
            self.on_metrics(metrics)
        heard = " ".join(heard_parts)
        return TurnResult(heard=heard, interrupted=interrupted, metrics=metrics)

    async def aclose(self) -> None:
        """Stop speaking and refuse further use (idempotent)."""
        self._closed = True
        task = self._speaking
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
