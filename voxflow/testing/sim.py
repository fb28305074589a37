"""Run one scenario against a compiled flow in virtual time, on the pure step function.

No sockets, no sleeping: a heap of timed events (op completions, timers, caller actions) feeds
:func:`voxflow.runtime.step.step`'s machine, and the clock jumps from event to event, so a call
with a 30 s timeout runs in milliseconds and always gives the same result.

Simulated durations: a spoken prompt lasts 0.4 s per word (at least 0.5 s), a played file 2 s
(``mocks.media`` overrides per file name or prompt text), a caller sentence 0.3 s per word,
DTMF keys are 0.2 s apart. A caller action without ``at``/``bargein`` happens when the flow next
listens for input (a gather collecting, a recording running, an agent, queue or dial in progress)
plus ``after`` (default 0.3 s).
"""

from __future__ import annotations

import heapq
import re
import zlib
import zoneinfo
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from voxflow.ir import models as ir
from voxflow.ir.flowmap import edge_source, outcome_label, step_key
from voxflow.runtime import events as ev
from voxflow.runtime.machine import RunState
from voxflow.runtime.step import initial_state, step
from voxflow.spec.dtmf import example_number
from voxflow.testing.scenario import Action, AgentMock, Mocks, Scenario, ScenarioDefaults

__all__ = [
    "CoverageObserver",
    "Hit",
    "SentRequest",
    "SimResult",
    "TraceLine",
    "run_scenario",
    "traced_step",
]

DEFAULT_TIME = "2025-01-06T10:00:00"  # a Monday, 10:00 in the flow's timezone
_REACTION = 0.3
_INTERDIGIT = 0.2
_WORD_SAY = 0.4
_WORD_CALLER = 0.3
_PLAY = 2.0
_MAX_EVENTS = 20000


@dataclass(frozen=True, slots=True)
class TraceLine:
    """One line of the readable call trace: virtual seconds, who, what."""

    t: float
    who: str
    text: str

    def render(self) -> str:
        return f"{self.t:8.2f}s  {self.who:<7} {self.text}"


@dataclass(frozen=True, slots=True)
class Hit:
    """A coverage observation: ``kind`` is state, transition, branch; ``key`` as in
    :mod:`voxflow.ir.flowmap`."""

    kind: str
    key: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SentRequest:
    """An HTTP request the flow made (an ``http`` step or an agent action), as sent."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = None


@dataclass
class SimResult:
    """Everything observable about one simulated call."""

    trace: list[TraceLine] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    played: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    transfers: list[str] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)
    dialed: list[str] = field(default_factory=list)
    recordings: list[str] = field(default_factory=list)
    http: list[str] = field(default_factory=list)
    requests: list[SentRequest] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    hits: set[Hit] = field(default_factory=set)
    ended: tuple[str, str] | None = None
    ended_at: float | None = None
    end_state: str | None = None
    problems: list[tuple[int, str]] = field(default_factory=list)
    """Scenario problems found while running: (step index or -1, message)."""
    steps_done: int = 0


# ---------------------------------------------------------------- the coverage observer


class CoverageObserver:
    """A :class:`~voxflow.runtime.machine.StepObserver` recording coverage ``hits``.

    ``labels`` maps a handler block (by id) to its (outcome label, origin), learnt when the
    handler is chosen, so a later transition inside it is attributed to the right edge; keep
    one observer per call (the blocks belong to the compiled flow, which outlives the call).
    """

    def __init__(self, hits: set[Hit] | None = None) -> None:
        self.hits: set[Hit] = set() if hits is None else hits
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
        target: str = step.op
        if step.op == "goto":
            sub, dot, _ = where.rpartition(".")
            target = f"{sub}.{step.state}" if dot else step.state
        self.hits.add(Hit("transition", (edge_source(where, origin), label, target)))


def traced_step(
    flow: ir.Flow, state: RunState, event: ev.Event, observer: CoverageObserver
) -> tuple[RunState, list[ev.Command]]:
    """:func:`voxflow.runtime.step.step`, also recording coverage in ``observer.hits``."""
    return step(flow, state, event, observer)


# ---------------------------------------------------------------- the simulator


@dataclass
class _Live:
    op: ev.Op
    due: float | None  # None: waits for the caller (listen) or forever


@dataclass
class _Rec:
    """A recording in progress: how much caller speech it heard, since when it is quiet."""

    name: str
    silence: float | None  # seconds of silence that end it (Asterisk maxSilenceSeconds)
    quiet_from: float
    heard: float = 0.0
    timer: int | None = None  # the record step's RecordTimer
    gen: int = 0  # bumped when the caller speaks: older silence checks are void


@dataclass(order=True)
class _Ev:
    t: float
    seq: int
    kind: str = field(compare=False)  # op, timer, action, digit, speech, hangup, timeout
    data: Any = field(compare=False, default=None)


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
    def __init__(self, flow: ir.Flow, sc: Scenario, defaults: ScenarioDefaults) -> None:
        self.flow = flow
        self.sc = sc
        self.mocks: Mocks = sc.mocks.merged(defaults.mocks)
        self.used: dict[int, int] = {}
        self.timeout = sc.timeout if sc.timeout is not None else defaults.timeout
        self.base = _base_epoch(sc.time or defaults.time, flow.config.timezone)
        speech = sc.speech if sc.speech is not None else defaults.speech
        call = ev.CallInfo(
            id=f"test-{zlib.crc32(sc.name.encode()):08x}",
            caller=sc.caller if sc.caller is not None else defaults.caller,
            called=sc.called if sc.called is not None else (defaults.called or _first(flow)),
            direction=sc.direction or defaults.direction,
        )
        state = initial_state(flow, call, speech=speech)
        extra = {**defaults.metadata, **sc.metadata}
        if extra:  # route metadata a dialer or the PBX would pass in
            state = replace(state, metadata=MappingProxyType({**state.metadata, **extra}))
        self.state = state
        self.res = SimResult()
        self.observer = CoverageObserver(self.res.hits)
        self.heap: list[_Ev] = []
        self.seq = 0
        self.t = 0.0
        self.live: dict[int, _Live] = {}
        self.listen_cid: int | None = None
        self.pending_speech: str | None = None
        self.prompt_started: float | None = None
        self.next_action = 0
        self.armed = False
        self.busy_until = 0.0
        self.agent_index = 0
        self.recs: dict[str, _Rec] = {}
        self.last_rec: str | None = None

    # -------------------------------------------------------------- plumbing

    def push(self, t: float, kind: str, data: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, _Ev(t, self.seq, kind, data))

    def log(self, who: str, text: str) -> None:
        self.res.trace.append(TraceLine(round(self.t, 3), who, text))

    def problem(self, text: str, step: int | None = None) -> None:
        idx = self.next_action if step is None else step
        self.res.problems.append((idx, text))
        self.log("!", text)

    def feed(self, event: ev.Event) -> None:
        self.state, cmds = step(self.flow, self.state, event, self.observer)
        for cmd in cmds:
            self.perform(cmd)

    def now(self) -> float:
        return self.base + self.t

    def _take(self, mocks: tuple[Any, ...], pred: Any) -> Any:
        for m in mocks:
            left = m.times - self.used.get(id(m), 0) if m.times is not None else 1
            if left > 0 and pred(m):
                self.used[id(m)] = self.used.get(id(m), 0) + 1
                return m
        return None

    def _failure(self, op: str, subject: str) -> str | None:
        m = self._take(
            self.mocks.fail, lambda f: f.op == op and re.search(f.match, subject) is not None
        )
        return m.error if m is not None else None

    # -------------------------------------------------------------- commands

    def perform(self, cmd: ev.Command) -> None:
        if isinstance(cmd, ev.Notify):
            self.notify(cmd)
        elif isinstance(cmd, ev.End):
            self.res.ended = (cmd.outcome, cmd.reason)
            self.res.ended_at = self.t
            self.res.end_state = self.state.state_name
            self.log(
                "flow", f"call ended: {cmd.outcome}" + (f" ({cmd.reason})" if cmd.reason else "")
            )
        elif isinstance(cmd, ev.Hangup):
            self.log("flow", f"hangs up ({cmd.reason})")
        elif isinstance(cmd, ev.Log):
            if cmd.level == "error":
                self.res.errors.append(cmd.message)
            self.log("log", f"{cmd.level}: {cmd.message}")
        elif isinstance(cmd, ev.SetMeta):
            self.res.metadata[cmd.key] = cmd.value
        elif isinstance(cmd, ev.StopAll):
            for cid in list(self.live):
                self.live.pop(cid)
            self.listen_cid = None
        elif isinstance(cmd, ev.StopOp):
            self.stop(cmd.cid)
        elif isinstance(cmd, ev.Op):
            self.start_op(cmd)

    def notify(self, n: ev.Notify) -> None:
        d = n.data
        if n.kind == "state.entered":
            name = f"{d['subflow']}.{d['state']}" if d.get("subflow") else str(d["state"])
            self.res.states.append(name)
            self.log("flow", f"enters state {name}")
        elif n.kind == "outcome":
            self.log("flow", f"{d.get('step')} -> {d.get('outcome')} (#{d.get('count')})")
        elif n.kind == "command":
            self.log("flow", f"anytime command {d.get('name')}")

    def done_at(self, cid: int, t: float, result: Any = None) -> None:
        self.live[cid].due = t
        self.push(t, "op", (cid, result))

    def start_op(self, op: ev.Op) -> None:
        cid = op.cid
        self.live[cid] = _Live(op, None)
        t = self.t
        if isinstance(op, ev.StartTimer):
            self.live[cid].due = t + op.ms / 1000.0
            self.push(t + op.ms / 1000.0, "timer", cid)
            rec = self.recs.get(self.last_rec or "")
            if isinstance(op, ev.RecordTimer) and rec is not None:
                rec.timer = cid
                if rec.silence is not None:
                    self.push(rec.quiet_from + rec.silence, "rec_silence", (rec.name, rec.gen))
            return
        if isinstance(op, ev.Listen):
            self.listen_cid = cid
            self.live[cid].due = t + op.timeout_ms / 1000.0
            self.push(t + op.timeout_ms / 1000.0, "listen_timeout", cid)
            if self.pending_speech is not None:
                text, self.pending_speech = self.pending_speech, None
                self.hear(text)
            return
        subject, kind = _subject(op)
        err = self._failure(kind, subject) if kind else None
        if err is not None:
            self.log("mock", f"{kind} {subject!r} fails: {err}")
            self.push(t, "fail", (cid, err))
            return
        if isinstance(op, ev.Say):
            self.res.said.append(op.text)
            self.log("flow", f'says "{op.text}"')
            self.prompt_started = t
            words = max(0.5, _WORD_SAY * len(op.text.split()))
            self.done_at(cid, t + self.mocks.media.get(op.text, words))
        elif isinstance(op, ev.Play):
            self.res.played.append(op.source)
            self.log("flow", f"plays {op.kind} {op.source}")
            self.prompt_started = t
            self.done_at(cid, t + self.mocks.media.get(op.source, _PLAY))
        elif isinstance(op, ev.Http):
            self.http(op)
        elif isinstance(op, ev.Dial):
            self.res.dialed.append(op.endpoint)
            m = self._take(self.mocks.dial, lambda d: re.search(d.endpoint, op.endpoint))
            result, after = (m.result, m.after) if m else ("answered", 3.0)
            after = min(after, op.timeout_ms / 1000.0) if result == "noanswer" else after
            self.log("flow", f"dials {op.endpoint}" + ("" if m else " (no mock: answered)"))
            self.done_at(cid, t + after, result)
        elif isinstance(op, ev.Queue):
            self.res.queues.append(op.name)
            m = self._take(self.mocks.queue, lambda q: re.search(q.name, op.name))
            result, after = (m.result, m.after) if m else ("answered", 10.0)
            if result == "timeout":
                after = op.timeout_ms / 1000.0
            self.log(
                "flow", f"queues the caller in {op.name}" + ("" if m else " (no mock: answered)")
            )
            self.done_at(cid, t + after, result)
        elif isinstance(op, ev.Transfer):
            self.res.transfers.append(op.endpoint)
            self.log("flow", f"transfers to {op.endpoint}")
            self.done_at(cid, t + 0.5)
        elif isinstance(op, ev.RecordStart):
            self.res.recordings.append(op.name)
            self.log("flow", f"starts recording {op.name}")
            silence = op.silence_ms / 1000.0 if op.silence_ms else None
            self.recs[op.name] = _Rec(op.name, silence, quiet_from=t)
            self.last_rec = op.name
            self.done_at(cid, t, op.name)
        elif isinstance(op, ev.RecordStop):
            self.log("flow", f"stops recording {op.name or ''}".rstrip())
            rec = self.recs.pop(op.name or self.last_rec or "", None)
            heard = {"name": rec.name, "duration": round(rec.heard, 3)} if rec else op.name
            self.done_at(cid, t, heard)
        elif isinstance(op, ev.Agent):
            self.agent(op)
        else:  # answer, hold, unhold, send_dtmf
            self.log("flow", _describe_simple(op))
            self.done_at(cid, t)

    def http(self, op: ev.Http) -> None:
        self.res.http.append(f"{op.method} {op.url}")
        self.res.requests.append(SentRequest(op.method, op.url, op.headers, op.body))
        m = self._take(
            self.mocks.http,
            lambda h: (h.method in (None, op.method)) and re.search(h.url, op.url) is not None,
        )
        if m is None:
            self.problem(f"no HTTP mock for {op.method} {op.url} (add one under mocks.http)")
            self.done_at(op.cid, self.t, {"outcome": "error", "status": None, "error": "unmocked"})
            return
        outcome = m.outcome or ("ok" if 200 <= m.status < 300 else "error")
        delay = m.delay
        if outcome == "timeout" or delay * 1000 >= op.timeout_ms:
            outcome, delay = "timeout", op.timeout_ms / 1000.0
        data = m.json_ if m.json_ is not None else m.text
        status = m.status if outcome != "timeout" and m.outcome != "error" else None
        self.log("flow", f"HTTP {op.method} {op.url} -> {status or outcome}")
        self.done_at(op.cid, self.t + delay, {"outcome": outcome, "status": status, "data": data})

    def agent(self, op: ev.Agent) -> None:
        mocks = self.mocks.agent
        m: AgentMock | None = None
        if self.agent_index < len(mocks):
            m = mocks[self.agent_index]
            self.agent_index += 1
        self.log("flow", "starts the agent" + (f' ("{op.greeting}")' if op.greeting else ""))
        t = self.t
        if op.greeting:
            self.res.said.append(op.greeting)
            t += max(0.5, _WORD_SAY * len(op.greeting.split()))
        if m is None:
            self.problem("no agent mock left for this agent step (add one under mocks.agent)")
            self.done_at(op.cid, t, {"outcome": "error", "args": {}, "transcript": ""})
            return
        lines: list[str] = []
        for turn in m.turns:
            if turn.caller:
                lines.append(f"caller: {turn.caller}")
                self.res.trace.append(TraceLine(round(t, 3), "caller", f'says "{turn.caller}"'))
                t += _WORD_CALLER * len(turn.caller.split()) + 0.5
            if turn.action is not None:
                t = self.agent_action(op, turn.action, turn.args, t)
            if turn.reply:
                lines.append(f"agent: {turn.reply}")
                self.res.said.append(turn.reply)
                self.res.trace.append(TraceLine(round(t, 3), "agent", f'says "{turn.reply}"'))
                t += max(0.5, _WORD_SAY * len(turn.reply.split()))
        if m.tool is not None:
            names = {str(tool.get("name")) for tool in op.tools}
            if m.tool not in names:
                self.problem(f"agent mock calls tool '{m.tool}' but the step offers: "
                             f"{', '.join(sorted(names)) or 'no tools'}")  # fmt: skip
            outcome = "tool:" + m.tool
        else:
            outcome = str(m.outcome)
        if m.after is not None:
            t = self.t + m.after
        transcript = m.transcript if m.transcript is not None else "\n".join(lines)
        self.done_at(
            op.cid, t, {"outcome": outcome, "args": dict(m.args), "transcript": transcript}
        )

    def agent_action(self, op: ev.Agent, name: str, args: dict[str, Any], t: float) -> float:
        """The model calls the step's action ``name``: render its request as the runner does,
        answer it from ``mocks.http``; returns the time the answer is back."""
        from voxflow.runtime.agent_actions import RequestError, render_request

        action = next((a for a in op.actions if getattr(a, "name", None) == name), None)
        if action is None:
            names = ", ".join(sorted(str(getattr(a, "name", "")) for a in op.actions))
            self.problem(f"agent mock calls action '{name}' but the step offers: {names or 'none'}")
            return t
        try:
            req = render_request(
                action, op.action_vars, args, timezone=op.timezone, now=self.base + t
            )
        except RequestError as exc:  # the model would get an error: in a test, a flow bug
            self.problem(f"agent action '{name}' could not be prepared: {exc}")
            return t
        self.res.http.append(f"{req.method} {req.url}")
        self.res.requests.append(SentRequest(req.method, req.url, req.headers, req.body))
        m = self._take(
            self.mocks.http,
            lambda h: h.method in (None, req.method) and re.search(h.url, req.url) is not None,
        )
        if m is None:
            self.problem(f"no HTTP mock for {req.method} {req.url} (add one under mocks.http)")
            return t
        timeout, delay = float(action.timeout_ms) / 1000.0, float(m.delay)
        timed_out = m.outcome == "timeout" or delay >= timeout
        answer = "timeout" if timed_out else m.outcome or str(m.status)
        self.res.trace.append(
            TraceLine(round(t, 3), "agent", f"calls {name}: {req.method} {req.url} -> {answer}")
        )
        return t + (timeout if timed_out else delay) + 0.5

    def stop(self, cid: int) -> None:
        live = self.live.get(cid)
        if live is None:
            return
        if cid == self.listen_cid:
            self.listen_cid = None
        if isinstance(live.op, ev.Say | ev.Play):
            self.log("flow", "prompt stopped (barge-in)")
            live.due = self.t
            self.push(self.t, "op", (cid, None))
        else:
            self.live.pop(cid)

    # -------------------------------------------------------------- caller

    def listening(self) -> bool:
        w = self.state.wait
        if w is None:
            return False
        if w.kind == "gather":
            return w.phase == "collect"
        if w.kind == "record":
            return w.phase == "recording"
        return getattr(w.step, "op", "") in ("agent", "queue", "dial")

    def arm(self) -> None:
        """Schedule the next caller action once its trigger holds."""
        if self.armed or self.next_action >= len(self.sc.steps):
            return
        a = self.sc.steps[self.next_action]
        start = max(self.t, self.busy_until)
        if a.at is not None:
            when = max(a.at, start)
        elif a.kind == "wait":
            when = start
        elif a.bargein is not None:
            if self.prompt_started is None or self.prompt_started < self.busy_until:
                return
            when = max(start, self.prompt_started + a.bargein)
        elif self.t < self.busy_until:  # still busy with the last action: look again then
            self.push(self.busy_until, "wake")
            self.armed = True
            return
        elif self.listening():
            when = start + (a.after if a.after is not None else _REACTION)
        else:
            return
        self.armed = True
        self.push(when, "action", self.next_action)

    def act(self, index: int) -> None:
        a: Action = self.sc.steps[index]
        self.armed = False
        self.next_action = index + 1
        self.res.steps_done = index + 1
        if a.kind == "press":
            self.log("caller", f"presses {a.value}")
            for i, d in enumerate(a.value):
                self.push(self.t + i * _INTERDIGIT, "digit", d)
            self.busy_until = self.t + len(a.value) * _INTERDIGIT
        elif a.kind == "say":
            dur = _WORD_CALLER * len(a.value.split())
            self.log("caller", f'says "{a.value}"')
            self.push(self.t + dur, "speech", a.value)
            self.busy_until = self.t + dur
            self.voice(dur)
        elif a.kind in ("silence", "wait"):
            self.log("caller", f"stays silent for {a.seconds:g}s")
            self.busy_until = self.t + a.seconds
        else:
            self.log("caller", "hangs up")
            self.push(self.t, "hangup", None)

    def recording(self) -> _Rec | None:
        """The record step's recording, while it records."""
        w = self.state.wait
        if w is None or w.kind != "record" or w.phase != "recording":
            return None
        return self.recs.get(w.digits)

    def voice(self, seconds: float) -> None:
        """The caller talks from now for ``seconds``: a recording hears it and is not quiet."""
        rec = self.recording()
        if rec is None:
            return
        rec.heard += seconds
        rec.quiet_from = self.t + seconds
        rec.gen += 1
        if rec.silence is not None:
            self.push(rec.quiet_from + rec.silence, "rec_silence", (rec.name, rec.gen))

    def hear(self, text: str) -> None:
        """The caller finished a sentence: give it to the live listen, barge in, or lose it."""
        if self.listen_cid is not None and self.listen_cid in self.live:
            cid, self.listen_cid = self.listen_cid, None
            self.live.pop(cid)
            self.feed(ev.OpDone(cid, text, now=self.now()))
            return
        w = self.state.wait
        main = w.main_cid if w is not None else None
        step = w.step if w is not None else None
        mode = getattr(getattr(step, "bargein", None), "mode", "none")
        speech_step = w is not None and w.kind == "gather" and self.state.speech
        if main is not None and main in self.live and mode in ("speech", "any") and speech_step:
            self.pending_speech = text
            self.log("flow", "prompt stopped (speech barge-in)")
            self.live.pop(main)
            self.feed(ev.OpDone(main, None, now=self.now()))
            if self.pending_speech is not None:  # no listen followed
                self.pending_speech = None
                self.log("flow", f'did not hear "{text}"')
            return
        self.log("flow", f'did not hear "{text}" (not listening for speech)')

    # -------------------------------------------------------------- main loop

    def run(self) -> SimResult:
        self.feed(ev.Start(now=self.now()))
        events = 0
        while not self.state.ended:
            self.arm()
            if not self.heap:
                left = len(self.sc.steps) - self.next_action
                what = f"; {left} caller step(s) never ran" if left else ""
                self.problem(f"the flow waits for nothing and the call cannot go on{what}")
                break
            e = heapq.heappop(self.heap)
            if e.t > self.timeout:
                self.t = self.timeout
                self.problem(f"the call was still up after the {self.timeout:g}s timeout")
                self.feed(ev.HangupEvent("timeout", now=self.now()))
                break
            events += 1
            if events > _MAX_EVENTS:
                self.problem(f"more than {_MAX_EVENTS} events: the flow loops")
                break
            self.t = max(self.t, e.t)
            self.dispatch(e)
        if self.next_action < len(self.sc.steps) and not any(
            "never ran" in p for _, p in self.res.problems
        ):
            rest = ", ".join(a.describe() for a in self.sc.steps[self.next_action :])
            self.problem(f"the call ended before these caller steps ran: {rest}")
        self.res.variables = self.state.variables()
        self.res.metadata = {**dict(self.state.metadata), **self.res.metadata}
        return self.res

    def dispatch(self, e: _Ev) -> None:
        now = self.now()
        if e.kind == "op":
            cid, result = e.data
            if self.live.pop(cid, None) is not None:
                self.feed(ev.OpDone(cid, result, now=now))
        elif e.kind == "fail":
            cid, err = e.data
            if self.live.pop(cid, None) is not None:
                self.feed(ev.OpFailed(cid, err, now=now))
        elif e.kind == "timer":
            if self.live.pop(e.data, None) is not None:
                self.feed(ev.TimerFired(e.data, now=now))
        elif e.kind == "listen_timeout":
            if self.live.pop(e.data, None) is not None:
                if self.listen_cid == e.data:
                    self.listen_cid = None
                self.feed(ev.OpDone(e.data, None, now=now))
        elif e.kind == "action":
            self.act(e.data)
        elif e.kind == "digit":
            self.feed(ev.Dtmf(e.data, now=now))
        elif e.kind == "speech":
            self.hear(e.data)
        elif e.kind == "hangup":
            self.feed(ev.HangupEvent("normal", now=now))
        elif e.kind == "wake":
            self.armed = False
        elif e.kind == "rec_silence":
            name, gen = e.data
            rec = self.recs.get(name)
            if rec is not None and rec.gen == gen and rec.timer in self.live:
                self.log("flow", f"recording {name} ends after {rec.silence:g}s of silence")
                self.live.pop(rec.timer)
                self.feed(ev.TimerFired(rec.timer, now=now))


def _first(flow: ir.Flow) -> str:
    return example_number(flow.answers[0]) if flow.answers else ""


def _subject(op: ev.Op) -> tuple[str, str]:
    """(text a fail mock matches, op name) for ops that can be made to fail."""
    if isinstance(op, ev.Say):
        return op.text, "say"
    if isinstance(op, ev.Play):
        return op.source, "play"
    if isinstance(op, ev.Http):
        return op.url, "http"
    if isinstance(op, ev.Dial):
        return op.endpoint, "dial"
    if isinstance(op, ev.Queue):
        return op.name, "queue"
    if isinstance(op, ev.Transfer):
        return op.endpoint, "transfer"
    if isinstance(op, ev.RecordStart):
        return op.name, "record_start"
    if isinstance(op, ev.RecordStop):
        return op.name or "", "record_stop"
    if isinstance(op, ev.Agent):
        return op.system, "agent"
    if isinstance(op, ev.SendDtmf):
        return op.digits, "send_dtmf"
    if isinstance(op, ev.Hold):
        return op.music or "", "hold"
    if isinstance(op, ev.Answer):
        return "", "answer"
    return "", ""


def _describe_simple(op: ev.Op) -> str:
    if isinstance(op, ev.Answer):
        return "answers"
    if isinstance(op, ev.Hold):
        return "puts the caller on hold"
    if isinstance(op, ev.Unhold):
        return "takes the caller off hold"
    if isinstance(op, ev.SendDtmf):
        return f"sends DTMF {op.digits}"
    return type(op).__name__.lower()


def run_scenario(
    flow: ir.Flow, scenario: Scenario, defaults: ScenarioDefaults | None = None
) -> SimResult:
    """Simulate one call of ``flow`` as ``scenario`` describes; never raises for flow errors."""
    sim = _Sim(flow, scenario, defaults or ScenarioDefaults())
    return sim.run()
