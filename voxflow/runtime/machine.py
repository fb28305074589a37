"""The interpreter machine behind :func:`voxflow.runtime.step.step` (pure, no I/O).

Holds ``_Machine``, a mutable working copy of one call's state used for the duration of one
``step()`` call. The immutable run-state types live in :mod:`voxflow.runtime.runstate` (re-exported
here) and input matching in :mod:`voxflow.runtime.matching`. Step kinds register in
:data:`DISPATCH` (filled by :mod:`voxflow.runtime.step`).
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from voxflow.errors import FlowRuntimeError
from voxflow.ir import models as ir
from voxflow.runtime import events as ev
from voxflow.runtime import input_steps
from voxflow.runtime.dynamic import resolve_options
from voxflow.runtime.events import UNKNOWN_WHY as UNKNOWN
from voxflow.runtime.expressions import UNSET, EvalContext, evaluate
from voxflow.runtime.input_steps import SPEECH_GUARD_MS as SPEECH_GUARD_MS
from voxflow.runtime.runstate import (
    ERROR_STREAK_LIMIT,
    Cursor,
    Frame,
    RunState,
    StepObserver,
    Wait,
    _Abort,
    _MFrame,
    _rewait,
    _skey,
    effect_key,
)
from voxflow.runtime.runstate import (
    CursorKind as CursorKind,
)
from voxflow.runtime.templating import default_renderer
from voxflow.spec.semantics import SUCCESS
from voxflow.spec.steps import HANGUP_SAFE

__all__ = ["DISPATCH", "SPEECH_GUARD_MS", "Cursor", "Frame", "RunState", "StepObserver", "Wait"]

_TYPEAHEAD_MAX = 32
_HANDLER_KINDS = ("handler", "error", "command")
_ASKS_CALLER = frozenset({"gather", "record", "agent", "dial", "queue"})
"""Ops whose end means the caller was asked or heard (it ends an error streak)."""


class _Machine:
    """Mutable working copy of a RunState for one step() call."""

    def __init__(
        self, flow: ir.Flow, st: RunState, now: float, observer: StepObserver | None = None
    ) -> None:
        self.flow = flow
        self.obs = observer
        self.st = st
        self.now = now
        self.frames = [
            _MFrame(
                f.subflow,
                f.state,
                dict(f.variables),
                list(f.stack),
                dict(f.counts),
                dict(f.attempts),
                f.entry,
            )
            for f in st.frames
        ]
        self.meta = dict(st.metadata)
        self.webhook_keys = set(st.webhook_keys)
        self.wait = st.wait
        self.seq = st.seq
        self.status = st.status
        self.hangup_ran = st.hangup_ran
        self.typeahead = st.typeahead
        self.end = st.end
        self.entries = st.entries
        self.effects = st.effects
        self.error_streak = st.error_streak
        self.out: list[ev.Command] = []
        self.budget = st.max_steps
        self.retrying = False
        self.wait_endpoint = ""

    def freeze(self) -> RunState:
        frames = tuple(
            Frame(
                f.subflow,
                f.state,
                MappingProxyType(f.variables),
                tuple(f.stack),
                MappingProxyType(f.counts),
                MappingProxyType(f.attempts),
                f.entry,
            )
            for f in self.frames
        )
        st = self.st  # built field by field: dataclasses.replace costs more than the step
        meta = st.metadata if self.meta == st.metadata else MappingProxyType(self.meta)
        keys = st.webhook_keys if self.webhook_keys == st.webhook_keys else self.webhook_keys
        return RunState(
            call=st.call,
            frames=frames,
            metadata=meta,
            webhook_keys=frozenset(keys),
            wait=self.wait,
            seq=self.seq,
            status=self.status,
            hangup_ran=self.hangup_ran,
            typeahead=self.typeahead,
            max_steps=st.max_steps,
            speech=st.speech,
            end=self.end,
            entries=self.entries,
            effects=self.effects,
            error_streak=self.error_streak,
        )

    # ------------------------------------------------------------ helpers

    def where(self) -> str:
        """The current state for observers: ``state`` or ``subflow.state``."""
        f = self.top
        return f"{f.subflow}.{f.state}" if f.subflow else f.state

    def cid(self) -> int:
        self.seq += 1
        return self.seq

    def effect(self) -> str:
        """The idempotency key of the next side effect (HTTP step) of this state entry; in the
        ``on hangup`` body ``hangup.<k>``, counted from the body's start (it never takes a key
        of the state's own steps, whether or not they ran on this worker)."""
        self.effects += 1
        if self.status == "hangup_handler":
            return effect_key(self.st.call.id, self.entries, f"hangup.{self.effects}")
        return effect_key(self.st.call.id, self.entries, self.effects)

    @property
    def top(self) -> _MFrame:
        return self.frames[-1]

    def states_of(self, frame: _MFrame) -> dict[str, ir.State]:
        if frame.subflow is None:
            return self.flow.states
        return self.flow.subflows[frame.subflow].states

    def cur_state(self) -> ir.State:
        return self.states_of(self.top)[self.top.state]

    def lookup(self, name: str) -> Any:
        for frame in (self.top, self.frames[0]):
            if name in frame.variables:
                return frame.variables[name]
        if name == "call":
            return self.call_root()
        raise _Abort(f"unknown name '{name}'", None)

    def call_root(self) -> dict[str, Any]:
        c = self.st.call
        return {
            "id": c.id,
            "caller": c.caller,
            "called": c.called,
            "direction": c.direction,
            "metadata": dict(self.meta),
        }

    def eval(self, expr: ir.Expr) -> Any:
        ctx = EvalContext(self.lookup, now=self.now, timezone=self.flow.config.timezone)
        return evaluate(expr, ctx)

    def render(self, tpl: ir.Template) -> str:
        if "{" not in tpl.source:
            return tpl.source
        names: dict[str, Any] = {}
        for frame in (self.frames[0], self.top):
            for k, v in frame.variables.items():
                if v is not UNSET:
                    names[k] = v
        names["call"] = self.call_root()
        return default_renderer.render(tpl.source, names)

    def assign(self, name: str, value: Any) -> None:
        top = self.top
        if (
            top.subflow is not None
            and name not in top.variables
            and name in self.frames[0].variables
        ):
            self.frames[0].variables[name] = value
        else:
            top.variables[name] = value

    def emit(self, cmd: ev.Command) -> None:
        self.out.append(cmd)

    # ------------------------------------------------------------ events

    def handle(self, event: ev.Event) -> None:
        try:
            if isinstance(event, ev.Start):
                if self.status == "new":
                    self.start()
            elif isinstance(event, ev.HangupEvent):
                self.on_hangup(event.cause, event.by)
            elif isinstance(event, ev.Dtmf):
                self.error_streak = 0
                self.on_dtmf(event.digit)
            elif isinstance(event, ev.OpDone):
                self.on_op(event.cid, event.result, None)
            elif isinstance(event, ev.OpFailed):
                self.on_op(event.cid, None, event.error)
            elif isinstance(event, ev.TimerFired):
                self.on_timer(event.cid)
        except _Abort as exc:
            self.fail(exc.message, exc.span)
        self.run()

    def start(self) -> None:
        self.status = "running"
        if self.frames:  # a checkpoint (voxflow.runtime.checkpoint.resume_state): re-enter it
            self.resume()
            return
        self.emit(ev.Notify("call.started", {"flow": self.flow.name}))
        variables: dict[str, Any] = {}
        self.frames = [_MFrame(None, self.flow.initial, variables, [])]
        for decl in self.flow.variables:
            variables[decl.name] = UNSET
        try:
            for decl in self.flow.variables:
                if decl.default is not None:
                    variables[decl.name] = self.eval(decl.default)
        except FlowRuntimeError as exc:
            raise _Abort(str(exc), decl.span) from None
        self.enter(self.flow.initial)

    def resume(self) -> None:
        """Re-enter the innermost frame's state (a subflow's, its callers' stacks kept),
        keeping its variables and retry counters."""
        top = self.top
        counts, attempts = top.counts, top.attempts
        data: dict[str, Any] = {"flow": self.flow.name, "state": top.state}
        if top.subflow:
            data["subflow"] = top.subflow
        self.emit(ev.Notify("call.resumed", data))
        self.enter(top.state)
        top.counts, top.attempts = counts, attempts

    def enter(self, name: str) -> None:
        frame = self.top
        states = self.states_of(frame)
        if name not in states:
            raise _Abort(f"no state '{name}'", None)
        frame.state = name
        frame.counts = {}
        frame.attempts = {}
        frame.stack = [Cursor(states[name].steps)]
        self.entries += 1
        self.effects = 0
        frame.entry = self.entries
        data: dict[str, Any] = {"state": name}
        if frame.subflow:
            data["subflow"] = frame.subflow
        key = effect_key(self.st.call.id, self.entries, "state.entered")
        self.emit(ev.Notify("state.entered", data, key))
        if self.obs is not None:
            self.obs.entered(self.where())

    def on_hangup(self, cause: str, by: str = "caller") -> None:
        if self.status in ("ended", "hangup_handler"):
            return
        self.emit(ev.StopAll())
        self.wait = None
        if by == "app":
            self.emit(ev.Notify("hangup", {"reason": cause, "by": "app"}))
            outcome = "error"
        else:
            self.emit(ev.Notify("caller.hangup", {"cause": cause}))
            outcome = "caller_hangup"
        if self.end is None:  # else the end a dead worker decided (checkpoint.ended_state)
            self.end = (outcome, cause)
        if self.status == "new" or not self.frames:
            self.finish(*self.end)
            return
        self.run_hangup_handler()

    def run_hangup_handler(self) -> None:
        self.status = "hangup_handler"
        self.effects = 0
        if self.hangup_ran:
            self.finish(*(self.end or ("completed", "")))
            return
        self.hangup_ran = True
        handlers = self.cur_state().on_hangup
        if not handlers:
            self.finish(*(self.end or ("completed", "")))
            return
        if self.obs is not None:
            self.obs.hangup_handler(self.where())
        self.top.stack = [Cursor(handlers[0].steps, 0, "hangup")]

    def finish(self, outcome: str, reason: str = "") -> None:
        if self.status == "ended":
            return
        self.status = "ended"
        self.wait = None
        self.emit(ev.End(outcome, reason))

    def on_dtmf(self, digit: str) -> None:
        if self.status != "running":
            return
        w = self.wait
        if w is not None and w.kind == "gather":
            input_steps.gather_digit(self, w, digit)
            return
        if w is not None and w.kind == "record":
            if digit == w.step.terminator and w.phase == "recording":
                self.emit(ev.Notify("input", {"kind": "dtmf", "digit": digit}))
                input_steps.record_stop(self, w, by_key=True)
                return
            if not self.waiting_command(w, digit):
                why = "not the terminator" if w.phase == "recording" else "before the recording"
                self.emit(ev.Notify("input.ignored", {"digits": digit, "why": why}))
            return
        if w is not None and w.kind == "op" and getattr(w.step, "op", None) == "queue":
            # the caller is in the dialplan's Queue(), which reads the keys itself: they are
            # not type-ahead for the menu after the queue, minutes later (an exit key comes
            # back as the queue's own result)
            if w.step.choices:  # traced for replay: it may be the key that left the queue
                self.emit(ev.Notify("input", {"kind": "dtmf", "digit": digit}))
            else:
                why = "pressed in the queue"
                self.emit(ev.Notify("input.ignored", {"digits": digit, "why": why}))
            return
        if len(self.typeahead) < _TYPEAHEAD_MAX:
            self.typeahead += digit
        if w is not None and w.kind == "op" and getattr(w.step, "op", None) == "agent":
            self.waiting_command(w, digit)
            return
        if w is not None and w.kind == "op" and w.main_cid is not None:
            bargein: ir.BargeIn | None = getattr(w.step, "bargein", None)
            if bargein is not None and bargein.mode in ("dtmf", "any"):
                # a stopped op never answers: the prompt counts as played, the flow moves on
                # (the digit stays in type-ahead for the next gather)
                self.emit(ev.StopOp(w.main_cid))
                for other in w.cids - {w.main_cid}:
                    self.emit(ev.StopOp(other))
                self.wait = None
                self.advance()

    def waiting_command(self, w: Wait, digit: str) -> bool:
        """Anytime commands also listen while an agent or record step waits: when the keys
        pressed during the step end with a command's key, the step is stopped (a recording in
        progress is stopped and kept) and the command's handler runs. True when one did."""
        commands = self.cur_state().commands
        if w.kind == "record":
            self.typeahead = (self.typeahead + digit)[-_TYPEAHEAD_MAX:]
        keys = self.typeahead
        cmd = next((c for c in commands if any(k and keys.endswith(k) for k in c.keys)), None)
        if cmd is None:
            return False
        self.typeahead = ""
        for c in w.cids:
            self.emit(ev.StopOp(c))
        if w.kind == "record" and w.phase == "recording":
            self.emit(ev.RecordStop(self.cid(), w.digits))  # kept; its answer is not awaited
        self.wait = None
        self.emit(ev.Notify("input", {"kind": "dtmf", "digit": digit}))
        self.emit(ev.Notify("command", {"name": cmd.name}))
        if self.obs is not None:
            self.obs.command(self.where(), cmd)
        self.top.stack.append(Cursor(cmd.handler.steps, 0, "command", w.step))
        return True

    def on_timer(self, cid: int) -> None:
        w = self.wait
        if w is None or cid not in w.cids:
            return
        if w.kind == "op":
            self.wait = None
            self.advance()
        elif w.kind == "gather":
            self.wait = _rewait(w, cids=w.cids - {cid}, timer_cid=None)
            input_steps.gather_finish(self, self.wait)
        elif w.kind == "record":
            self.wait = _rewait(w, cids=w.cids - {cid}, timer_cid=None)
            input_steps.record_stop(self, self.wait)

    def on_op(self, cid: int, result: Any, error: str | None) -> None:
        w = self.wait
        if w is None or cid not in w.cids:
            return
        if error is None and w.step is not None and w.step.op in _ASKS_CALLER:
            self.error_streak = 0
        if error is not None:
            for other in w.cids - {cid}:
                self.emit(ev.StopOp(other))
            self.wait = None
            span = w.step.span if w.step is not None else None
            if self.step_error(w.step, error, span):
                return
            raise _Abort(error, span)
        if w.kind == "gather":
            input_steps.gather_op(self, w, cid, result)
        elif w.kind == "record":
            input_steps.record_op(self, w, cid, result)
        else:
            self.wait = None
            self.wait_endpoint = w.digits
            self.op_result(w.step, result)

    # ------------------------------------------------------------ errors

    def step_error(self, s: Any, message: str, span: ir.Span | None) -> bool:
        """A failing input step with its own ``on error`` (written on the step or an enclosing
        scope, not the state's ``on error`` it falls back to, nor the implied hang-up) ends with
        outcome ``error``; the failure is still logged. True when it did."""
        if s is None or s.op not in ir.INPUT_OPS or self.status != "running":
            return False
        handlers = s.on.get("error", ())
        if not handlers or all(h.origin == "default" for h in handlers):
            return False
        if tuple(handlers) == tuple(self.cur_state().on_error):
            return False
        top = self.top.stack[-1] if self.top.stack else None
        if top is None or top.index >= len(top.block) or top.block[top.index] is not s:
            return False
        self.emit(ev.Log("error", message, span, self.top.state))
        if self.wait is not None:
            for c in self.wait.cids:
                self.emit(ev.StopOp(c))
            self.wait = None
        if s.op == "http":  # as a request that got no response: 'into' and 'status' null
            for var in (s.result_var, s.status_var):
                if var:
                    self.assign(var, None)
        self.outcome(s, "error")
        return True

    def fail(self, message: str, span: ir.Span | None) -> None:
        state = self.top.state if self.frames else None
        self.emit(ev.Log("error", message, span, state))
        if self.wait is not None:
            for c in self.wait.cids:
                self.emit(ev.StopOp(c))
            self.wait = None
        if self.status == "hangup_handler":
            self.finish(*(self.end or ("error", message)))
            return
        if self.status != "running" or not self.frames:
            self.finish("error", message)
            return
        self.error_streak += 1
        if self.error_streak > ERROR_STREAK_LIMIT:
            self._error_loop(message, span)
            return
        in_error = any(c.kind == "error" for c in self.top.stack)
        handlers = () if in_error else self.cur_state().on_error
        if handlers:
            frame = self.top
            key = ("", "__error__")
            n = frame.counts.get(key, 0) + 1
            frame.counts[key] = n
            chosen = next((h for h in handlers if h.count <= n), None)
            if chosen is not None:
                top = frame.stack[-1] if frame.stack else None
                failed = top.block[top.index] if top and top.index < len(top.block) else None
                owner = failed if failed is not None and failed.op in ir.INPUT_OPS else None
                frame.stack.append(Cursor(chosen.steps, 0, "error", owner))
                if self.obs is not None:
                    self.obs.error(self.where(), chosen)
                return
        if len(self.frames) > 1:
            self.frames.pop()
            call_step = self.current_step()
            self.outcome(call_step, "error")
            return
        self.emit(ev.Hangup("error"))
        self.end = ("error", message)
        self.run_hangup_handler()

    def _error_loop(self, message: str, span: ir.Span | None) -> None:
        """Too many errors in a row with the caller neither asked nor heard: end in ``error``
        (the flow's ``on error`` leads back to a failing step)."""
        loop = (
            f"{ERROR_STREAK_LIMIT} runtime errors in a row with nothing asked of the caller"
            f" between them: the flow's error handling loops (last: {message})"
        )
        self.emit(ev.Log("error", loop, span, self.top.state))
        self.emit(ev.Hangup("error"))
        self.end = ("error", loop)
        self.run_hangup_handler()

    def current_step(self) -> Any:
        cur = self.top.stack[-1]
        return cur.block[cur.index]

    # ------------------------------------------------------------ the run loop

    def run(self) -> None:
        while self.wait is None and self.status in ("running", "hangup_handler"):
            try:
                self.run_one()
            except _Abort as exc:
                self.fail(exc.message, exc.span)
            except FlowRuntimeError as exc:
                self.fail(str(exc), None)

    def run_one(self) -> None:
        """Run the step at the top of the stack (or close the block or frame that ended)."""
        frame = self.top
        if not frame.stack:
            self._frame_ended(frame)
            return
        cur = frame.stack[-1]
        if cur.index >= len(cur.block):
            frame.stack.pop()
            self._block_ended(cur)
            return
        self.budget -= 1
        if self.budget < 0:
            self._budget_exceeded(frame)
            return
        s = cur.block[cur.index]
        if self.status == "hangup_handler" and self._leaves_hangup_handler(s, cur):
            return
        if self.obs is not None and s.op in ir.TRANSITION_OPS and not self.retry_exhausts(s):
            self._observe_transition(frame, s)
        try:
            fields = s.__dict__  # a pydantic model's values: a missing one costs no exception
            if fields.get("dynamic") or fields.get("choices_from") is not None:
                s = resolve_options(s, self.eval)
            DISPATCH[s.op](self, s)
        except FlowRuntimeError as exc:
            if not self.step_error(s, str(exc), s.span):
                raise _Abort(str(exc), s.span) from None
        except _Abort as exc:
            if exc.span is None:
                exc.span = s.span
            if not self.step_error(s, exc.message, exc.span):
                raise
        finally:
            if s.op != "retry":
                self.retrying = False

    def _frame_ended(self, frame: _MFrame) -> None:
        """A frame's steps ran out: the hang-up handler finishes; a state may not just end."""
        if self.status == "hangup_handler":
            self.finish(*(self.end or ("completed", "")))
            return
        raise _Abort(f"state '{frame.state}' ended without a transition", None)

    def _block_ended(self, cur: Cursor) -> None:
        """A block (just popped) ran to its end: leave its handler, or finish the hang-up body."""
        if cur.kind in ("handler", "error", "command") and cur.step is not None:
            self.leave_handler(advance=True)
        elif cur.kind == "hangup":
            self.finish(*(self.end or ("completed", "")))

    def _budget_exceeded(self, frame: _MFrame) -> None:
        """Too many steps without a wait: log it and end the call in ``error``."""
        self.budget = self.st.max_steps
        self.emit(ev.Log("error", "step budget exceeded: a loop never waits", None, frame.state))
        self.emit(ev.Hangup("error"))
        self.end = ("error", "step budget exceeded")
        if self.status == "hangup_handler":
            self.finish(*self.end)
        else:
            self.run_hangup_handler()

    def _leaves_hangup_handler(self, s: ir.Step, cur: Cursor) -> bool:
        """In the hang-up handler, a step it may not run: a transition finishes the call, any
        other is skipped. True when ``s`` was handled so."""
        in_outcome = s.op == "continue" and cur.kind in _HANDLER_KINDS
        if s.op in HANGUP_SAFE or in_outcome:
            # a ``continue`` ending an outcome handler inside it (an http step's implied
            # ``on ok``) goes on with the hang-up handler's next step
            return False
        if s.op in ir.TRANSITION_OPS:
            self.finish(*(self.end or ("completed", "")))
        else:
            self.advance()
        return True

    def _observe_transition(self, frame: _MFrame, s: ir.Step) -> None:
        """Tell the observer about transition ``s`` and the handler block it is within."""
        assert self.obs is not None
        within = next(
            (c.block for c in reversed(frame.stack) if c.kind in ("handler", "error", "command")),
            None,
        )
        self.obs.transition(self.where(), s, within)

    def retry_exhausts(self, s: ir.Step) -> bool:
        """``s`` is a ``retry`` that ends its input step ``exhausted`` instead of re-running it
        (coverage then counts the ``exhausted`` branch, not the retry edge)."""
        if s.op != "retry":
            return False
        h = next((c for c in reversed(self.top.stack) if c.kind in _HANDLER_KINDS), None)
        if h is None or h.step is None:
            return False
        if getattr(h.step, "unlimited", False):
            return False
        attempt = self.top.attempts.get(_skey(h.step), 1)
        return attempt >= int(getattr(h.step, "max_attempts", 1))

    def advance(self) -> None:
        stack = self.top.stack
        cur = stack[-1]
        stack[-1] = Cursor(cur.block, cur.index + 1, cur.kind, cur.step)

    def push(self, block: tuple[ir.Step, ...]) -> None:
        self.advance()
        if block:
            self.top.stack.append(Cursor(block))

    def leave_handler(self, *, advance: bool) -> None:
        """Pop to the nearest handler cursor; then continue after (or re-run) its input step."""
        stack = self.top.stack
        while stack and stack[-1].kind not in ("handler", "error", "command"):
            stack.pop()
        if not stack:
            raise _Abort("'continue' or 'retry' outside an outcome handler", None)
        h = stack.pop()
        if h.step is None:
            raise _Abort("'continue' or 'retry' outside an outcome handler", None)
        if advance:
            self.advance()
        else:
            self.retrying = True

    # ------------------------------------------------------------ outcomes

    def outcome(self, s: Any, name: str) -> None:
        frame = self.top
        handlers = s.on.get(name, ())
        if not handlers and name.startswith("choice:"):
            handlers = s.on.get("match", ())
        key = (_skey(s), name)
        n = frame.counts.get(key, 0) + 1
        frame.counts[key] = n
        self.emit(ev.Notify("outcome", {"step": s.op, "outcome": name, "count": n}))
        chosen = next((h for h in handlers if h.count <= n), None)
        if self.obs is not None:
            self.obs.outcome(self.where(), s, name, chosen)
        if chosen is None:
            if name in SUCCESS and (name != "match" or not handlers):
                self.advance()
                return
            raise _Abort(f"no handler for outcome '{name}' of {s.op} (occurrence {n})", s.span)
        frame.stack.append(Cursor(chosen.steps, 0, "handler", s))

    def op_result(self, s: Any, result: Any) -> None:
        op = s.op
        if op == "http":
            res = result if isinstance(result, dict) else {}
            name = str(res.get("outcome", "error"))
            if s.result_var:
                self.assign(s.result_var, res.get("data"))
            if s.status_var:
                self.assign(s.status_var, res.get("status"))
            self.emit(ev.Notify("http", {"outcome": name, "status": res.get("status")}))
            self.outcome(s, name)
        elif op == "queue":
            res = result if isinstance(result, dict) else {"outcome": str(result)}
            name = str(res.get("outcome", "failed"))
            if name in ("transferred", "unknown"):
                # the call left for the dialplan's Queue() and did not come back: the flow ends;
                # per-call websockets tell nothing more (an agent, or the caller hung up: unknown)
                why = f"queue {self.render(s.name)}"
                self.end = (name, why if name == "transferred" else f"{why}: {UNKNOWN}")
                self.run_hangup_handler()
                return
            if s.var:
                self.assign(s.var, {k: res.get(k) for k in ("status", "position", "wait", "key")})
            self.outcome(s, name)
        elif op == "dial":
            self.outcome(s, str(result))
        elif op == "agent":
            res = result if isinstance(result, dict) else {}
            name = str(res.get("outcome", "error"))
            if name.startswith("tool:"):
                tool = next((t for t in s.tools if "tool:" + t.name == name), None)
                args = res.get("args") or {}
                for a in tool.args if tool else ():
                    if a.name in args:
                        self.assign(a.var, args[a.name])
            if s.transcript_var:
                self.assign(s.transcript_var, res.get("transcript"))
            self.outcome(s, name)
        elif op == "transfer":
            if result == "unknown":  # per-call websockets: nothing said what became of it
                self.end = ("unknown", f"{self.wait_endpoint}: {UNKNOWN}")
            else:
                self.end = ("transferred", self.wait_endpoint)
            self.run_hangup_handler()
        else:
            self.advance()

    # ------------------------------------------------------------ input

    def count_attempt(self, s: Any) -> int:
        """The input step ``s`` starts: attempt 1, or one more when a ``retry`` re-runs it
        (``retry`` compares this count with ``max_attempts`` to end the step ``exhausted``)."""
        frame = self.top
        k = _skey(s)
        attempt = frame.attempts.get(k, 0) + 1 if self.retrying else 1
        self.retrying = False
        frame.attempts[k] = attempt
        return attempt


DISPATCH: dict[str, Callable[[_Machine, Any], None]] = {}
"""op name -> executor; filled by voxflow.runtime.step."""
