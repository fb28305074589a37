"""The agent: ``call.agent`` (:class:`Agent`) and the runner of the language's agent step.

The runner takes plain inputs, so the interpreter calls it without this package knowing the IR:

* :class:`AgentSettings` - system prompt (already rendered), greeting, exits (tools that end the
  step with outcome ``tool:<name>`` and validated arguments), actions (tools whose results go back
  to the model, e.g. HTTP), limits (max turns, overall timeout, silence, filler, give-up),
  context strategy.
* an :class:`AgentIO` - ``say(text)``, ``speak(chunks)`` (stream a reply sentence by sentence),
  ``listen(timeout)``; :class:`~voxflow.agent.pipeline.VoicePipeline` implements it.
* a :class:`~voxflow.voice.providers.LanguageModel` and the conversation history
  (an :class:`Agent`).

Outcomes (``AgentOutcome.outcome``): ``tool:<name>``, ``max_turns``, ``timeout`` (overall
timeout or the give-up deadline), ``noinput`` (caller silent after the reprompts), ``error``
(provider failure, malformed tool call after one corrective retry), ``hangup``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from voxflow.agent.schema import ToolArgumentsError, check_schema, parse_tool_arguments
from voxflow.agent.sentences import SentenceChunker
from voxflow.errors import CallEndedError, ProviderError
from voxflow.voice.providers import (
    ChatMessage,
    LanguageModel,
    LlmDelta,
    ModelOptions,
    ToolCall,
    ToolSpec,
)

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "ACTION_MAX_BYTES",
    "Agent",
    "AgentAction",
    "AgentExit",
    "AgentIO",
    "AgentOutcome",
    "AgentSettings",
    "RoundResult",
    "Spoken",
    "ToolParam",
    "TurnMetrics",
    "http_action",
    "run_agent",
    "run_round",
    "summarise",
    "tool_parameters",
]

log = logging.getLogger("voxflow.agent.agent")


def _now() -> float:
    """The running loop's clock (``time.monotonic`` on a real loop, virtual in tests)."""
    return asyncio.get_running_loop().time()


ActionHandler = Callable[[Mapping[str, Any], Mapping[str, Any]], Awaitable[Any]]
"""``handler(arguments, metadata) -> result`` (JSON-able); exceptions go back to the model."""

_VALUE_TYPES: dict[str, Any] = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "bool": {"type": "boolean"},
    "boolean": {"type": "boolean"},
    "duration": {"type": ["number", "string"]},
    "list": {"type": "array"},
    "map": {"type": "object"},
    "any": {},
    "null": {"type": "null"},
}


@dataclass(frozen=True, slots=True)
class ToolParam:
    """A typed tool argument in the language's vocabulary (string, number, bool, duration, list,
    map, any, null; also integer)."""

    name: str
    type: str = "string"
    description: str = ""
    required: bool = True
    constraints: str = ""
    """Extra JSON-Schema keywords as JSON text (``{"minimum": 1, "maximum": 8}``)."""


def tool_parameters(params: Sequence[ToolParam]) -> dict[str, Any]:
    """The JSON schema of an object with ``params``."""
    props: dict[str, Any] = {}
    for p in params:
        if p.type not in _VALUE_TYPES:
            raise ValueError(f"unknown tool argument type {p.type!r} for {p.name!r}")
        schema = dict(_VALUE_TYPES[p.type])
        if p.constraints:
            extra = json.loads(p.constraints)
            if not isinstance(extra, dict):
                raise ValueError(f"constraints of {p.name!r} must be a JSON object")
            schema.update(extra)
        if p.description:
            schema["description"] = p.description
        props[p.name] = schema
    return {
        "type": "object",
        "properties": props,
        "required": [p.name for p in params if p.required],
        "additionalProperties": False,
    }


@dataclass(frozen=True, slots=True)
class AgentExit:
    """A tool that ends the agent step: outcome ``tool:<name>`` with the validated arguments."""

    name: str
    description: str
    params: tuple[ToolParam, ...] = ()

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, tool_parameters(self.params))


@dataclass(frozen=True, slots=True)
class AgentAction:
    """A tool the model may call mid-conversation; ``handler``'s result is returned to the model."""

    name: str
    description: str
    handler: ActionHandler
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        check_schema(self.parameters)

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """Everything an agent step needs besides its I/O. Times are in seconds."""

    system_prompt: str
    greeting: str | None = None
    exits: tuple[AgentExit, ...] = ()
    actions: tuple[AgentAction, ...] = ()
    max_turns: int = 10
    timeout_s: float = 300.0
    silence_s: float = 8.0
    silence_reprompts: tuple[str, ...] = ()
    filler: str | None = None
    filler_after_s: float | None = None
    give_up_s: float | None = None
    context: Literal["append", "reset", "summary"] = "append"
    max_tool_rounds: int = 4
    max_history: int = 60
    model_options: ModelOptions | None = None
    """The step's own model and temperature (None: the provider's)."""


@dataclass(frozen=True, slots=True)
class Spoken:
    """How speaking went: ``heard`` is the text the caller actually heard."""

    heard: str
    interrupted: bool = False
    first_audio_at: float | None = None  # loop.time() of the first audio frame
    tts_ttfb_ms: float | None = None


class AgentIO(Protocol):
    """What the runner needs from the call."""

    async def say(self, text: str) -> Spoken:
        """Speak a fixed prompt (greeting, filler, reprompt)."""
        ...

    async def speak(self, chunks: AsyncIterator[str]) -> Spoken:
        """Speak a streamed reply, chunk by chunk, as the chunks arrive."""
        ...

    async def listen(self, timeout: float) -> str | None:
        """The caller's next utterance, or None after ``timeout`` seconds of silence."""
        ...


@dataclass(slots=True)
class TurnMetrics:
    """Latencies of one model turn, in milliseconds (None when not measured)."""

    stt_final_ms: float | None = None
    llm_ttft_ms: float | None = None
    tts_ttfb_ms: float | None = None
    voice_to_voice_ms: float | None = None
    filler: bool = False
    interrupted: bool = False


@dataclass(slots=True)
class RoundResult:
    """One model round: what was heard, the tool calls, and how it ended."""

    heard: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    interrupted: bool = False
    gave_up: bool = False
    error: ProviderError | None = None
    metrics: TurnMetrics = field(default_factory=TurnMetrics)


@dataclass(slots=True)
class AgentOutcome:
    """How an agent step ended. ``args`` holds the validated exit arguments."""

    outcome: str
    args: dict[str, Any] = field(default_factory=dict)
    turns: int = 0
    error: str | None = None
    transcript: list[ChatMessage] = field(default_factory=list)
    metrics: list[TurnMetrics] = field(default_factory=list)

    def transcript_text(self) -> str:
        """The step's conversation as ``caller: ...`` / ``agent: ...`` lines."""
        names = {"user": "caller", "assistant": "agent"}
        return "\n".join(
            f"{names[m.role]}: {m.content}"
            for m in self.transcript
            if m.role in names and m.content
        )


async def _queue_iter(queue: asyncio.Queue[str | None]) -> AsyncIterator[str]:
    while True:
        item = await queue.get()
        if item is None:
            return
        yield item


async def run_round(
    llm: LanguageModel,
    messages: Sequence[ChatMessage],
    io: AgentIO,
    *,
    tools: Sequence[ToolSpec] = (),
    filler: str | None = None,
    filler_after_s: float | None = None,
    give_up_s: float | None = None,
    started_at: float | None = None,
    options: ModelOptions | None = None,
) -> RoundResult:
    """Stream one model reply into ``io.speak`` sentence by sentence.

    Says ``filler`` once if nothing is ready ``filler_after_s`` after ``started_at`` (default now);
    gives up (``gave_up``) when nothing is ready after ``give_up_s``. A barge-in cancels the
    model at once. Provider errors end up in ``error`` (whatever was heard stays in ``heard``).
    """
    t0 = started_at if started_at is not None else _now()
    result = RoundResult()
    stream = _ReplyStream(t0, result)
    producer = asyncio.create_task(
        stream.produce(lambda: llm.stream_chat(messages, tools=tools, options=options)),
        name="agent-llm",
    )
    try:
        if not await _await_first(stream.first, io, t0, result, filler, filler_after_s, give_up_s):
            result.gave_up = True
            return result
        spoken = await io.speak(_queue_iter(stream.queue))
        _note_spoken(result, spoken, t0)
        if spoken.interrupted:
            return result
        await producer
        if stream.errors:
            result.error = stream.errors[0]
        result.tool_calls = tuple(stream.calls)
        return result
    finally:
        if not producer.done():
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer


class _ReplyStream:
    """A model reply streamed into a queue of sentences (None ends it), with its tool calls
    and errors; ``first`` is set when the first sentence (or the end) is there."""

    def __init__(self, t0: float, result: RoundResult) -> None:
        self.t0 = t0
        self.result = result
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.calls: list[ToolCall] = []
        self.errors: list[ProviderError] = []
        self.first = asyncio.Event()

    async def produce(self, stream_chat: Callable[[], AsyncIterator[LlmDelta]]) -> None:
        """Read the model's deltas into sentences; a provider failure is kept in ``errors``."""
        chunker = SentenceChunker()
        metrics = self.result.metrics
        try:
            async for delta in stream_chat():
                if metrics.llm_ttft_ms is None and (delta.text or delta.tool_calls):
                    metrics.llm_ttft_ms = (_now() - self.t0) * 1000
                for piece in chunker.push(delta.text) if delta.text else ():
                    self.queue.put_nowait(piece)
                    self.first.set()
                self.calls.extend(delta.tool_calls)
                if delta.done:
                    break
        except ProviderError as exc:
            self.errors.append(exc)
        except (OSError, ValueError) as exc:  # a provider that leaked a raw error
            self.errors.append(ProviderError(f"LLM failed: {exc}"))
        finally:
            rest = chunker.flush()
            if rest and not self.errors:
                self.queue.put_nowait(rest)
            self.queue.put_nowait(None)
            self.first.set()


async def _await_first(
    first: asyncio.Event,
    io: AgentIO,
    t0: float,
    result: RoundResult,
    filler: str | None,
    filler_after_s: float | None,
    give_up_s: float | None,
) -> bool:
    """Wait for the reply's first sentence, saying ``filler`` once if it is late; False when
    ``give_up_s`` passed first."""
    said_filler = False
    while not first.is_set():
        now = _now()
        waits: list[float] = []
        if filler and filler_after_s is not None and not said_filler:
            waits.append(t0 + filler_after_s - now)
        if give_up_s is not None:
            waits.append(t0 + give_up_s - now)
        if not waits:
            await first.wait()
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first.wait(), max(0.0, min(waits)))
            break
        if give_up_s is not None and _now() >= t0 + give_up_s:
            return False
        if filler and not said_filler:
            said_filler = True
            result.metrics.filler = True
            await io.say(filler)
    return True


def _note_spoken(result: RoundResult, spoken: Spoken, t0: float) -> None:
    """Record what the caller heard of the reply, and its timings, in ``result``."""
    result.heard = spoken.heard
    result.interrupted = spoken.interrupted
    result.metrics.interrupted = spoken.interrupted
    result.metrics.tts_ttfb_ms = spoken.tts_ttfb_ms
    if spoken.first_audio_at is not None:
        result.metrics.voice_to_voice_ms = (spoken.first_audio_at - t0) * 1000


def _trim(history: list[ChatMessage], limit: int) -> None:
    """Drop the oldest turns (never the system message) so at most ``limit`` messages remain;
    the kept part starts at a user message so tool results never lose their call."""
    if len(history) <= limit:
        return
    head = history[:1] if history and history[0].role == "system" else []
    body = history[len(head) :]
    cut = len(body) - (limit - len(head))
    while cut < len(body) and body[cut].role != "user":
        cut += 1
    history[:] = head + body[cut:]


def _tool_result(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


class Agent:
    """``call.agent``: an LLM conversation with per-session history and Python/HTTP tools.

    ``metadata`` returns the call metadata marked for AI/webhooks; tools receive it.
    """

    def __init__(
        self,
        llm: LanguageModel,
        *,
        system_prompt: str | None = None,
        actions: Sequence[AgentAction] = (),
        metadata: Callable[[], Mapping[str, Any]] | None = None,
        max_tool_rounds: int = 4,
        max_history: int = 60,
    ) -> None:
        self.llm = llm
        self.history: list[ChatMessage] = []
        if system_prompt:
            self.history.append(ChatMessage("system", system_prompt))
        self.actions: dict[str, AgentAction] = {a.name: a for a in actions}
        self._metadata = metadata
        self.max_tool_rounds = max_tool_rounds
        self.max_history = max_history
        self._lock = asyncio.Lock()

    def metadata(self) -> Mapping[str, Any]:
        """The metadata tools may see (a copy)."""
        return dict(self._metadata()) if self._metadata else {}

    def set_system_prompt(self, prompt: str) -> None:
        """Replace (or add) the system message."""
        if self.history and self.history[0].role == "system":
            self.history[0] = ChatMessage("system", prompt)
        else:
            self.history.insert(0, ChatMessage("system", prompt))

    def reset(self) -> None:
        """Forget the conversation (the system message too)."""
        self.history.clear()

    def add_action(self, action: AgentAction) -> None:
        """Offer another tool to the model."""
        self.actions[action.name] = action

    async def call_action(
        self, call: ToolCall, actions: Mapping[str, AgentAction] | None = None
    ) -> str:
        """Run one action tool call (looked up in ``actions``, default the agent's own); errors
        become a JSON error string for the model."""
        table = self.actions if actions is None else actions
        action = table.get(call.name)
        if action is None:
            known = ", ".join(table) or "none"
            return json.dumps({"error": f"unknown tool {call.name!r}; available: {known}"})
        try:
            args = parse_tool_arguments(call.arguments, action.parameters)
        except ToolArgumentsError as exc:
            return json.dumps({"error": f"invalid arguments: {exc}"})
        try:
            async with asyncio.timeout(action.timeout_s):
                value = await action.handler(args, self.metadata())
        except TimeoutError:
            return json.dumps({"error": f"tool {call.name} timed out"})
        except Exception as exc:  # a failing tool is reported to the model, not raised
            log.warning("agent tool %s failed: %s", call.name, exc)
            return json.dumps({"error": f"tool {call.name} failed: {exc}"})
        return _tool_result(value)

    async def respond(self, text: str) -> str:
        """Add the caller's ``text``, run the model (and any action tools), return the reply."""
        async with self._lock:
            self.history.append(ChatMessage("user", text))
            specs = [a.spec() for a in self.actions.values()]
            reply_parts: list[str] = []
            for _ in range(self.max_tool_rounds + 1):
                parts: list[str] = []
                calls: list[ToolCall] = []
                async for delta in self.llm.stream_chat(self.history, tools=specs):
                    parts.append(delta.text)
                    calls.extend(delta.tool_calls)
                    if delta.done:
                        break
                reply = "".join(parts).strip()
                self.history.append(ChatMessage("assistant", reply, tool_calls=tuple(calls)))
                if reply:
                    reply_parts.append(reply)
                if not calls:
                    break
                for call in calls:
                    result = await self.call_action(call)
                    self.history.append(ChatMessage("tool", result, tool_call_id=call.id))
            _trim(self.history, self.max_history)
            return " ".join(reply_parts)


async def run_agent(settings: AgentSettings, io: AgentIO, agent: Agent) -> AgentOutcome:
    """Run one agent step of a flow until an exit, a limit, silence, an error or hang-up.

    ``agent`` holds the history (``context="reset"`` clears it on entry) and the LLM; the
    settings' actions are offered next to the agent's own. Never raises for provider failures
    or hang-up (see the outcomes in the module docstring); cancellation propagates.
    """
    prompt = settings.system_prompt
    if settings.context == "summary":
        summary = await summarise(agent, settings)
        agent.reset()
        if summary:
            prompt = f"{prompt}\n\nEarlier in this call (a summary): {summary}"
    elif settings.context == "reset":
        agent.reset()
    agent.set_system_prompt(prompt)
    start = len(agent.history)
    outcome = AgentOutcome("error")
    try:
        async with asyncio.timeout(settings.timeout_s):
            outcome = await _converse(settings, io, agent)
    except ProviderError as exc:  # STT/TTS failures (LLM failures are handled per round)
        outcome = AgentOutcome("error", error=str(exc))
    except TimeoutError:
        outcome = AgentOutcome("timeout", error=f"agent step exceeded {settings.timeout_s:g} s")
    except CallEndedError:
        outcome = AgentOutcome("hangup")
    outcome.transcript = [m for m in agent.history[start:] if m.role in ("user", "assistant")]
    _trim(agent.history, settings.max_history)
    return outcome


SUMMARY_PROMPT = (
    "Summarise this phone conversation for the assistant who takes over: what the caller "
    "wants, every fact they gave (names, numbers, dates), and what was agreed. At most five "
    "short sentences, no preamble."
)
SUMMARY_TIMEOUT_S = 10.0


async def summarise(agent: Agent, settings: AgentSettings) -> str:
    """An LLM-written summary of the conversation in ``agent.history`` ("" when there was none,
    or when the model failed or took longer than ``SUMMARY_TIMEOUT_S``: the step then starts
    afresh, as with ``reset``)."""
    said = [m for m in agent.history if m.role in ("user", "assistant") and m.content.strip()]
    if not said:
        return ""
    transcript = "\n".join(
        f"{'caller' if m.role == 'user' else 'assistant'}: {m.content}" for m in said
    )
    messages = [ChatMessage("system", SUMMARY_PROMPT), ChatMessage("user", transcript)]
    parts: list[str] = []
    try:
        async with asyncio.timeout(SUMMARY_TIMEOUT_S):
            async for delta in agent.llm.stream_chat(messages, options=settings.model_options):
                parts.append(delta.text)
                if delta.done:
                    break
    except (ProviderError, TimeoutError) as exc:
        log.warning("agent: no summary of the earlier conversation (%s); starting afresh", exc)
        return ""
    return "".join(parts).strip()


async def _converse(settings: AgentSettings, io: AgentIO, agent: Agent) -> AgentOutcome:
    """The conversation of one agent step: greeting, then turns until an outcome."""
    return await _Conversation(settings, io, agent).run()


class _Conversation:
    """One agent step's turns: the caller speaks, the model answers (running tools) until an
    exit tool, silence, an error or a limit gives the outcome."""

    def __init__(self, settings: AgentSettings, io: AgentIO, agent: Agent) -> None:
        self.settings = settings
        self.io = io
        self.agent = agent
        self.exits = {e.name: e for e in settings.exits}
        self.actions = {**agent.actions, **{a.name: a for a in settings.actions}}
        self.specs = [e.spec() for e in settings.exits] + [a.spec() for a in self.actions.values()]
        self.history = agent.history
        self.metrics: list[TurnMetrics] = []
        self.turns = 0

    def outcome(self, name: str, **kw: Any) -> AgentOutcome:
        """An outcome with the turns and metrics so far."""
        return AgentOutcome(name, turns=self.turns, metrics=self.metrics, **kw)

    async def run(self) -> AgentOutcome:
        """Greet, then take turns until one ends the step."""
        if self.settings.greeting:
            await self._say(self.settings.greeting)
        while True:
            text = await self._next_utterance()
            if text is None:
                return self.outcome("noinput")
            self.turns += 1
            ended = await self._turn(text)
            if ended is not None:
                return ended
            if self.turns >= self.settings.max_turns:
                return self.outcome("max_turns")

    async def _say(self, text: str) -> None:
        """Say ``text``; what was heard of it joins the history."""
        spoken = await self.io.say(text)
        if spoken.heard:
            self.history.append(ChatMessage("assistant", spoken.heard))

    async def _next_utterance(self) -> str | None:
        """What the caller says next, reprompting after each silence; None when the
        reprompts ran out."""
        reprompts = self.settings.silence_reprompts
        for silences in range(len(reprompts) + 1):
            text = await self.io.listen(self.settings.silence_s)
            if text is not None and text.strip():
                return text
            if silences < len(reprompts):
                await self._say(reprompts[silences])
        return None

    async def _turn(self, text: str) -> AgentOutcome | None:
        """The model's answer to ``text``, over as many tool rounds as it takes; the outcome
        when the turn ended the step."""
        settings, history = self.settings, self.history
        heard_at = _now()
        stt_ms = getattr(self.io, "last_stt_final_ms", None)
        history.append(ChatMessage("user", text.strip()))
        retried = False
        rounds = 0
        while True:
            first = rounds == 0
            rounds += 1
            rr = await run_round(
                self.agent.llm,
                list(history),
                self.io,
                tools=self.specs,
                filler=settings.filler if first else None,
                filler_after_s=settings.filler_after_s,
                give_up_s=settings.give_up_s if first else None,
                started_at=heard_at if first else None,
                options=settings.model_options,
            )
            if first:
                rr.metrics.stt_final_ms = stt_ms if isinstance(stt_ms, int | float) else None
                self.metrics.append(rr.metrics)
            if rr.gave_up:
                limit = settings.give_up_s or 0
                return self.outcome("timeout", error=f"the model gave no answer within {limit:g} s")
            calls = () if rr.interrupted else rr.tool_calls
            history.append(ChatMessage("assistant", rr.heard, tool_calls=calls))
            if rr.error is not None:
                _answer_calls(history, calls, "not run: the model failed")
                return self.outcome("error", error=str(rr.error))
            if not calls:
                return None
            problem, exited = self._exit_or_problem(calls)
            if exited is not None:
                return exited
            if problem is not None:
                if retried:
                    _answer_calls(history, calls, f"error: {problem}")
                    error = f"malformed tool call after a corrective retry: {problem}"
                    return self.outcome("error", error=error)
                retried = True
                _answer_calls(history, calls, f"error: {problem}. Call the tool again correctly.")
                continue
            if rounds > settings.max_tool_rounds:
                _answer_calls(history, calls, "error: too many tool calls in one turn")
                return None
            for call in calls:
                result = await self.agent.call_action(call, self.actions)
                history.append(ChatMessage("tool", result, tool_call_id=call.id))

    def _exit_or_problem(self, calls: Sequence[ToolCall]) -> tuple[str | None, AgentOutcome | None]:
        """(problem, None) for an unknown tool or an exit's bad arguments; (None, outcome) for
        a good exit call (answered ``ok``); (None, None) when the calls are all actions."""
        exits, actions = self.exits, self.actions
        unknown = [c for c in calls if c.name not in exits and c.name not in actions]
        if unknown:
            known = ", ".join([*exits, *actions]) or "none"
            return f"unknown tool {unknown[0].name!r}; available tools: {known}", None
        exit_call = next((c for c in calls if c.name in exits), None)
        if exit_call is None:
            return None, None
        try:
            args = parse_tool_arguments(
                exit_call.arguments, exits[exit_call.name].spec().parameters
            )
        except ToolArgumentsError as exc:
            return f"invalid arguments for {exit_call.name}: {exc}", None
        _answer_calls(self.history, calls, "ok")
        return None, self.outcome(f"tool:{exit_call.name}", args=args)


def _answer_calls(history: list[ChatMessage], calls: Sequence[ToolCall], content: str) -> None:
    for call in calls:
        history.append(ChatMessage("tool", content, tool_call_id=call.id))


ACTION_MAX_BYTES = 1_000_000
"""The most of an :func:`http_action`'s answer read; a longer one is an error result."""


async def _read_answer(resp: aiohttp.ClientResponse) -> str | None:
    """``resp``'s body as text (UTF-8 when its charset is unknown), or None past
    :data:`ACTION_MAX_BYTES`."""
    raw = bytearray()
    async for chunk in resp.content.iter_chunked(65536):
        raw += chunk
        if len(raw) > ACTION_MAX_BYTES:
            return None
    try:
        return raw.decode(resp.charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", errors="replace")


def http_action(
    name: str,
    description: str,
    url: str,
    *,
    parameters: Mapping[str, Any] | None = None,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
    include_metadata: bool = True,
) -> AgentAction:
    """An action that sends ``{"arguments": ..., "metadata": ...}`` as JSON to ``url`` (GET: the
    arguments as query parameters) and returns the response body (JSON or text) to the model.
    Non-2xx answers become an error result the model sees."""
    import aiohttp

    async def handler(args: Mapping[str, Any], metadata: Mapping[str, Any]) -> Any:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            kwargs: dict[str, Any] = {"headers": dict(headers or {})}
            if method.upper() == "GET":
                kwargs["params"] = {k: _tool_result(v) for k, v in args.items()}
            else:
                body: dict[str, Any] = {"arguments": dict(args)}
                if include_metadata:
                    body["metadata"] = dict(metadata)
                kwargs["json"] = body
            async with session.request(method.upper(), url, **kwargs) as resp:
                text = await _read_answer(resp)
                if text is None:
                    return {"error": f"response larger than {ACTION_MAX_BYTES} bytes"}
                if resp.status >= 300:
                    return {"error": f"HTTP {resp.status}", "body": text[:500]}
                try:
                    return json.loads(text)
                except ValueError:
                    return text[:2000]

    return AgentAction(
        name=name,
        description=description,
        handler=handler,
        parameters=dict(parameters or {"type": "object"}),
        timeout_s=timeout_s,
    )
