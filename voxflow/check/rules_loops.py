"""VF204: loops through an input step that nothing bounds.

A failure outcome whose handler jumps back (``goto``) into a cycle re-runs the input step with
fresh retry counters. The loop is accepted when something bounds it:

* the step has ``retries unlimited`` and the outcome follows the caller's own input or silence
  (``noinput``, ``nomatch``): every turn waits for the caller, so the call's end bounds it;
* the handler counts (sets a variable and tests it), or every path back passes a state that
  tests a variable set on the cycle (in that state, or in another state of the loop);
* the outcome cannot happen (``exhausted`` of a step that never retries, or with
  ``retries unlimited``).

``retries unlimited`` itself is refused where a retry does not wait for the caller (an ``error``
handler that retries would spin). The message names the loop's path, including the anytime
command that closes it.
"""

from __future__ import annotations

from collections import deque

from voxflow.check.dataflow import components, reachable
from voxflow.check.model import INPUT_OPS, MFlow, MHandler, MState, MStep, MSubflow
from voxflow.check.walk import (
    FAILURE_OUTCOMES,
    Bag,
    Resolved,
    RuleContext,
    bodies,
    handler_retries,
    reached_steps,
    resolve_step,
    state_context,
    walk,
)
from voxflow.spec.semantics import COMMAND_EVENT, WAITING_OPS, implied_transition

__all__ = ["CALLER_OUTCOMES", "exhausted_possible", "labelled_edges", "unlimited", "vf204"]

CALLER_OUTCOMES = frozenset({"noinput", "nomatch"})
"""Failure outcomes that only happen after waiting for the caller (their input or silence)."""

Edge = tuple[str, str]  # (target state, label: "" for a goto, else the anytime command)


def unlimited(step: MStep) -> bool:
    """The step was written with ``retries unlimited``."""
    return step.retries is not None and step.retries.value == "unlimited"


def exhausted_possible(step: MStep, resolved: dict[str, Resolved]) -> bool:
    """Whether ``exhausted`` can happen: some outcome's handler (or implied transition)
    retries, and the retries are bounded."""
    if unlimited(step):
        return False
    for outcome, r in resolved.items():
        if outcome == "exhausted":
            continue
        if r.how == "implied" and implied_transition(outcome) == "retry":
            return True
        if any(handler_retries(h) for h in r.handlers):
            return True
    return False


def labelled_edges(flow: MFlow, sub: MSubflow) -> dict[str, list[Edge]]:
    """State -> (state, label) it can go to: gotos in its steps and handlers (label ""), and
    the anytime commands active while it waits (label ``anytime (line N)``)."""
    cached = sub.memo.get("labelled_edges")
    if cached is not None:
        return cached  # type: ignore[no-any-return]  # memo: what this function stored
    out: dict[str, list[Edge]] = {}
    for state in sub.states:
        edges = out.setdefault(state.name, [])
        ctx = state_context(flow, sub, state)
        waits = False
        for step, owner in reached_steps(state, ctx):
            if step.op == "goto" and step.target is not None:
                edges.append((step.target, _label(owner)))
            waits = waits or step.op in WAITING_OPS
        if waits:
            for h in ctx.commands:
                edges.extend((s.target, _label(h)) for s in walk(h.steps) if s.target)
        edges[:] = list(dict.fromkeys(edges))
    sub.memo["labelled_edges"] = out
    return out


def _label(owner: MHandler | None) -> str:
    if owner is not None and owner.outcome == COMMAND_EVENT:
        return f"anytime command (line {owner.span.line})"
    return ""


def _sets_and_tests(state: MState) -> tuple[set[str], set[str]]:
    """The variables the state's ``set`` steps assign and its ``if``/``match`` steps read."""
    steps = list(walk(state.steps))
    sets = {v for s in steps if s.op == "set" for v in s.assigns}
    tested = {n for s in steps if s.op in ("if", "switch") for n, _ in s.reads}
    return sets, tested


def _counting_states(states: list[MState], comp: dict[str, int]) -> set[str]:
    """States that test a counter: a variable set in the same state or in another state of
    its cycle (``set attempts = attempts + 1`` in one, ``if attempts < 3`` in the next)."""
    info = {st.name: _sets_and_tests(st) for st in states}
    set_in: dict[int, set[str]] = {}
    for name, (sets, _) in info.items():
        set_in.setdefault(comp.get(name, -1), set()).update(sets)
    out = set()
    for name, (sets, tested) in info.items():
        cycle_sets = set_in.get(comp[name], set()) if name in comp else set()
        if tested & (sets | cycle_sets):
            out.add(name)
    return out


def _bounded(h: MHandler) -> bool:
    """A handler that counts (sets a variable and tests it) bounds the loop it closes."""
    ops = {s.op for s in walk(h.steps)}
    return "set" in ops and bool(ops & {"if", "switch"})


def _path(
    edges: dict[str, list[Edge]], start: str, goal: str, counters: set[str]
) -> list[Edge] | None:
    """The shortest path start -> goal avoiding counting states, as (state, label) hops."""
    if start in counters:
        return None
    if start == goal:
        return []
    prev: dict[str, tuple[str, str]] = {}
    todo = deque([start])
    seen = {start}
    while todo:
        node = todo.popleft()
        for nxt, label in edges.get(node, ()):
            if nxt in seen or nxt in counters:
                continue
            seen.add(nxt)
            prev[nxt] = (node, label)
            if nxt == goal:
                hops: list[Edge] = []
                cur = goal
                while cur != start:
                    back, lab = prev[cur]
                    hops.append((cur, lab))
                    cur = back
                return hops[::-1]
            todo.append(nxt)
    return None


def _describe(state: str, outcome: str, target: str, hops: list[Edge]) -> str:
    parts = [f"{state} --{outcome}--> {target}"]
    for name, label in hops:
        parts.append(f" --{label}--> {name}" if label else f" --> {name}")
    return "".join(parts)


def _called(flow: MFlow, sub: MSubflow) -> dict[str, set[str]]:
    """State of ``sub`` -> the subflows its ``call`` steps call."""
    out: dict[str, set[str]] = {}
    for state in sub.states:
        for step, _ in reached_steps(state, state_context(flow, sub, state)):
            if step.op == "call" and step.subflow:
                out.setdefault(state.name, set()).add(step.subflow)
    return out


class _Escape:
    """The way back into subflow ``sub`` from a state of the flow that a flow-level handler's
    goto leaves it for (the run time leaves the subflow there): the flow's states that call
    ``sub``, directly or through other subflows, and the flow's own goto edges."""

    def __init__(self, flow: MFlow, sub: MSubflow) -> None:
        self.sub = sub
        self.own = {st.name for st in sub.states}
        self.main = {st.name for st in flow.body.states}
        calls = {s.name: set().union(*_called(flow, s).values(), set()) for s in flow.subflows}
        into = {name for name in calls if sub.name in reachable([name], calls)}
        self.callers = sorted(st for st, subs in _called(flow, flow.body).items() if subs & into)
        self.edges = labelled_edges(flow, flow.body)
        comp = components({k: {t for t, _ in v} for k, v in self.edges.items()})
        self.counters = _counting_states(flow.body.states, comp)

    def path(self, target: str) -> list[Edge] | None:
        """The shortest way from the flow's ``target`` back to a call of the subflow."""
        if target not in self.main or target in self.own:
            return None
        found = [_path(self.edges, target, c, self.counters) for c in self.callers]
        paths = [p for p in found if p is not None]
        if not paths:
            return None
        return [*min(paths, key=len), (f"call {self.sub.name}()", "")]


def vf204(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """An input step loops with nothing bounding it (see the module docstring)."""
    reported: set[int] = set()
    for sub in bodies(flow):
        edges = labelled_edges(flow, sub)
        comp = components({k: {t for t, _ in v} for k, v in edges.items()})
        counters = _counting_states(sub.states, comp)
        escape = _Escape(flow, sub) if sub is not flow.body else None
        for state in sub.states:
            sctx = state_context(flow, sub, state)
            for step, _ in reached_steps(state, sctx):
                if step.op not in INPUT_OPS or id(step) in reported:
                    continue
                resolved = resolve_step(step, sctx)
                if unlimited(step):
                    _spinning_retry(step, state, resolved, bag, reported)
                for outcome, r in resolved.items():
                    if outcome not in FAILURE_OUTCOMES:
                        continue
                    if outcome == "exhausted" and not exhausted_possible(step, resolved):
                        continue
                    if unlimited(step) and outcome in CALLER_OUTCOMES:
                        continue
                    for h in r.handlers:
                        loop = _Loop(state, step, outcome, edges, comp, counters)
                        loop.escape = escape
                        loop.check(h, bag, reported)


def _spinning_retry(
    step: MStep, state: MState, resolved: dict[str, Resolved], bag: Bag, reported: set[int]
) -> None:
    for outcome, r in resolved.items():
        if outcome in CALLER_OUTCOMES or outcome == "exhausted" or ":" in outcome:
            continue
        if outcome not in FAILURE_OUTCOMES:
            continue
        for h in r.handlers:
            if handler_retries(h) and id(h) not in reported:
                reported.add(id(h))
                bag.add(
                    "VF204",
                    h.span,
                    h.file,
                    f"'{outcome}' of {step.op} in state '{state.name}' retries it without "
                    "waiting for the caller, and 'retries unlimited' never ends that loop",
                    f"leave the step on '{outcome}' (goto or hangup), or give it a number of "
                    "retries",
                )


class _Loop:
    """One outcome's handler of one input step, checked for a goto back into its cycle."""

    def __init__(
        self,
        state: MState,
        step: MStep,
        outcome: str,
        edges: dict[str, list[Edge]],
        comp: dict[str, int],
        counters: set[str],
    ) -> None:
        self.state, self.step, self.outcome = state, step, outcome
        self.edges, self.comp, self.counters = edges, comp, counters
        self.escape: _Escape | None = None  # in a subflow: the way back from the flow

    def _hops(self, target: str) -> list[Edge] | None:
        name = self.state.name
        if self.escape is not None and target not in self.escape.own:
            return self.escape.path(target)  # a flow-level handler leaves the subflow
        if self.comp.get(target, -1) != self.comp.get(name, -2):
            return None
        return _path(self.edges, target, name, self.counters)

    def check(self, h: MHandler, bag: Bag, reported: set[int]) -> None:
        if _bounded(h):
            return
        name = self.state.name
        for goto in walk(h.steps):
            if goto.op != "goto" or goto.target is None or id(goto) in reported:
                continue
            hops = self._hops(goto.target)
            if hops is None:
                continue  # not a loop, or every way back passes a state that counts
            reported.add(id(goto))
            if self.escape is not None and goto.target not in self.escape.own:
                name = f"{self.escape.sub.name}.{name}"
            loop = _describe(name, self.outcome, goto.target, hops)
            bag.add(
                "VF204",
                goto.target_span or goto.span,
                goto.file,
                f"'{self.outcome}' of {self.step.op} in state '{name}' loops back through "
                f"'{goto.target}' with no bound: {loop}",
                _HINT_CALLER if self.outcome in CALLER_OUTCOMES else _HINT,
            )
            return


_HINT_CALLER = (
    "to repeat it until the caller hangs up, write 'retries unlimited' on the step and "
    "'retry'; else use 'retry' (bounded by retries) and handle 'exhausted', or count attempts "
    "in a variable"
)
_HINT = "use 'retry' (bounded by retries) and handle 'exhausted', or count attempts in a variable"
