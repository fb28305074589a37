"""Tiny IR builders and a step() harness for the runtime unit tests (pure, no sockets)."""

from __future__ import annotations

import itertools
from typing import Any

from voxflow.ir import models as ir
from voxflow.runtime import events as ev
from voxflow.runtime.step import RunState, initial_state, step

_lines = itertools.count(1)


def sp() -> ir.Span:
    n = next(_lines)
    return ir.Span(file="t.flow", line=n, col=1, end_line=n, end_col=2)


def T(source: str) -> ir.Template:
    return ir.Template(source=source)


def lit(value: Any) -> ir.LiteralExpr:
    kind = (
        "bool"
        if isinstance(value, bool)
        else "number"
        if isinstance(value, int | float)
        else "string"
        if isinstance(value, str)
        else "null"
    )
    return ir.LiteralExpr(type=kind, value=value)  # type: ignore[arg-type]


def var(name: str) -> ir.VarExpr:
    return ir.VarExpr(name=name)


def binop(op: str, a: Any, b: Any) -> ir.BinaryExpr:
    return ir.BinaryExpr(op=op, left=a, right=b)  # type: ignore[arg-type]


def fn(name: str, *args: Any) -> ir.CallExpr:
    return ir.CallExpr(func=name, args=tuple(args))


BI = ir.BargeIn()


def answer() -> ir.AnswerStep:
    return ir.AnswerStep(span=sp())


def say(text: str, mode: str = "any") -> ir.SayStep:
    return ir.SayStep(text=T(text), bargein=ir.BargeIn(mode=mode), span=sp())  # type: ignore[arg-type]


def setv(name: str, value: Any) -> ir.SetStep:
    return ir.SetStep(var=name, value=value, span=sp())


def goto(state: str) -> ir.GotoStep:
    return ir.GotoStep(state=state, span=sp())


def hangup(reason: str = "normal") -> ir.HangupStep:
    return ir.HangupStep(reason=reason, span=sp())


def retry() -> ir.RetryStep:
    return ir.RetryStep(span=sp())


def cont() -> ir.ContinueStep:
    return ir.ContinueStep(span=sp())


def log(msg: str) -> ir.LogStep:
    return ir.LogStep(message=T(msg), span=sp())


def handler(*steps: Any, count: int = 1) -> ir.Handler:
    return ir.Handler(count=count, steps=tuple(steps), span=sp())


def choice(value: str, keys: tuple[str, ...] = (), phrases: tuple[str, ...] = ()) -> ir.Choice:
    return ir.Choice(value=value, keys=keys, phrases=phrases, span=sp())


def gather(
    *,
    var: str | None = None,
    prompt: str | None = "Press 1 for sales or 2 for support.",
    reprompts: tuple[str, ...] = (),
    choices: tuple[ir.Choice, ...] = (),
    on: dict[str, tuple[ir.Handler, ...]] | None = None,
    input: str = "dtmf",
    capture: ir.Capture | None = None,
    max_digits: int | None = None,
    terminator: str | None = None,
    max_attempts: int = 3,
    mode: str = "any",
) -> ir.GatherStep:
    return ir.GatherStep(
        var=var,
        input=input,  # type: ignore[arg-type]
        prompt=T(prompt) if prompt is not None else None,
        reprompts=tuple(T(r) for r in reprompts),
        capture=capture,
        choices=choices,
        max_digits=max_digits,
        terminator=terminator,
        interdigit_ms=2000,
        timeout_ms=5000,
        bargein=ir.BargeIn(mode=mode),  # type: ignore[arg-type]
        max_attempts=max_attempts,
        on=on or {},
        span=sp(),
    )


def state(name: str, *steps: Any, **kw: Any) -> ir.State:
    return ir.State(name=name, steps=tuple(steps), span=sp(), **kw)


def flow(*states: ir.State, **kw: Any) -> ir.Flow:
    return ir.Flow(
        name=kw.pop("name", "t"),
        file="t.flow",
        initial=states[0].name,
        states={s.name: s for s in states},
        span=sp(),
        **kw,
    )


class Run:
    """Drives step(): records every command; helpers answer the pending op."""

    def __init__(self, f: ir.Flow, *, speech: bool = False, max_steps: int = 1000) -> None:
        self.flow = f
        self.state: RunState = initial_state(
            f, ev.CallInfo("c1", "+15550001", "100"), speech=speech, max_steps=max_steps
        )
        self.log: list[ev.Command] = []
        self.last: list[ev.Command] = []
        self.now = 1_700_000_000.0

    def send(self, event: ev.Event) -> list[ev.Command]:
        self.state, self.last = step(self.flow, self.state, event)
        self.log.extend(self.last)
        return self.last

    def start(self) -> list[ev.Command]:
        return self.send(ev.Start(now=self.now))

    def pending(self, kind: type) -> Any:
        for c in reversed(self.log):
            if isinstance(c, kind):
                return c
        raise AssertionError(f"no {kind.__name__} command in {self.log}")

    def done(self, kind: type, result: Any = None) -> list[ev.Command]:
        return self.send(ev.OpDone(self.pending(kind).cid, result, now=self.now))

    def fire(self) -> list[ev.Command]:
        return self.send(ev.TimerFired(self.pending(ev.StartTimer).cid, now=self.now))

    def press(self, digits: str) -> list[ev.Command]:
        out: list[ev.Command] = []
        for d in digits:
            out += self.send(ev.Dtmf(d, now=self.now))
        return out

    def said(self) -> list[str]:
        return [c.text for c in self.log if isinstance(c, ev.Say)]

    def states(self) -> list[str]:
        return [
            c.data["state"]
            for c in self.log
            if isinstance(c, ev.Notify) and c.kind == "state.entered"
        ]

    def ended(self) -> ev.End | None:
        ends = [c for c in self.log if isinstance(c, ev.End)]
        assert len(ends) <= 1, ends
        return ends[0] if ends else None

    def errors(self) -> list[ev.Log]:
        return [c for c in self.log if isinstance(c, ev.Log) and c.level == "error"]
