"""Shared pieces of the rules: the diagnostics bag, the rule context, tree walkers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from voxflow.check.model import INPUT_OPS, TRANSITION_OPS, MFlow, MHandler, MState, MStep, MSubflow
from voxflow.check.types import FunctionType
from voxflow.diagnostics import RULES, Diagnostic, Severity
from voxflow.source import Span
from voxflow.spec.semantics import (
    COMMAND_EVENT,
    WAITING_OPS,
    How,
    implied_transition,
    resolve_outcome,
    select_handlers,
)

__all__ = [
    "DTMF_KEYS",
    "EMPTY_CTX",
    "FAILURE_OUTCOMES",
    "Bag",
    "Resolved",
    "RuleContext",
    "StateCtx",
    "all_handlers",
    "all_steps",
    "block_flow",
    "bodies",
    "clear_memos",
    "handler_continues",
    "handler_retries",
    "input_completes",
    "reached_steps",
    "resolve_step",
    "state_context",
    "walk",
]

DTMF_KEYS = frozenset("0123456789*#ABCDabcd")
FAILURE_OUTCOMES = frozenset(
    {"noinput", "nomatch", "exhausted", "timeout", "busy", "noanswer", "failed", "error"}
)


@dataclass
class RuleContext:
    """What the rules need besides the flow: known names and function signatures."""

    functions: dict[str, FunctionType] = field(default_factory=dict)
    config_keys: frozenset[str] = frozenset()
    voice_keys: frozenset[str] = frozenset()


@dataclass
class Bag:
    """Collects diagnostics; ``add`` takes the severity from the rule catalogue."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, code: str, span: Span, file: str, message: str, hint: str | None = None) -> None:
        rule = RULES.get(code)
        sev = rule.severity if rule else Severity.ERROR
        self.items.append(Diagnostic(sev, code, span, message, hint, file))


# ---------------------------------------------------------------- walking helpers


def walk(steps: list[MStep]) -> Iterator[MStep]:
    for step in steps:
        yield step
        for block in step.blocks:
            yield from walk(block)
        for h in step.handlers:
            yield from walk(h.steps)


def bodies(flow: MFlow) -> list[MSubflow]:
    return [flow.body, *flow.subflows]


def all_handlers(sub: MSubflow) -> Iterator[MHandler]:
    yield from sub.handlers
    for scope in sub.scopes:
        yield from scope.handlers
    for state in sub.states:
        yield from state.handlers


def clear_memos(flow: MFlow) -> None:
    """Forget the per-run caches (a model may be changed and checked again)."""
    for sub in bodies(flow):
        sub.memo.clear()
        for state in sub.states:
            state.memo.clear()
        for step in all_steps(sub):
            step.memo.clear()
            step.read_cache = None
        sub.memo.clear()


def all_steps(sub: MSubflow) -> list[MStep]:
    """Every step written in ``sub`` (states and handler bodies, nested), computed once."""
    cached = sub.memo.get("steps")
    if cached is not None:
        return cached  # type: ignore[no-any-return]  # memo: what this function stored
    out: list[MStep] = []
    for state in sub.states:
        out.extend(walk(state.steps))
    for h in all_handlers(sub):
        out.extend(walk(h.steps))
    sub.memo["steps"] = out
    return out


@dataclass
class StateCtx:
    """What the steps of one state resolve against: the handler levels innermost first
    (state, scopes, subflow, flow), the ``on error`` handlers and the anytime commands."""

    levels: list[list[MHandler]] = field(default_factory=list)
    errors: list[MHandler] = field(default_factory=list)
    commands: list[MHandler] = field(default_factory=list)


@dataclass
class Resolved:
    """The handlers that run for one outcome, and how they were found
    (:data:`voxflow.spec.semantics.How`); ``implied`` has no handlers."""

    handlers: list[MHandler]
    how: How


EMPTY_CTX = StateCtx()


def _keyed(handlers: list[MHandler]) -> list[tuple[tuple[str], int, MHandler]]:
    return [((h.outcome,), h.count, h) for h in handlers]


def state_context(flow: MFlow, sub: MSubflow, state: MState) -> StateCtx:
    """The handler chain of ``state``, exactly as lowering builds it (computed once)."""
    cached = state.memo.get("ctx")
    if isinstance(cached, StateCtx):
        return cached
    levels = [state.handlers]
    scopes = {s.name: s for s in sub.scopes}
    name = state.scope
    seen: set[str] = set()
    while name is not None and name not in seen and name in scopes:
        seen.add(name)
        levels.append(scopes[name].handlers)
        name = scopes[name].parent
    levels.append(sub.handlers)
    if sub is not flow.body:
        levels.append(flow.body.handlers)
    keyed = [_keyed(lv) for lv in levels]
    errors = select_handlers(keyed, "error")
    commands = [h for lv in levels for h in lv if h.outcome == COMMAND_EVENT]
    ctx = state.memo["ctx"] = StateCtx(levels, errors, commands)
    return ctx


def resolve_step(step: MStep, ctx: StateCtx) -> dict[str, Resolved]:
    """Every outcome of input ``step`` -> what runs (see
    :func:`voxflow.spec.semantics.resolve_outcome`), plus ``command:<n>`` for anytime commands
    while the step waits for the caller. Cached per step for the last context asked about."""
    cached = step.memo.get("resolved")
    if cached is not None and cached[0] is ctx:
        return cached[1]  # type: ignore[no-any-return]  # memo: what this function stored
    keyed = [_keyed(step.handlers), *(_keyed(lv) for lv in ctx.levels)]
    out: dict[str, Resolved] = {}
    for outcome in step.outcomes:
        picked, how = resolve_outcome(keyed, outcome, ctx.errors)
        out[outcome] = Resolved(picked, how)
    if step.op in WAITING_OPS:
        for i, h in enumerate(ctx.commands, start=1):
            out[f"{COMMAND_EVENT}:{i}"] = Resolved([h], "handler")
    step.memo["resolved"] = (ctx, out)
    return out


def block_flow(
    steps: list[MStep], ctx: StateCtx, active: frozenset[int] = frozenset()
) -> tuple[bool, bool]:
    """``(falls, continues)``: whether ``steps`` can run off their end, and whether they can
    reach a ``continue`` (leaving the handler they are in)."""
    cont = False
    for step in steps:
        if step.op == "continue":
            return False, True
        if step.op in TRANSITION_OPS:
            return False, cont
        if step.blocks:
            falls = not step.exhaustive
            for block in step.blocks:
                f, c = block_flow(block, ctx, active)
                falls, cont = falls or f, cont or c
            if not falls:
                return False, cont
        elif step.op in INPUT_OPS and not input_completes(step, ctx, active):
            return False, cont
    return True, cont


def handler_continues(h: MHandler, ctx: StateCtx, active: frozenset[int] = frozenset()) -> bool:
    """True when the handler body can end in ``continue`` (written or implied)."""
    if id(h) in active:
        return False  # a handler re-entered from its own body: that path loops
    falls, cont = block_flow(h.steps, ctx, active | {id(h)})
    return cont or (falls and implied_transition(h.outcome) == "continue")


def input_completes(step: MStep, ctx: StateCtx, active: frozenset[int] = frozenset()) -> bool:
    """True when some outcome of ``step`` goes on with the step after it."""
    for outcome, r in resolve_step(step, ctx).items():
        if r.how == "implied":
            if implied_transition(outcome) == "continue":
                return True
        elif any(handler_continues(h, ctx, active) for h in r.handlers):
            return True
    return False


def handler_retries(h: MHandler) -> bool:
    """True when the body retries (a ``retry`` step, or falling off an implied ``retry``)."""
    if any(s.op == "retry" for s in walk(h.steps)):
        return True
    return block_flow(h.steps, EMPTY_CTX)[0] and implied_transition(h.outcome) == "retry"


def reached_steps(state: MState, ctx: StateCtx) -> list[tuple[MStep, MHandler | None]]:
    """Every step that can run in ``state`` (its own, the bodies of the handlers and commands
    its input steps resolve to, its error handlers), each with the handler it runs in."""
    cached = state.memo.get("reached")
    if cached is not None and cached[0] is ctx:
        return cached[1]  # type: ignore[no-any-return]  # memo: what this function stored
    out = list(_reached(state, ctx))
    state.memo["reached"] = (ctx, out)
    return out


def _reached(state: MState, ctx: StateCtx) -> Iterator[tuple[MStep, MHandler | None]]:
    seen: set[int] = set()
    todo: list[tuple[list[MStep], MHandler | None]] = [(state.steps, None)]
    todo.extend((h.steps, h) for h in ctx.errors)
    while todo:
        steps, owner = todo.pop()
        for step in steps:
            yield step, owner
            todo.extend((b, owner) for b in step.blocks)
            if step.op not in INPUT_OPS:
                continue
            for r in resolve_step(step, ctx).values():
                for h in r.handlers:
                    if id(h) not in seen:
                        seen.add(id(h))
                        todo.append((h.steps, h))
