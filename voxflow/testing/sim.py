"""Run one scenario against a compiled flow: the real interpreter on a virtual-time call.

``voxflow test`` runs exactly the code that serves calls: a
:class:`~voxflow.runtime.driver.CallDriver` drives a :class:`~voxflow.testing.simcall.SimCall`
(the :class:`~voxflow.runtime.port.CallPort` of a call in virtual time) on a
:class:`~voxflow.testing.vloop.VirtualTimeLoop`, so a call with a 30 s timeout runs in
milliseconds and always gives the same result. The simulator interprets no step; this module
only scripts the caller, answers agent steps from ``mocks.agent`` and turns the interpreter's
trace into the readable trace and the coverage hits.

When the scripted caller acts (the rule of the interpreter's state,
:attr:`~voxflow.runtime.runstate.RunState.awaits_caller`): an action with ``at`` happens at that
second of the call; with ``bargein`` that many seconds into the next prompt; otherwise when the
flow next waits for the caller (a gather collecting after its prompt, a recording running, an
agent, queue or dial in progress) plus ``after`` (default 0.3 s), and never before the previous
action is over. DTMF keys of one ``press`` are 0.2 s apart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import zlib
import zoneinfo
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from voxflow.agent.agent import ToolParam, tool_parameters
from voxflow.agent.schema import ToolArgumentsError, parse_tool_arguments
from voxflow.ir import models as ir
from voxflow.ir.flowmap import outcome_label, step_key, transition_key
from voxflow.redact import REDACTED
from voxflow.runtime import events as ev
from voxflow.runtime.agent_actions import ActionReporter, RequestError, render_request
from voxflow.runtime.driver import CallDriver, TranscriptLine
from voxflow.runtime.hangup_work import DEFAULT_HANGUP_TIMEOUT
from voxflow.runtime.port import AgentHost
from voxflow.runtime.redaction import Redactor, is_sensitive
from voxflow.runtime.runstate import RunState
from voxflow.spec.dtmf import example_number
from voxflow.testing.scenario import Action, AgentMock, Scenario, ScenarioDefaults
from voxflow.testing.simcall import (
    Hit,
    SentRequest,
    SimCall,
    SimHttp,
    SimLeg,
    SimResult,
    TraceLine,
)
from voxflow.testing.vloop import VirtualTimeLoop

__all__ = ["CoverageObserver", "Hit", "SentRequest", "SimResult", "TraceLine", "run_scenario"]

DEFAULT_TIME = "2025-01-06T10:00:00"  # a Monday, 10:00 in the flow's timezone
_REACTION = 0.3
_INTERDIGIT = 0.2
_WORD_SAY = 0.4
_WORD_CALLER = 0.3
_MAX_TURNS = 10_000  # event loop turns in one call: far more than any real flow needs
_QUIET = logging.getLogger("voxflow.testing.sim.call")
_QUIET.disabled = True  # a simulated call's log lines are in its trace


# ---------------------------------------------------------------- the coverage observer


class CoverageObserver:
    """A :class:`~voxflow.runtime.machine.StepObserver` recording coverage ``hits``.

    ``labels`` maps a handler block (by id) to its (outcome label, origin), learnt when the
    handler is chosen, so a later transition inside it is attributed to the right edge; keep
    one observer per call (the blocks belong to the compiled flow, which outlives the call).
    """

    def __init__(self, hits: set[Hit] | None = None, flow: ir.Flow | None = None) -> None:
        self.hits: set[Hit] = set() if hits is None else hits
        self.flow = flow  # resolves a goto of a flow-level handler run in a subflow
        self.labels: dict[int, tuple[str, str]] = {}

    def entered(self, where: str) -> None:
        self.hits.add(Hit("state", (where,)))

    def outcome(self, where: str, step: Any, outcome: str, handler: ir.Handler | None) -> None:
        self.hits.add(Hit("branch", (where, step_key(step), outcome)))
        if handler is not None:
            base = outcome
            if outcome not in step.on and outcome.startswith("choice:"):
                base = "match"
            self.labels[id(handler.steps)] = (outcome_label(base, handler.count), handler.origin)

    def error(self, where: str, handler: ir.Handler) -> None:
        self.hits.add(Hit("branch", (where, "", "error")))
        self.labels[id(handler.steps)] = (outcome_label("error", handler.count), handler.origin)

    def command(self, where: str, command: ir.Command) -> None:
        self.hits.add(Hit("branch", (where, "", "cmd:" + command.name)))
        self.labels[id(command.handler.steps)] = ("cmd:" + command.name, command.handler.origin)

    def hangup_handler(self, where: str) -> None:
        self.hits.add(Hit("branch", (where, "", "hangup")))

    def transition(self, where: str, step: Any, handler_steps: tuple[ir.Step, ...] | None) -> None:
        label, origin = ("", "state")
        if handler_steps is not None:
            label, origin = self.labels.get(id(handler_steps), ("", "state"))
        self.hits.add(Hit("transition", transition_key(self.flow, where, label, step, origin)))


# ---------------------------------------------------------------- agent steps from mocks


class _MockAgents:
    """Answers ``agent`` steps from ``mocks.agent``, in order (an
    :class:`~voxflow.runtime.driver.AgentRunner`): the scripted turns take simulated time,
    actions are answered from ``mocks.http``."""

    def __init__(self, sim: _Sim) -> None:
        self.sim = sim
        self.index = 0

    async def __call__(
        self,
        call: AgentHost,
        cmd: ev.Agent,
        /,
        *,
        on_line: Callable[[str, str], None] | None = None,
        on_action: ActionReporter | None = None,
    ) -> Mapping[str, Any]:
        sim = self.sim
        mocks = sim.mocks.agent
        m: AgentMock | None = None
        if self.index < len(mocks):
            m = mocks[self.index]
            self.index += 1
        start = sim.loop.time()
        if cmd.greeting:
            sim.call.res.said.append(cmd.greeting)
            sim.call.log("agent", f'says "{cmd.greeting}"')
            await asyncio.sleep(max(0.5, _WORD_SAY * len(cmd.greeting.split())))
        if m is None:
            sim.problem("no agent mock left for this agent step (add one under mocks.agent)")
            return {"outcome": "error", "args": {}, "transcript": ""}
        lines: list[str] = []
        for turn in m.turns:
            if turn.caller:
                lines.append(f"caller: {turn.caller}")
                sim.call.log("caller", f'says "{turn.caller}"')
                await asyncio.sleep(_WORD_CALLER * len(turn.caller.split()) + 0.5)
            if turn.action is not None:
                await self.action(cmd, turn.action, turn.args, on_action)
            if turn.reply:
                lines.append(f"agent: {turn.reply}")
                sim.call.res.said.append(turn.reply)
                sim.call.log("agent", f'says "{turn.reply}"')
                await asyncio.sleep(max(0.5, _WORD_SAY * len(turn.reply.split())))
        if m.tool is not None:
            names = {str(tool.get("name")) for tool in cmd.tools}
            if m.tool not in names:
                sim.problem(f"agent mock calls tool '{m.tool}' but the step offers: "
                            f"{', '.join(sorted(names)) or 'no tools'}")  # fmt: skip
            tool = next((t for t in cmd.tools if t.get("name") == m.tool), None)
            params = [
                ToolParam(a["name"], a["type"], a["description"], a["required"], a["schema"])
                for a in (tool or {}).get("args", ())
            ]
            if tool is not None and (why := _refused(params, m.args)) is not None:
                sim.problem(f"agent mock calls tool '{m.tool}' with arguments the step refuses "
                            f"({why}): at run time the model is asked again, then the step "
                            "ends with 'error'")  # fmt: skip
            outcome = "tool:" + m.tool
        else:
            outcome = str(m.outcome)
        if m.after is not None:
            await asyncio.sleep(max(0.0, start + m.after - sim.loop.time()))
        transcript = m.transcript if m.transcript is not None else "\n".join(lines)
        return {"outcome": outcome, "args": dict(m.args), "transcript": transcript}

    async def action(
        self, cmd: ev.Agent, name: str, args: dict[str, Any], on_action: ActionReporter | None
    ) -> None:
        """The model calls the step's action ``name``: render its request as the runner does,
        answer it from ``mocks.http``; ``on_action`` is told as the runner tells it."""
        sim = self.sim
        action = next((a for a in cmd.actions if getattr(a, "name", None) == name), None)
        if action is None:
            names = ", ".join(sorted(str(getattr(a, "name", "")) for a in cmd.actions))
            sim.problem(f"agent mock calls action '{name}' but the step offers: {names or 'none'}")
            return
        params = [ToolParam(p.name, p.type, p.description, p.required, p.constraints)
                  for p in action.args]  # fmt: skip
        if (why := _refused(params, args)) is not None:  # as Agent.call_action: no request
            sim.call.log("agent", f"calls {name}: invalid arguments: {why}")
            return
        try:
            req = render_request(
                action, cmd.action_vars, args, timezone=cmd.timezone, now=sim.clock()
            )
        except RequestError as exc:  # the model would get an error: in a test, a flow bug
            sim.problem(f"agent action '{name}' could not be prepared: {exc}")
            if on_action is not None:
                on_action.sent(name, args, None)
            return
        if on_action is not None:
            on_action.sent(name, args, req)
        sim.call.res.http.append(f"{req.method} {req.url}")
        sim.call.res.requests.append(SentRequest(req.method, req.url, req.headers, req.body))
        m = sim.call.mocks.take(
            sim.mocks.http,
            lambda h: h.method in (None, req.method) and re.search(h.url, req.url) is not None,
        )
        if m is None:
            sim.problem(f"no HTTP mock for {req.method} {req.url} (add one under mocks.http)")
            return
        timeout, delay = float(action.timeout_ms) / 1000.0, float(m.delay)
        timed_out = m.outcome == "timeout" or delay >= timeout
        answer = "timeout" if timed_out else m.outcome or str(m.status)
        sim.call.log("agent", f"calls {name}: {req.method} {req.url} -> {answer}")
        await asyncio.sleep(timeout if timed_out else delay)
        if on_action is not None:
            status = None if timed_out or m.outcome == "error" else m.status
            ok = status is not None and 200 <= status < 300
            outcome = "timeout" if timed_out else "ok" if ok else "error"
            on_action.answered(name, req, outcome, status, 1000 * (timeout if timed_out else delay))
        await asyncio.sleep(0.5)


def _refused(params: list[ToolParam], args: Mapping[str, Any]) -> str | None:
    """Why the run time refuses ``args`` for a tool or action with ``params`` (its types and
    constraints), or None."""
    try:
        parse_tool_arguments(json.dumps(dict(args)), tool_parameters(params))
    except ToolArgumentsError as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------- the simulator


def _base_epoch(when: str | None, tz: str) -> float:
    text = when or DEFAULT_TIME
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"invalid time {text!r} (write e.g. 2025-01-06T18:30:00)") from None
    if dt.tzinfo is None:
        try:
            dt = dt.replace(tzinfo=zoneinfo.ZoneInfo(tz))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            dt = dt.replace(tzinfo=zoneinfo.ZoneInfo("UTC"))
    return dt.timestamp()


class _Sim:
    """One scenario: the loop, the call, the driver and the scripted caller."""

    def __init__(
        self,
        flow: ir.Flow,
        sc: Scenario,
        defaults: ScenarioDefaults,
        hangup_timeout: float = DEFAULT_HANGUP_TIMEOUT,
        max_steps: int = 1000,
    ) -> None:
        self.flow = flow
        self.sc = sc
        self.mocks = sc.mocks.merged(defaults.mocks)
        self.timeout = sc.timeout if sc.timeout is not None else defaults.timeout
        self.base = _base_epoch(sc.time or defaults.time, flow.config.timezone)
        self.loop = VirtualTimeLoop(self._idle, max_turns=_MAX_TURNS, on_runaway=self._runaway)
        self.res = SimResult()
        speech = sc.speech if sc.speech is not None else defaults.speech
        self.call = SimCall(
            self.loop,
            self.res,
            self.mocks,
            call_id=f"test-{zlib.crc32(sc.name.encode()):08x}",
            caller=sc.caller if sc.caller is not None else defaults.caller,
            called=sc.called if sc.called is not None else (defaults.called or _first(flow)),
            direction=sc.direction or defaults.direction,
            metadata={**defaults.metadata, **sc.metadata},
            speech=speech,
        )
        self.call.on_prompt = self.arm
        self.driver: CallDriver[SimLeg] = CallDriver(
            flow,
            self.call,
            http=SimHttp(self.call, self.problem, self.clock),
            trace=_Trace(self),
            speech=speech,
            agent_runner=_MockAgents(self),
            clock=self.clock,
            on_transcript=self.transcript,
            observer=CoverageObserver(self.res.hits, flow),
            after_step=self.after_step,
            logger=_QUIET,
            hangup_timeout=hangup_timeout,
            max_steps=max_steps,
        )
        self.redactor = Redactor(flow, lambda: self.driver.state)
        self.acting: tuple[int, int, int] | None = None  # press/say: step, trace line, keys in
        self.next_action = 0
        self.armed = False
        self.busy_until = 0.0
        self.stuck = 0
        self.task: asyncio.Task[ev.End] | None = None

    def clock(self) -> float:
        return self.base + self.loop.time()

    def problem(self, text: str, step: int | None = None) -> None:
        idx = self.next_action if step is None else step
        self.res.problems.append((idx, text))
        self.call.log("!", text)

    def transcript(self, line: TranscriptLine) -> None:
        _, who, text = line
        if who == "system" and text.startswith("-> "):
            return  # the trace's state.entered record names the subflow too
        if who == "flow" and text.startswith("[plays ") and text.endswith("]"):
            text = f"plays {text[7:-1]}"
        elif who == "flow" and not text.startswith("["):
            text = f'says "{text}"'
        elif who == "caller" and text.startswith("[pressed "):
            self.key_pressed(text[9:-1])
            return  # the scripted caller's own line says which keys
        elif who == "caller":
            if self.redactor.collecting():  # said into a sensitive variable
                self.mask_action(lambda _: REDACTED)
                text = REDACTED
            text = f'is heard: "{text}"'
        self.call.log("flow" if who == "system" else who, text)

    # -------------------------------------------------------------- sensitive input

    def key_pressed(self, key: str) -> None:
        """A key of the current ``press`` reaches the call: masked in its line unless the
        gather listening now takes it into a variable that is not sensitive (as ``voxflow
        run``'s live transcript; see :meth:`Redactor.shown`)."""
        if self.acting is None or not self.redactor.enabled:
            return
        index, line, pos = self.acting
        self.acting = (index, line, pos + 1)
        if not self.redactor.shown(key):
            self.mask_action(lambda keys: keys[:pos] + "*" + keys[pos + 1 :])

    def mask_action(self, mask: Callable[[str], str]) -> None:
        if self.acting is None:
            return
        index, line, _ = self.acting
        a = self.sc.steps[index]
        value = self.res.masked[index] = mask(self.res.masked.get(index, a.value))
        text = f"presses {value}" if a.kind == "press" else f'says "{value}"'
        self.res.trace[line] = dataclasses.replace(self.res.trace[line], text=text)

    # -------------------------------------------------------------- the call's end

    def after_step(self, state: RunState) -> None:
        self.redactor.values()  # notes every value a sensitive variable holds
        if state.ended:
            if self.res.ended_at is None:
                self.res.ended_at = round(self.loop.time(), 3)
                self.res.end_state = state.state_name
            return
        self.arm()

    def _idle(self) -> None:
        """Nothing can happen any more: the call is stuck (or runs away); end it."""
        self.stuck += 1
        if self.stuck == 1:
            left = len(self.sc.steps) - self.next_action
            what = f"; {left} caller step(s) never ran" if left else ""
            self.problem(f"the flow waits for nothing and the call cannot go on{what}")
            self.loop.call_soon(self.call.caller_hangs_up)
        elif self.task is not None:
            self.loop.call_soon(self.task.cancel)

    def _runaway(self) -> None:
        self.problem(f"more than {_MAX_TURNS} events in the call: the flow loops")
        if self.task is not None:
            self.loop.call_soon(self.task.cancel)

    def _timeout(self) -> None:
        if self.driver.outcome is None:
            self.problem(f"the call was still up after the {self.timeout:g}s timeout")
            self.call.caller_hangs_up()

    # -------------------------------------------------------------- the scripted caller

    def arm(self) -> None:
        """Schedule the next caller action once its trigger holds."""
        if self.armed or self.next_action >= len(self.sc.steps) or self.call.ended:
            return
        a = self.sc.steps[self.next_action]
        now = self.loop.time()
        start = max(now, self.busy_until)
        prompt = self.call.prompt_started
        if a.at is not None:
            when = max(a.at, start)
        elif a.kind == "wait":
            when = start
        elif a.bargein is not None:
            if prompt is None or prompt < self.busy_until:
                return
            when = max(start, prompt + a.bargein)
        elif now < self.busy_until:  # still busy with the last action: look again then
            self.armed = True
            self.loop.call_at(self.busy_until, self.loop.call_when_settled, self._wake)
            return
        elif self.driver.state.awaits_caller:
            when = start + (a.after if a.after is not None else _REACTION)
        else:
            return
        self.armed = True
        self.loop.call_at(when, self.loop.call_when_settled, self.act, self.next_action)

    def _wake(self) -> None:
        self.armed = False
        self.arm()

    def act(self, index: int) -> None:
        a: Action = self.sc.steps[index]
        self.armed = False
        self.next_action = index + 1
        self.res.steps_done = index + 1
        now = self.loop.time()
        self.acting = (index, len(self.res.trace), 0) if a.kind in ("press", "say") else None
        if a.kind == "press":
            self.call.log("caller", f"presses {a.value}")
            for i, d in enumerate(a.value):
                self.loop.call_at(now + i * _INTERDIGIT, self.call.press, d)
            self.busy_until = now + len(a.value) * _INTERDIGIT
        elif a.kind == "say":
            self.call.log("caller", f'says "{a.value}"')
            self.busy_until = now + self.call.speak(a.value, a.confidence)
        elif a.kind in ("silence", "wait"):
            self.call.log("caller", f"stays silent for {a.seconds:g}s")
            self.busy_until = now + a.seconds
        elif a.value == "app":  # as FlowServer.drain when the grace period is over
            self.call.log("flow", "the app hangs up (grace period over)")
            self.driver.hang_up("grace period over")
            self.call.app_hangs_up()
        else:
            self.call.caller_hangs_up()
        self.arm()

    # -------------------------------------------------------------- main

    def run(self) -> SimResult:
        self.loop.call_at(self.timeout, self._timeout)
        self.task = self.loop.create_task(self.driver.run())
        # a scenario may run from code running on another loop (replay in an async server):
        # that loop is set aside while the virtual one runs to the call's end, then restored
        outer = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(None)
        try:
            end = self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            end = ev.End("error", "the simulated call could not end")
        finally:
            self.loop.close()
            asyncio.events._set_running_loop(outer)
        self.res.ended = (end.outcome, end.reason)
        self.res.on_hangup_cut = end.on_hangup_cut
        if end.on_hangup_cut is not None:  # as on a call: the CRM update did not happen
            self.problem(f"the call's on hangup body was cut after {end.on_hangup_cut:g} s "
                         "(hangup_timeout): the steps after it did not run")  # fmt: skip
        if self.driver.failure is not None:  # a voxflow bug, not the flow's: never a pass
            self.problem(f"the interpreter failed: {self.driver.failure!r}")
        if self.res.ended_at is None:
            self.res.ended_at = round(self.loop.time(), 3)
            self.res.end_state = self.driver.state.state_name
        if self.next_action < len(self.sc.steps) and not any(
            "never ran" in p for _, p in self.res.problems
        ):
            rest = ", ".join(a.describe() for a in self.sc.steps[self.next_action :])
            self.problem(f"the call ended before these caller steps ran: {rest}")
        self.res.variables = self.driver.state.variables()
        expected = [str(v) for k, v in self.sc.expect.variables.items()
                    if is_sensitive(self.flow, None, k) and v is not None]  # fmt: skip
        self.res.secrets = sorted({*self.redactor.values(), *expected}, key=len, reverse=True)
        self.res.metadata = {**dict(self.driver.state.metadata), **self.call.metadata}
        return self.res


class _Trace:
    """The driver's trace records, as readable trace lines, states and errors."""

    def __init__(self, sim: _Sim) -> None:
        self.sim = sim

    def write(self, type_: str, /, **fields: Any) -> None:
        log = self.sim.call.log
        if type_ == "state.entered":
            sub = fields.get("subflow")
            name = f"{sub}.{fields['state']}" if sub else str(fields["state"])
            self.sim.res.states.append(name)
            log("flow", f"enters state {name}")
        elif type_ == "outcome":
            log("flow", f"{fields['step']} -> {fields['outcome']} (#{fields['count']})")
        elif type_ == "route":
            self.sim.res.routes.append(dict(fields))
        elif type_ == "command":
            log("flow", f"anytime command {fields['name']}")
        elif type_ == "http" and "method" in fields and "action" not in fields:  # a step's
            got = fields.get("status") or fields.get("outcome")
            log("flow", f"HTTP {fields['method']} {fields['url']} -> {got}")
        elif type_ == "log":
            if fields["level"] == "error":
                self.sim.res.errors.append(str(fields["message"]))
            log("log", f"{fields['level']}: {fields['message']}")

    def close(self) -> None:
        """The call ended."""


def _first(flow: ir.Flow) -> str:
    return example_number(flow.answers[0]) if flow.answers else ""


def run_scenario(
    flow: ir.Flow,
    scenario: Scenario,
    defaults: ScenarioDefaults | None = None,
    *,
    hangup_timeout: float = DEFAULT_HANGUP_TIMEOUT,
    max_steps: int = 1000,
) -> SimResult:
    """Simulate one call of ``flow`` as ``scenario`` describes; never raises for flow errors.
    ``hangup_timeout`` (the ceiling of the ``on hangup`` body) and ``max_steps`` (the step
    budget between two waits): as ``voxflow run``'s settings of those names."""
    sim = _Sim(flow, scenario, defaults or ScenarioDefaults(), hangup_timeout, max_steps)
    return sim.run()
