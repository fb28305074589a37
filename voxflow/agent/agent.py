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
from typing import Any, Literal, Protocol

from voxflow.agent.schema import ToolArgumentsError, check_schema, parse_tool_arguments
from voxflow.agent.sentences import SentenceChunker
from voxflow.errors import CallEndedError, ProviderError
from voxflow.voice.providers import ChatMessage, LanguageModel, ModelOptions, ToolCall, ToolSpec

__all__ = [
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
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    calls: list[ToolCall] = []
    errors: list[ProviderError] = []
    first_event = asyncio.Event()

    async def produce() -> None:
        chunker = SentenceChunker()
        try:
            async for delta in llm.stream_chat(messages, tools=tools, options=options):
                if result.metrics.llm_ttft_ms is None and (delta.text or delta.tool_calls):
                    result.metrics.llm_ttft_ms = (_now() - t0) * 1000
                for piece in chunker.push(delta.text) if delta.text else ():
                    queue.put_nowait(piece)
                    first_event.set()
                calls.extend(delta.tool_calls)
                if delta.done:
                    break
        except ProviderError as exc:
            errors.append(exc)
        except (OSError, ValueError) as exc:  # a provider that leaked a raw error
            errors.append(ProviderError(f"LLM failed: {exc}"))
        finally:
            rest = chunker.flush()
            if rest and not errors:
                queue.put_nowait(rest)
            queue.put_nowait(None)
            first_event.set()

    producer = asyncio.create_task(produce(), name="agent-llm")
    try:
        said_filler = False
        while not first_event.is_set():
            now = _now()
            waits: list[float] = []
            if filler and filler_after_s is not None and not said_filler:
                waits.append(t0 + filler_after_s - now)
            if give_up_s is not None:
                waits.append(t0 + give_up_s - now)
            if not waits:
                await first_event.wait()
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(first_event.wait(), max(0.0, min(waits)))
                break
            now = _now()
            if give_up_s is not None and now >= t0 + give_up_s:
                result.gave_up = True
                return result
            if filler and not said_filler:
                said_filler = True
                result.metrics.filler = True
                await io.say(filler)
        spoken = await io.speak(_queue_iter(queue))
        result.heard = spoken.heard
        result.interrupted = spoken.interrupted
        result.metrics.interrupted = spoken.interrupted
        result.metrics.tts_ttfb_ms = spoken.tts_ttfb_ms
        if spoken.first_audio_at is not None:
            result.metrics.voice_to_voice_ms = (spoken.first_audio_at - t0) * 1000
        if spoken.interrupted:
            return result
        await producer
        if errors:
            result.error = errors[0]
        result.tool_calls = tuple(calls)
        return result
    finally:
        if not producer.done():
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer


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
    exits = {e.name: e for e in settings.exits}
    actions = {**agent.actions, **{a.name: a for a in settings.actions}}
    specs = [e.spec() for e in settings.exits] + [a.spec() for a in actions.values()]
    history = agent.history
    metrics: list[TurnMetrics] = []

    if settings.greeting:
        spoken = await io.say(settings.greeting)
        if spoken.heard:
            history.append(ChatMessage("assistant", spoken.heard))

    turns = 0
    silences = 0
    while True:
        text = await io.listen(settings.silence_s)
        if text is None or not text.strip():
            if silences < len(settings.silence_reprompts):
                spoken = await io.say(settings.silence_reprompts[silences])
                silences += 1
                if spoken.heard:
                    history.append(ChatMessage("assistant", spoken.heard))
                continue
            return AgentOutcome("noinput", turns=turns, metrics=metrics)
        silences = 0
        turns += 1
        heard_at = _now()
        stt_ms = getattr(io, "last_stt_final_ms", None)
        history.append(ChatMessage("user", text.strip()))
        retried = False
        rounds = 0
        first = True
        while True:
            rounds += 1
            rr = await run_round(
                agent.llm,
                list(history),
                io,
                tools=specs,
                filler=settings.filler if first else None,
                filler_after_s=settings.filler_after_s,
                give_up_s=settings.give_up_s if first else None,
                started_at=heard_at if first else None,
                options=settings.model_options,
            )
            if first:
                rr.metrics.stt_final_ms = stt_ms if isinstance(stt_ms, int | float) else None
                metrics.append(rr.metrics)
            first = False
            if rr.gave_up:
                limit = settings.give_up_s or 0
                return AgentOutcome(
                    "timeout",
                    turns=turns,
                    metrics=metrics,
                    error=f"the model gave no answer within {limit:g} s",
                )
            calls = () if rr.interrupted else rr.tool_calls
            history.append(ChatMessage("assistant", rr.heard, tool_calls=calls))
            if rr.error is not None:
                _answer_calls(history, calls, "not run: the model failed")
                return AgentOutcome("error", turns=turns, error=str(rr.error), metrics=metrics)
            if not calls:
                break
            exit_call = next((c for c in calls if c.name in exits), None)
            unknown = [c for c in calls if c.name not in exits and c.name not in actions]
            problem: str | None = None
            if unknown:
                known = ", ".join([*exits, *actions]) or "none"
                problem = f"unknown tool {unknown[0].name!r}; available tools: {known}"
            elif exit_call is not None:
                try:
                    args = parse_tool_arguments(
                        exit_call.arguments, exits[exit_call.name].spec().parameters
                    )
                except ToolArgumentsError as exc:
                    problem = f"invalid arguments for {exit_call.name}: {exc}"
                else:
                    _answer_calls(history, calls, "ok")
                    return AgentOutcome(
                        f"tool:{exit_call.name}", args=args, turns=turns, metrics=metrics
                    )
            if problem is not None:
                if retried:
                    _answer_calls(history, calls, f"error: {problem}")
                    return AgentOutcome(
                        "error",
                        turns=turns,
                        metrics=metrics,
                        error=f"malformed tool call after a corrective retry: {problem}",
                    )
                retried = True
                _answer_calls(history, calls, f"error: {problem}. Call the tool again correctly.")
                continue
            if rounds > settings.max_tool_rounds:
                _answer_calls(history, calls, "error: too many tool calls in one turn")
                break
            for call in calls:
                result = await agent.call_action(call, actions)
                history.append(ChatMessage("tool", result, tool_call_id=call.id))
        if turns >= settings.max_turns:
            return AgentOutcome("max_turns", turns=turns, metrics=metrics)


def _answer_calls(history: list[ChatMessage], calls: Sequence[ToolCall], content: str) -> None:
    for call in calls:
        history.append(ChatMessage("tool", content, tool_call_id=call.id))


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
                text = await resp.text()
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
