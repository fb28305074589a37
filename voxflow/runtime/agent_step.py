"""The language's ``agent`` step on a call: from the interpreter's agent command to
:func:`~voxflow.agent.agent.run_agent` over the call's :class:`~voxflow.agent.call_agent.CallAgent`.

:class:`FlowAgentRunner` is what ``CallDriver(agent_runner=...)`` calls with the session and the
``Agent`` command (system prompt and prompts already rendered, tools as plain dicts). It reads
the command by attribute. Mapping:

* each ``tool`` is an exit (:class:`~voxflow.agent.agent.AgentExit`) whose typed arguments are
  validated (one corrective retry) and returned in ``args`` for the flow to bind to variables;
* Python/HTTP actions given to the runner are offered next to the exits; their results go back
  to the model (``http_action`` sends the call's webhook-marked metadata);
* the step's own ``action``s (``cmd.actions``, IR ``AgentAction``s rendered with
  ``cmd.action_vars`` and the model's arguments, see :mod:`voxflow.runtime.agent_actions`) too, over
  one HTTP session per step run, closed when the step ends;
* ``max_turns``, ``timeout``, ``silence`` (-> ``noinput``), ``filler`` after ``filler_after``,
  ``give_up`` (-> ``timeout``), ``context`` (``reset`` clears the history on entry,
  ``summary`` keeps a summary of it), ``voice`` and ``bargein`` go straight to the settings and
  the pipeline;
* a retry of the same step right after ``noinput`` continues the conversation: no reset, no
  second greeting; so does the first agent step of a call resumed from a checkpoint on another
  worker (its conversation restored by :mod:`voxflow.runtime.agent_memory`);
* the caller hanging up raises ``CallEndedError`` (the driver's hang-up path); an app without
  STT/TTS gives the ``error`` outcome (so the step's own ``on error`` handler runs).

Given ``on_line``, the runner reports each line (greeting, filler, replies, caller utterances)
as it is spoken or heard, so a live transcript shows them during the step; the result then
carries ``"reported": True`` (the driver does not add the messages a second time). Given
``on_action``, each request a flow action of the step sends is told to it (the driver traces
it, :class:`~voxflow.runtime.agent_actions.ActionReporter`).

The result dict: ``outcome``, ``args``, ``transcript`` (``caller: ...``/``agent: ...`` lines),
``turns``, ``error``, ``messages`` (``(role, text)`` pairs) and ``metrics`` (one dict per turn:
``stt_final_ms``, ``llm_ttft_ms``, ``tts_ttfb_ms``, ``voice_to_voice_ms``, ``filler``,
``interrupted``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from voxflow.agent.agent import AgentAction, AgentExit, AgentOutcome, AgentSettings, ToolParam
from voxflow.agent.call_agent import CallAgent, LineReporter
from voxflow.errors import AiNotConfiguredError, CallEndedError
from voxflow.runtime.agent_actions import (
    MAX_RESPONSE_BYTES,
    ActionHttp,
    ActionReporter,
    flow_actions,
)
from voxflow.runtime.agent_memory import RESUMED
from voxflow.runtime.port import AgentHost
from voxflow.voice.call import BargeIn, BargeInMode
from voxflow.voice.providers import ModelOptions

__all__ = ["AgentCommand", "FlowAgentRunner", "outcome_result", "settings_for_step"]

log = logging.getLogger("voxflow.runtime.agent_step")

_BARGE_IN_MODES: dict[str, BargeInMode] = {m: m for m in ("none", "dtmf", "speech", "any")}


class AgentCommand(Protocol):
    """The fields of the interpreter's ``Agent`` command this adapter reads."""

    @property
    def system(self) -> str: ...

    @property
    def greeting(self) -> str | None: ...

    @property
    def tools(self) -> tuple[dict[str, Any], ...]: ...

    @property
    def max_turns(self) -> int: ...

    @property
    def timeout_ms(self) -> int: ...

    @property
    def silence_ms(self) -> int: ...

    @property
    def filler(self) -> str | None: ...

    @property
    def filler_after_ms(self) -> int | None: ...

    @property
    def give_up_ms(self) -> int | None: ...

    @property
    def context(self) -> str: ...

    @property
    def voice(self) -> str | None: ...

    @property
    def bargein(self) -> str: ...

    @property
    def actions(self) -> tuple[Any, ...]: ...

    @property
    def action_vars(self) -> dict[str, Any] | None: ...

    @property
    def timezone(self) -> str: ...

    @property
    def model(self) -> str | None: ...

    @property
    def temperature(self) -> float | None: ...


def _exit(tool: Mapping[str, Any]) -> AgentExit:
    params = tuple(
        ToolParam(
            str(a["name"]),
            str(a.get("type", "string")),
            str(a.get("description") or ""),
            bool(a.get("required", True)),
            str(a.get("schema") or ""),
        )
        for a in tool.get("args", ())
    )
    return AgentExit(str(tool["name"]), str(tool.get("description") or tool["name"]), params)


def settings_for_step(
    cmd: AgentCommand,
    *,
    actions: Sequence[AgentAction] = (),
    continuing: bool = False,
    max_tool_rounds: int = 4,
) -> AgentSettings:
    """The :class:`AgentSettings` of one agent step. ``continuing``: a retry after noinput
    (keep the conversation, skip the greeting)."""
    context: Literal["append", "reset", "summary"] = "append"
    if cmd.context in ("reset", "summary") and not continuing:
        context = "summary" if cmd.context == "summary" else "reset"
    return AgentSettings(
        system_prompt=cmd.system,
        greeting=None if continuing else (cmd.greeting or None),
        exits=tuple(_exit(t) for t in cmd.tools),
        actions=tuple(actions),
        max_turns=max(1, cmd.max_turns),
        timeout_s=cmd.timeout_ms / 1000,
        silence_s=cmd.silence_ms / 1000,
        filler=cmd.filler or None,
        filler_after_s=cmd.filler_after_ms / 1000 if cmd.filler_after_ms is not None else None,
        give_up_s=cmd.give_up_ms / 1000 if cmd.give_up_ms is not None else None,
        context=context,
        max_tool_rounds=max_tool_rounds,
        model_options=(
            ModelOptions(cmd.model, cmd.temperature)
            if cmd.model is not None or cmd.temperature is not None
            else None
        ),
    )


def outcome_result(outcome: AgentOutcome) -> dict[str, Any]:
    """The dict the interpreter gets back for an agent step."""
    return {
        "outcome": outcome.outcome,
        "args": dict(outcome.args),
        "transcript": outcome.transcript_text(),
        "turns": outcome.turns,
        "error": outcome.error,
        "messages": [(m.role, m.content) for m in outcome.transcript if m.content],
        "metrics": [
            {k: (round(v, 1) if isinstance(v, float) else v) for k, v in d.items()}
            for d in (dataclasses.asdict(m) for m in outcome.metrics)
        ],
    }


def _step_key(cmd: AgentCommand) -> tuple[str, tuple[str, ...]]:
    return cmd.system, tuple(str(t.get("name")) for t in cmd.tools)


class FlowAgentRunner:
    """Runs a flow's agent steps on calls (``CallDriver(agent_runner=FlowAgentRunner())``).

    ``actions`` are offered to the model in every agent step (results go back to the model),
    next to each step's own flow actions (answers limited to ``max_action_bytes``);
    ``listen_options`` go to ``CallVoice.listen`` (e.g. ``end_silence_ms``, ``phrases``).
    The driver passes ``on_line`` when ``live_transcript`` is true.
    """

    live_transcript = True

    def __init__(
        self,
        *,
        actions: Sequence[AgentAction] = (),
        listen_options: Mapping[str, Any] | None = None,
        max_tool_rounds: int = 4,
        max_action_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        names = [a.name for a in actions]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate agent action names: {names}")
        if max_action_bytes < 1:
            raise ValueError("max_action_bytes must be at least 1")
        self.actions = tuple(actions)
        self.listen_options = dict(listen_options or {})
        self.max_tool_rounds = max_tool_rounds
        self.max_action_bytes = max_action_bytes

    async def __call__(
        self,
        session: AgentHost,
        cmd: AgentCommand,
        /,
        *,
        on_line: LineReporter | None = None,
        on_action: ActionReporter | None = None,
    ) -> dict[str, Any]:
        agent = session.agent  # RuntimeError("AI pipeline not configured") without an LLM
        if not isinstance(agent, CallAgent):
            raise RuntimeError("the agent step needs call.agent to be a voxflow CallAgent")
        key = _step_key(cmd)
        # a retry after noinput, or the first step of a call resumed on this worker
        # (agent_memory.restore): the conversation goes on, no greeting
        continuing = agent.steps.get("last") == (key, "noinput") or bool(
            agent.steps.pop(RESUMED, False)
        )
        actions, http = self._actions_for(cmd, session.id, on_action)
        settings = settings_for_step(
            cmd,
            actions=actions,
            continuing=continuing,
            max_tool_rounds=self.max_tool_rounds,
        )
        try:
            outcome = await agent.converse(
                settings,
                barge_in=BargeIn(mode=_BARGE_IN_MODES.get(cmd.bargein, "any")),
                voice=cmd.voice,
                listen_options=self.listen_options,
                on_line=on_line,
            )
        except AiNotConfiguredError as exc:  # no STT/TTS: the step's checked error outcome
            why = f"{exc}: the agent step needs an STT and a TTS on the app"
            log.error("call %s: %s", session.id, why)
            return outcome_result(AgentOutcome("error", error=why))
        finally:
            if http is not None:
                await http.aclose()
        agent.steps["last"] = (key, outcome.outcome)
        log.info(
            "call %s: agent step ended with %s after %d turns%s",
            session.id,
            outcome.outcome,
            outcome.turns,
            f" ({outcome.error})" if outcome.error else "",
        )
        if outcome.outcome == "hangup":
            raise CallEndedError(f"call {session.id} ended during the agent step")
        result = outcome_result(outcome)
        if on_line is not None:
            result["reported"] = True
        return result

    def _actions_for(
        self, cmd: AgentCommand, call_id: str, reporter: ActionReporter | None = None
    ) -> tuple[tuple[AgentAction, ...], ActionHttp | None]:
        """The runner's actions plus the step's own (HTTP actions, with the client they share,
        closed by the caller, each request told to ``reporter``); ValueError when a name is
        both an exit tool and an action."""
        exits = {str(t.get("name")) for t in cmd.tools}
        step_actions = tuple(cmd.actions)
        own = {a.name for a in self.actions}
        clash = (exits | {a.name for a in step_actions}) & own
        if clash:
            raise ValueError(f"agent tools and actions share names: {sorted(clash)}")
        if not step_actions:
            return self.actions, None
        http = ActionHttp(max_bytes=self.max_action_bytes)
        actions = self.actions + flow_actions(
            step_actions,
            cmd.action_vars,
            http,
            timezone=cmd.timezone,
            call_id=call_id,
            reporter=reporter,
        )
        return actions, http
