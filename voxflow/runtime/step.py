"""The pure step function: ``step(flow, state, event) -> (state, commands)``.

No I/O, no clock, no randomness: the same flow, state and event always give the same result,
which is what lets ``voxflow test`` run flows in virtual time. The execution semantics are those
documented in :mod:`voxflow.ir.models`; notes on choices made here:

* DTMF pressed while no input step listens is kept in a type-ahead buffer (max 32 keys) that the
  next ``gather`` consumes; with DTMF barge-in it also stops the prompt playing.
* ``input both`` listens for speech only when the state says speech is available
  (``RunState.speech``); otherwise it behaves like ``dtmf``.
* A gather with choices ends as soon as the keys typed so far can only be one choice/command,
  or cannot be any; otherwise on terminator, ``max_digits``, or ``interdigit_ms`` of silence.
* Success outcomes (ok, answered, done, returned) with no handler continue after the step.
* A step budget (``RunState.max_steps``) bounds the steps run for one event: a loop with no
  waiting step is a runtime error that hangs up, instead of starving the event loop.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

from voxflow.errors import FlowRuntimeError
from voxflow.ir import models as ir
from voxflow.runtime import events as ev
from voxflow.runtime import input_steps
from voxflow.runtime.expressions import UNSET, truthy
from voxflow.runtime.machine import (
    DISPATCH,
    Cursor,
    Frame,
    RunState,
    StepObserver,
    Wait,
    _Machine,
)
from voxflow.runtime.runstate import _Abort, _MFrame, _skey

__all__ = ["Cursor", "Frame", "RunState", "StepObserver", "initial_state", "step"]


def initial_state(
    flow: ir.Flow, call: ev.CallInfo, *, max_steps: int = 1000, speech: bool = False
) -> RunState:
    """The state of a call before its :class:`~voxflow.runtime.events.Start` event."""
    return RunState(
        call=call,
        metadata=MappingProxyType(dict(flow.metadata)),
        webhook_keys=frozenset(flow.webhook_keys),
        max_steps=max_steps,
        speech=speech,
    )


def step(
    flow: ir.Flow, state: RunState, event: ev.Event, observer: StepObserver | None = None
) -> tuple[RunState, list[ev.Command]]:
    """Advance one call by one event. Never raises for flow errors: they become commands.

    ``observer`` (optional) is told of states entered, outcomes, handlers and transitions as
    they happen (see :class:`~voxflow.runtime.machine.StepObserver`); it changes nothing."""
    if state.status == "ended":
        return state, []
    m = _Machine(flow, state, event.now, observer)
    m.handle(event)
    return m.freeze(), m.out


# ------------------------------------------------------------ step kinds


def _x_answer(m: _Machine, s: ir.AnswerStep) -> None:
    c = m.cid()
    m.emit(ev.Answer(c))
    m.wait = Wait("op", s, frozenset({c}), main_cid=None)


def _x_say(m: _Machine, s: ir.SayStep) -> None:
    text = m.render(s.text)
    c = m.cid()
    if m.typeahead and s.bargein.mode in ("dtmf", "any"):
        m.advance()  # the caller already typed ahead: a barge-in prompt is skipped
        return
    m.emit(ev.Say(c, text, s.voice or m.flow.config.voice, s.bargein.mode))
    m.emit(ev.Notify("prompt", {"text": text}))
    m.wait = Wait("op", s, frozenset({c}), main_cid=c)


_JINJA = re.compile(r"\{\{|\{%")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _outside_media(template: str, rendered: str, kind: str) -> str | None:
    """Why a ``play`` source whose template takes values from variables (an HTTP answer, what
    the caller said) reaches outside the sounds: a control character (NUL), a ``..`` segment,
    an absolute path or a ``scheme:`` the flow did not write. None when it is fine (a literal
    source is the flow author's own and is not checked)."""
    m = _JINJA.search(template)
    if m is None:
        return None
    if _CONTROL.search(rendered):
        return "it has a control character"
    if kind == "url":
        return None
    fixed = template[: m.start()]
    if ".." in rendered.replace("\\", "/").split("/"):
        return "it has a '..' path segment"
    if rendered.startswith(("/", "\\")) and not fixed.startswith(("/", "\\")):
        return "it is an absolute path"
    filled = rendered[len(fixed) :] if rendered.startswith(fixed) else rendered
    if ":" in filled:
        return "it names a media scheme ('x:') the flow did not write"
    return None


def _x_play(m: _Machine, s: ir.PlayStep) -> None:
    source = m.render(s.source)
    why = _outside_media(s.source.source, source, s.kind)
    if why is not None:
        raise FlowRuntimeError(f"play {source!r} refused: {why}")
    if m.typeahead and s.bargein.mode in ("dtmf", "any"):
        m.advance()
        return
    c = m.cid()
    m.emit(ev.Play(c, s.kind, source, s.bargein.mode))
    m.emit(ev.Notify("prompt", {"play": source}))
    m.wait = Wait("op", s, frozenset({c}), main_cid=c)


def _x_pause(m: _Machine, s: ir.PauseStep) -> None:
    c = m.cid()
    m.emit(ev.StartTimer(c, s.duration_ms))
    m.wait = Wait("op", s, frozenset({c}))


def _x_gather(m: _Machine, s: ir.GatherStep) -> None:
    input_steps.gather_start(m, s)


def _x_set(m: _Machine, s: ir.SetStep) -> None:
    m.assign(s.var, m.eval(s.value))
    m.advance()


def _x_if(m: _Machine, s: ir.IfStep) -> None:
    for b in s.branches:
        if truthy(m.eval(b.cond)):
            m.push(b.steps)
            return
    m.push(s.else_steps)


def _x_switch(m: _Machine, s: ir.SwitchStep) -> None:
    subject = m.eval(s.subject)
    for case in s.cases:
        for v in case.values:
            val = m.eval(v)
            if val == subject and isinstance(val, bool) == isinstance(subject, bool):
                m.push(case.steps)
                return
    m.push(s.default_steps)


def _x_record_start(m: _Machine, s: ir.RecordStartStep) -> None:
    c = m.cid()
    m.emit(ev.RecordStart(c, m.render(s.name), s.format, s.max_duration_ms, s.beep))
    m.wait = Wait("op", s, frozenset({c}))


def _x_record_stop(m: _Machine, s: ir.RecordStopStep) -> None:
    c = m.cid()
    m.emit(ev.RecordStop(c, m.render(s.name) if s.name else None))
    m.wait = Wait("op", s, frozenset({c}))


def _x_record(m: _Machine, s: ir.RecordStep) -> None:
    m.count_attempt(s)
    if m.typeahead:
        why = "typed before the recording"
        m.emit(ev.Notify("input.ignored", {"digits": m.typeahead, "why": why}))
    m.typeahead = ""
    if s.prompt is not None:
        c = m.cid()
        text = m.render(s.prompt)
        m.emit(ev.Say(c, text, m.flow.config.voice, s.bargein.mode))
        m.emit(ev.Notify("prompt", {"text": text}))
        m.wait = Wait("record", s, frozenset({c}), phase="prompt", main_cid=c)
    else:
        m.wait = Wait("record", s, frozenset({0}), phase="prompt")
        input_steps.record_op(m, m.wait, 0, None)


def _x_dial(m: _Machine, s: ir.DialStep) -> None:
    c = m.cid()
    caller_id = m.render(s.caller_id) if s.caller_id else None
    endpoints = [m.render(e) for e in (s.endpoint, *s.others)]
    for e in endpoints:
        if "&" in e:
            raise FlowRuntimeError(
                f"dial string {e!r} has '&': ARI cannot ring several endpoints in one string "
                '(list them: dial "A", "B")'
            )
    others = tuple(endpoints[1:])
    whisper = m.render(s.whisper) if s.whisper else None
    m.emit(
        ev.Dial(
            c, endpoints[0], caller_id, s.timeout_ms, s.music, others, s.ring,
            s.far_dtmf, whisper, s.accept, s.accept_timeout_ms, m.flow.config.voice,
        )
    )  # fmt: skip
    m.wait = Wait("op", s, frozenset({c}))


def _x_transfer(m: _Machine, s: ir.TransferStep) -> None:
    c = m.cid()
    endpoint = m.render(s.endpoint)
    m.emit(ev.Transfer(c, endpoint, _carry(m, s.carry)))
    m.wait = Wait("op", s, frozenset({c}), digits=endpoint)


_CARRY_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _carry(m: _Machine, expr: ir.Expr | None) -> tuple[tuple[str, str], ...]:
    """A step's ``carry`` map as (key, text) pairs (keys: letters, digits, '_')."""
    if expr is None:
        return ()
    value = m.eval(expr)
    if not isinstance(value, dict):
        raise FlowRuntimeError(f"carry must be a map, not {value!r}")
    out = []
    for k, v in value.items():
        if not _CARRY_KEY.match(str(k)):
            raise FlowRuntimeError(f"carry key {k!r}: use letters, digits and '_'")
        out.append((str(k), "" if v is None else str(v)))
    return tuple(out)


def _x_queue(m: _Machine, s: ir.QueueStep) -> None:
    c = m.cid()
    name = m.render(s.name)
    announce = m.render(s.announce) if s.announce else None
    attrs = _carry(m, s.carry)
    m.emit(
        ev.Queue(
            c, name, s.timeout_ms, s.music, announce, s.priority,
            s.announce_position, attrs, tuple(k for c in s.choices for k in c.keys),
        )
    )  # fmt: skip
    until = m.now + s.timeout_ms / 1000.0  # for a worker that takes the call over
    m.wait = Wait("op", s, frozenset({c}), digits=name, until=until)


def _x_hold(m: _Machine, s: ir.HoldStep) -> None:
    c = m.cid()
    m.emit(ev.Hold(c, s.music))
    m.wait = Wait("op", s, frozenset({c}))


def _x_unhold(m: _Machine, s: ir.UnholdStep) -> None:
    c = m.cid()
    m.emit(ev.Unhold(c))
    m.wait = Wait("op", s, frozenset({c}))


def _x_send_dtmf(m: _Machine, s: ir.SendDtmfStep) -> None:
    c = m.cid()
    m.emit(ev.SendDtmf(c, m.render(s.digits)))
    m.wait = Wait("op", s, frozenset({c}))


def _x_http(m: _Machine, s: ir.HttpStep) -> None:
    c = m.cid()
    body = _arg(m, s.body) if s.body is not None else None
    headers = tuple((k, m.render(v)) for k, v in s.headers)
    url = m.render(s.url)
    key = m.effect()
    m.emit(ev.Http(c, s.method, url, headers, body, s.timeout_ms, key, s.retries, s.backoff_ms))
    m.wait = Wait("op", s, frozenset({c}))


def _x_agent(m: _Machine, s: ir.AgentStep) -> None:
    c = m.cid()
    tools = tuple(
        {
            "name": t.name,
            "description": t.description,
            "args": [
                {
                    "name": a.name,
                    "type": a.type,
                    "description": a.description,
                    "required": a.required,
                    "schema": a.constraints,
                }
                for a in t.args
            ],
        }
        for t in s.tools
    )
    m.emit(
        ev.Agent(
            c,
            m.render(s.system),
            m.render(s.greeting) if s.greeting else None,
            tools,
            s.max_turns,
            s.timeout_ms,
            s.silence_ms,
            m.render(s.filler) if s.filler else None,
            s.filler_after_ms,
            s.give_up_ms,
            s.context,
            s.voice or m.flow.config.voice,
            s.bargein.mode,
            actions=s.actions,
            action_vars=_action_vars(m) if s.actions else None,
            timezone=m.flow.config.timezone,
            model=s.model,
            temperature=s.temperature,
        )
    )
    m.wait = Wait("op", s, frozenset({c}))


def _action_vars(m: _Machine) -> dict[str, Any]:
    """What an agent action's templates see besides its arguments (as ``render`` does)."""
    names = {k: v for f in (m.frames[0], m.top) for k, v in f.variables.items() if v is not UNSET}
    names["call"] = m.call_root()
    return names


def _arg(m: _Machine, e: ir.Expr) -> Any:
    """A value sent or passed on (a subflow argument, an http ``body``): a string literal with
    ``{{ }}``/``{% %}``, alone or an item of a literal list or map, is a template rendered in the
    caller's scope (``call confirm(question = "Pay {{ amount }}?")``, ``body "{{ call.caller }}"``,
    ``body {"caller": "{{ call.caller }}"}``); anything else is evaluated."""
    if isinstance(e, ir.LiteralExpr) and isinstance(e.value, str) and "{" in e.value:
        if "{{" in e.value or "{%" in e.value:
            return m.render(ir.Template(source=e.value))
    elif isinstance(e, ir.MapExpr):
        return {k: _arg(m, v) for k, v in e.entries}
    elif isinstance(e, ir.ListExpr):
        return [_arg(m, v) for v in e.items]
    return m.eval(e)


def _x_call(m: _Machine, s: ir.CallStep) -> None:
    sub = m.flow.subflows.get(s.subflow)
    if sub is None:
        raise _Abort(f"no subflow '{s.subflow}'", s.span)
    given = {name: _arg(m, e) for name, e in s.args}
    variables: dict[str, Any] = {}
    m.frames.append(_MFrame(sub.name, sub.initial, variables, []))
    for p in sub.params:
        if p.name in given:
            variables[p.name] = given[p.name]
        elif p.default is not None:
            variables[p.name] = m.eval(p.default)
        else:
            raise _Abort(f"subflow '{sub.name}' needs argument '{p.name}'", s.span)
    for r in sub.returns:
        variables.setdefault(r.name, UNSET)
    for d in sub.variables:
        variables[d.name] = m.eval(d.default) if d.default is not None else UNSET
    m.enter(sub.initial)


def _x_log(m: _Machine, s: ir.LogStep) -> None:
    m.emit(ev.Log(s.level, m.render(s.message), s.span, m.top.state))
    m.advance()


def _x_meta(m: _Machine, s: ir.MetaStep) -> None:
    value = m.eval(s.value)
    m.meta[s.key] = value
    if s.webhook:
        m.webhook_keys.add(s.key)
    m.emit(ev.SetMeta(s.key, value, s.webhook))
    m.advance()


def _x_goto(m: _Machine, s: ir.GotoStep) -> None:
    """Enter ``s.state``: in a subflow, its own state of that name, else the flow's (a goto of a
    flow-level handler the subflow inherits, checked against the flow's states): the call then
    leaves every subflow it is in, as :func:`voxflow.ir.flowmap.transition_key` names it."""
    top = m.top
    if top.subflow is not None and s.state not in m.states_of(top) and s.state in m.flow.states:
        del m.frames[1:]
    m.enter(s.state)


def _x_retry(m: _Machine, s: ir.RetryStep) -> None:
    stack = m.top.stack
    h = next((c for c in reversed(stack) if c.kind in ("handler", "error", "command")), None)
    if h is None or h.step is None:
        raise _Abort("'retry' outside an outcome handler", s.span)
    target = h.step
    k = _skey(target)
    attempt = m.top.attempts.get(k, 1)
    if not getattr(target, "unlimited", False) and attempt >= getattr(target, "max_attempts", 1):
        while stack and stack[-1] is not h:
            stack.pop()
        stack.pop()
        m.outcome(target, "exhausted")
        return
    m.leave_handler(advance=False)


def _x_continue(m: _Machine, s: ir.ContinueStep) -> None:
    m.leave_handler(advance=True)


def _x_hangup(m: _Machine, s: ir.HangupStep) -> None:
    m.emit(ev.Hangup(s.reason))
    m.end = ("completed", s.reason)
    m.run_hangup_handler()


def _x_return(m: _Machine, s: ir.ReturnStep) -> None:
    values = {name: m.eval(e) for name, e in s.values}
    if len(m.frames) == 1:
        m.emit(ev.Hangup("normal"))
        m.end = ("completed", "return")
        m.run_hangup_handler()
        return
    m.frames.pop()
    call_step: ir.CallStep = m.current_step()
    for ret_name, var in call_step.returns:
        if ret_name in values:
            m.assign(var, values[ret_name])
    m.outcome(call_step, "returned")


DISPATCH.update(
    {
        "answer": _x_answer,
        "say": _x_say,
        "play": _x_play,
        "pause": _x_pause,
        "gather": _x_gather,
        "set": _x_set,
        "if": _x_if,
        "switch": _x_switch,
        "record_start": _x_record_start,
        "record_stop": _x_record_stop,
        "record": _x_record,
        "dial": _x_dial,
        "transfer": _x_transfer,
        "queue": _x_queue,
        "hold": _x_hold,
        "unhold": _x_unhold,
        "send_dtmf": _x_send_dtmf,
        "http": _x_http,
        "agent": _x_agent,
        "call": _x_call,
        "log": _x_log,
        "meta": _x_meta,
        "goto": _x_goto,
        "retry": _x_retry,
        "continue": _x_continue,
        "hangup": _x_hangup,
        "return": _x_return,
    }
)
