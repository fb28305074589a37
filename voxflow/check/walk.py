"""Shared pieces of the rules: the diagnostics bag, the rule context, tree walkers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from voxflow.check.model import INPUT_OPS, TRANSITION_OPS, MFlow, MHandler, MState, MStep, MSubflow
from voxflow.check.types import FunctionType
from voxflow.diagnostics import RULES, Diagnostic, Severity
from voxflow.source import Span

__all__ = [
    "DTMF_KEYS",
    "FAILURE_OUTCOMES",
    "Bag",
    "RuleContext",
    "all_handlers",
    "all_steps",
    "bodies",
    "ends_with_continue",
    "fallback_handlers",
    "handlers_for",
    "inherited",
    "input_terminates",
    "terminates",
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


def all_steps(sub: MSubflow) -> Iterator[MStep]:
    for state in sub.states:
        yield from walk(state.steps)
    for h in all_handlers(sub):
        yield from walk(h.steps)


def inherited(sub: MSubflow, state: MState) -> list[MHandler]:
    """Handlers a state inherits: its own, then its scope chain, then the flow's."""
    out = list(state.handlers)
    scopes = {s.name: s for s in sub.scopes}
    name = state.scope
    seen: set[str] = set()
    while name is not None and name not in seen and name in scopes:
        seen.add(name)
        out.extend(scopes[name].handlers)
        name = scopes[name].parent
    out.extend(sub.handlers)
    return out


def terminates(steps: list[MStep], fallback: dict[str, list[MHandler]] | None = None) -> bool:
    """True when every path through ``steps`` ends in a transition. ``fallback`` holds the
    inherited handlers per outcome (state, scopes, flow) used for outcomes a step leaves open."""
    for step in steps:
        if step.op in TRANSITION_OPS:
            return True
        if step.blocks and step.exhaustive and all(terminates(b, fallback) for b in step.blocks):
            return True
        if step.op in INPUT_OPS and input_terminates(step, fallback or {}):
            return True
    return False


def handlers_for(step: MStep, fallback: dict[str, list[MHandler]]) -> dict[str, list[MHandler]]:
    """The handlers that run for each possible outcome of ``step`` (empty list: unhandled)."""
    own: dict[str, list[MHandler]] = {}
    for h in step.handlers:
        own.setdefault(h.outcome, []).append(h)
    out: dict[str, list[MHandler]] = {}
    for outcome in step.outcomes:
        out[outcome] = own.get(outcome) or own.get("default") or fallback.get(outcome) or []
    for extra in ("exhausted", "error"):
        if extra in own:
            out[extra] = own[extra]
    return out


def input_terminates(step: MStep, fallback: dict[str, list[MHandler]]) -> bool:
    """True when every outcome of an input step is handled and every handler transitions
    somewhere other than back to the step's successor."""
    resolved = handlers_for(step, fallback)
    own = {h.outcome for h in step.handlers}
    if "default" not in own and any(o not in own for o in step.success):
        return False
    if not resolved or any(not hs for hs in resolved.values()):
        return False
    return all(
        terminates(h.steps) and not ends_with_continue(h.steps)
        for hs in resolved.values()
        for h in hs
    )


def fallback_handlers(sub: MSubflow, state: MState) -> dict[str, list[MHandler]]:
    """Inherited handlers of ``state`` grouped by outcome, innermost first."""
    out: dict[str, list[MHandler]] = {}
    for h in inherited(sub, state):
        out.setdefault(h.outcome, []).append(h)
    return out


def ends_with_continue(steps: list[MStep]) -> bool:
    return any(s.op == "continue" for s in walk(steps))
