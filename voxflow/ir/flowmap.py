"""A static map of a compiled flow: what can happen, for coverage and drawings.

* **states**: every state; subflow states are named ``subflow.state``.
* **transitions** (:class:`Edge`): every transition step written in the flow (``goto``,
  ``retry``, ``continue``, ``hangup``, ``transfer``, ``return``), labelled with the outcome whose
  handler holds it (``""`` for a state's own steps, ``noinput``, ``nomatch x3`` for a counted
  handler, ``choice:sales``, ``tool:book``, ``error``, ``cmd:operator`` for an anytime command).
  A transition written in an inherited handler (flow, scope or subflow level) is one transition
  whose source is that origin (``flow``, ``scope:menus``), not one per state that inherits it.
* **branches** (:class:`Branch`): each outcome of each input step that the flow handles
  explicitly or that succeeds (match, ok, answered, done, returned, each choice and agent tool),
  plus each state's explicit error handler and each anytime command.

Keys match what :mod:`voxflow.testing.sim` records while a scenario runs.
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxflow.ir import models as ir
from voxflow.spec.semantics import SUCCESS

__all__ = [
    "Branch",
    "Edge",
    "FlowMap",
    "build_flowmap",
    "edge_source",
    "outcome_label",
    "step_key",
    "transition_key",
]

_LOCAL = frozenset({"step", "state"})
_OWN_STEP = frozenset({"hangup", "transfer", "return"})
"""Transition ops whose step says something of its own (a reason, a target, values): each one
written is a transition of its own. Gotos to one state, retries and continues from one place
are one transition."""


def outcome_label(outcome: str, count: int) -> str:
    """``noinput`` for the first handler, ``noinput x3`` for a handler counted from 3."""
    return outcome if count <= 1 else f"{outcome} x{count}"


def step_key(step: Any) -> str:
    """A stable name for a step: ``gather@main_ivr.flow:30:9``."""
    sp: ir.Span = step.span
    return f"{step.op}@{_file_name(sp.file)}:{sp.line}:{sp.col}"


@functools.lru_cache(maxsize=256)
def _file_name(path: str) -> str:
    return Path(path).name


def edge_source(state: str, origin: str) -> str:
    """The source of a transition: the state, or the origin of an inherited handler."""
    return state if origin in _LOCAL else origin


def _goto_target(flow: ir.Flow | None, state: str, name: str) -> str:
    """The state key a goto to ``name`` run in ``state`` goes to: the subflow's own state of
    that name, else the main flow's (a flow-level handler inherited into a subflow)."""
    sub, dot, _ = state.rpartition(".")
    if not dot:
        return name
    subflow = flow.subflows.get(sub) if flow is not None else None
    if subflow is None or name in subflow.states:
        return f"{sub}.{name}"
    return name


def transition_key(
    flow: ir.Flow | None, state: str, label: str, step: Any, origin: str
) -> tuple[str, ...]:
    """The key of the transition ``step`` makes from ``state`` (``subflow.state`` in a
    subflow), inside a handler labelled ``label`` written at ``origin``: (source, label,
    target), plus the step's place for a written hangup, transfer or return."""
    target = _goto_target(flow, state, step.state) if step.op == "goto" else step.op
    key: tuple[str, ...] = (edge_source(state, origin), label, target)
    if step.op in _OWN_STEP and origin != "default":
        key += (f"{step.span.line}:{step.span.col}",)
    return key


@dataclass(frozen=True)
class Edge:
    """One written transition. ``target`` is a state key or the op (hangup, retry, ...)."""

    src: str
    label: str
    target: str
    op: str
    origin: str
    file: str
    line: int
    states: frozenset[str] = frozenset()
    possible: bool = True
    """False when only an outcome that cannot happen leads here (``exhausted`` of a step that
    nothing retries)."""

    at: str = ""
    """``line:col`` of a written hangup, transfer or return (each is a transition of its own)."""

    @property
    def key(self) -> tuple[str, ...]:
        return (self.src, self.label, self.target, self.at) if self.at else self.key3

    @property
    def key3(self) -> tuple[str, str, str]:
        return (self.src, self.label, self.target)

    @property
    def required(self) -> bool:
        """Written in the flow (compiler-made default handlers are not)."""
        return self.origin != "default"


@dataclass(frozen=True)
class Branch:
    """One outcome of one input step in one state (``step`` is ``""`` for error handlers and
    anytime commands). ``handled`` is False when only a compiler default (or nothing) handles it."""

    state: str
    step: str
    outcome: str
    line: int
    handled: bool = True

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.state, self.step, self.outcome)


@dataclass
class FlowMap:
    """Everything :func:`build_flowmap` found in one flow."""

    flow: ir.Flow
    states: dict[str, ir.State] = field(default_factory=dict)
    edges: dict[tuple[str, ...], Edge] = field(default_factory=dict)
    branches: dict[tuple[str, str, str], Branch] = field(default_factory=dict)
    unhandled: list[Branch] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    reachable: set[str] = field(default_factory=set)

    @property
    def unreachable(self) -> list[str]:
        """States no path from the initial state (or, in a subflow, from its first state)
        reaches, in source order."""
        return [s for s in self.states if s not in self.reachable]

    def required_edges(self) -> list[Edge]:
        """The edges coverage counts: written, and reachable by an outcome that can happen."""
        return [e for e in self.edges.values() if e.required and e.possible]


def _has_retry(steps: tuple[Any, ...]) -> bool:
    for s in steps:
        if s.op == "retry":
            return True
        if s.op == "if" and (
            any(_has_retry(b.steps) for b in s.branches) or _has_retry(s.else_steps)
        ):
            return True
        if s.op == "switch" and (
            any(_has_retry(c.steps) for c in s.cases) or _has_retry(s.default_steps)
        ):
            return True
    return False


class _Walker:
    def __init__(self, fm: FlowMap) -> None:
        self.fm = fm
        self.possible = True
        self.state: ir.State | None = None

    def can_retry(self, s: Any) -> bool:
        """Whether a ``retry`` can run for ``s``: in its handlers, or the state's error
        handlers or anytime commands (which retry the interrupted input step)."""
        blocks = [h.steps for hs in s.on.values() for h in hs]
        if self.state is not None:
            blocks += [h.steps for h in self.state.on_error]
            blocks += [c.handler.steps for c in self.state.commands]
        return any(_has_retry(b) for b in blocks)

    def add_edge(self, state: str, label: str, s: Any, origin: str) -> None:
        key = transition_key(self.fm.flow, state, label, s, origin)
        old = self.fm.edges.get(key)
        states = frozenset({state}) | (old.states if old else frozenset())
        possible = self.possible or (old is not None and old.possible)
        src, _, target, *at = key
        self.fm.edges[key] = Edge(
            src, label, target, s.op, origin, s.span.file, s.span.line, states, possible,
            at="".join(at),
        )  # fmt: skip

    def block(self, steps: tuple[Any, ...], state: str, label: str, origin: str) -> None:
        for s in steps:
            op = s.op
            if op in ir.TRANSITION_OPS:
                self.add_edge(state, label, s, origin)
            elif op == "if":
                for b in s.branches:
                    self.block(b.steps, state, label, origin)
                self.block(s.else_steps, state, label, origin)
            elif op == "switch":
                for c in s.cases:
                    self.block(c.steps, state, label, origin)
                self.block(s.default_steps, state, label, origin)
            if op in ir.INPUT_OPS:
                self.input_step(s, state)

    def input_step(self, s: Any, state: str) -> None:
        if s.op == "call":
            self.fm.calls.append((state, s.subflow))
        # only what the step's kind can produce (spec OUTCOMES, its choices and tools): a
        # handler the IR holds for any other outcome is never taken, so it is not counted
        fixed = ir.OUTCOMES.get(s.op, ())
        named = [f"choice:{c.value}" for c in getattr(s, "choices", ())]
        named += [f"tool:{t.name}" for t in getattr(s, "tools", ())]
        possible = {*fixed, *named}
        outcomes = list(dict.fromkeys([*fixed, *(o for o in s.on if o in possible), *named]))
        key = step_key(s)
        retried = self.can_retry(s) and not getattr(s, "unlimited", False)
        for name in outcomes:
            if name == "exhausted" and not retried:  # only a bounded retry exhausts a step
                self.possible = False
                for h in s.on.get(name, ()):
                    self.block(h.steps, state, outcome_label(name, h.count), h.origin)
                self.possible = True
                continue
            handlers: tuple[ir.Handler, ...] = s.on.get(name, ())
            if name == "error":  # inherited error handlers would make a branch of every step
                explicit = any(h.origin in _LOCAL for h in handlers)
            else:
                explicit = any(h.origin != "default" for h in handlers)
            success = name in SUCCESS or name.startswith(("choice:", "tool:"))
            if name == "match" and getattr(s, "choices", ()):
                continue  # a menu never ends with a bare match
            if explicit or success:
                self.fm.branches[(state, key, name)] = Branch(state, key, name, s.span.line)
            elif not handlers:  # an implied (compiler default) handler is a handler, as for lint
                if name not in ("error", "exhausted"):
                    self.fm.unhandled.append(Branch(state, key, name, s.span.line, handled=False))
            for h in handlers:
                self.block(h.steps, state, outcome_label(name, h.count), h.origin)


def build_flowmap(flow: ir.Flow) -> FlowMap:
    """Walk every state, handler and command of ``flow``."""
    fm = FlowMap(flow)
    w = _Walker(fm)
    groups: list[tuple[str | None, dict[str, ir.State]]] = [(None, flow.states)]
    groups += [(name, sub.states) for name, sub in flow.subflows.items()]
    for sub, states in groups:
        for name, st in states.items():
            key = f"{sub}.{name}" if sub else name
            fm.states[key] = st
            w.state = st
            w.block(st.steps, key, "", "state")
            for h in st.on_error:
                if h.origin in _LOCAL:
                    fm.branches[(key, "", "error")] = Branch(key, "", "error", h.span.line)
                w.block(h.steps, key, outcome_label("error", h.count), h.origin)
            for c in st.commands:
                label = "cmd:" + c.name
                fm.branches[(key, "", label)] = Branch(key, "", label, c.span.line)
                w.block(c.handler.steps, key, label, c.handler.origin)
    fm.reachable = _reachable(fm)
    return fm


def _reachable(fm: FlowMap) -> set[str]:
    out_of: dict[str, set[str]] = {s: set() for s in fm.states}
    for e in fm.edges.values():
        if e.target in fm.states:
            for s in e.states:
                out_of[s].add(e.target)
    for state, sub in fm.calls:
        subflow = fm.flow.subflows.get(sub)
        if subflow is not None:
            out_of[state].add(f"{sub}.{subflow.initial}")
    # every body from its own first state, as lint's VF201 sees it: a subflow of a library file
    # (no states of its own) is entered by the flows that include it
    starts = [fm.flow.initial] if fm.flow.initial in fm.states else []
    starts += [f"{name}.{sub.initial}" for name, sub in fm.flow.subflows.items()]
    seen = set(starts)
    todo = deque(starts)
    while todo:
        cur = todo.popleft()
        for nxt in sorted(out_of.get(cur, ())):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen
