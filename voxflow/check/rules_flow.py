"""VF2xx rules: control flow (reachability, fall-through, outcome exhaustiveness, loops)."""

from __future__ import annotations

from voxflow.check.dataflow import components, reachable
from voxflow.check.model import INPUT_OPS, TRANSITION_OPS, MFlow, MHandler, MState, MStep, MSubflow
from voxflow.check.walk import (
    FAILURE_OUTCOMES,
    Bag,
    RuleContext,
    bodies,
    fallback_handlers,
    handlers_for,
    inherited,
    terminates,
    walk,
)

__all__ = ["RULES_2XX", "state_edges"]


def _targets(steps: list[MStep]) -> list[str]:
    return [s.target for s in walk(steps) if s.op == "goto" and s.target is not None]


def state_edges(sub: MSubflow) -> dict[str, set[str]]:
    """State -> states it can go to (its steps, and the handlers it inherits)."""
    edges: dict[str, set[str]] = {}
    for state in sub.states:
        out = edges.setdefault(state.name, set())
        out.update(_targets(state.steps))
        for h in inherited(sub, state):
            out.update(_targets(h.steps))
    return edges


def _initial(sub: MSubflow) -> str | None:
    if sub.initial is not None:
        return sub.initial
    return sub.states[0].name if sub.states else None


def vf201_unreachable_state(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """No path from the initial state reaches this state (warning)."""
    for sub in bodies(flow):
        start = _initial(sub)
        if start is None:
            continue
        seen = reachable([start], state_edges(sub))
        reported: set[str] = set()
        for state in sub.states:
            if state.name not in seen and state.name not in reported:
                reported.add(state.name)
                bag.add(
                    "VF201",
                    state.span,
                    state.file,
                    f"state '{state.name}' is unreachable",
                    "no goto leads here; remove it or add a transition to it",
                )


def vf202_falls_off_end(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A state can reach its end without a transition."""
    for sub in bodies(flow):
        for state in sub.states:
            if not terminates(state.steps, fallback_handlers(sub, state)):
                last = state.steps[-1] if state.steps else None
                span = last.span if last is not None else state.span
                bag.add(
                    "VF202",
                    span,
                    state.file,
                    f"state '{state.name}' can end without a transition",
                    "end every path with goto, hangup, transfer or return",
                )


def _uses_retry(handlers: list[MHandler]) -> bool:
    return any(s.op == "retry" for h in handlers for s in walk(h.steps))


def _check_outcomes(step: MStep, fallback: dict[str, list[MHandler]], bag: Bag) -> None:
    resolved = handlers_for(step, fallback)
    missing = [o for o in step.outcomes if not resolved.get(o)]
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        first = missing[0].removeprefix("choice:").removeprefix("tool:")
        bag.add(
            "VF203",
            step.span,
            step.file,
            f"{step.op} does not handle outcome{'s' * (len(missing) > 1)} {names}",
            f"add 'on {first}:' to the step, a handler in an enclosing scope, or 'on default:'",
        )
    used = [h for hs in resolved.values() for h in hs]
    if _uses_retry(used) and not resolved.get("exhausted") and not fallback.get("exhausted"):
        if not any(h.outcome == "default" for h in step.handlers):
            bag.add(
                "VF203",
                step.span,
                step.file,
                f"{step.op} retries can run out but outcome 'exhausted' is not handled",
                "add 'on exhausted:' (e.g. transfer to an operator or hang up)",
            )


def vf203_unhandled_outcome(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """An input step's outcome is handled neither on the step, nor by an enclosing scope's
    handler, nor by an explicit default (outcome exhaustiveness)."""
    for sub in bodies(flow):
        for state in sub.states:
            fallback = fallback_handlers(sub, state)
            for step in walk(state.steps):
                if step.op in INPUT_OPS:
                    _check_outcomes(step, fallback, bag)
        for h in _scope_handlers(sub):
            for step in walk(h.steps):
                if step.op in INPUT_OPS:
                    _check_outcomes(step, {}, bag)


def _scope_handlers(sub: MSubflow) -> list[MHandler]:
    out = list(sub.handlers)
    for scope in sub.scopes:
        out.extend(scope.handlers)
    for state in sub.states:
        out.extend(state.handlers)
    return out


def _bounded(h: MHandler) -> bool:
    """A handler that counts (sets a variable and tests it) bounds the loop it closes."""
    ops = {s.op for s in walk(h.steps)}
    return "set" in ops and bool(ops & {"if", "switch"})


def vf204_unbounded_input_loop(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A failure outcome of an input step jumps back (goto) into a cycle that re-runs the step
    with fresh retry counters and nothing bounds it."""
    for sub in bodies(flow):
        comp = components(state_edges(sub))
        for state in sub.states:
            fallback = fallback_handlers(sub, state)
            for step in walk(state.steps):
                if step.op not in INPUT_OPS:
                    continue
                for outcome, hs in handlers_for(step, fallback).items():
                    if outcome not in FAILURE_OUTCOMES:
                        continue
                    for h in hs:
                        _loop_in_handler(state, step, outcome, h, comp, bag)


def _loop_in_handler(
    state: MState,
    step: MStep,
    outcome: str,
    h: MHandler,
    comp: dict[str, int],
    bag: Bag,
) -> None:
    if _bounded(h):
        return
    for goto in walk(h.steps):
        if goto.op != "goto" or goto.target is None:
            continue
        same = comp.get(goto.target, -1) == comp.get(state.name, -2)
        if goto.target == state.name or same:
            bag.add(
                "VF204",
                goto.target_span or goto.span,
                goto.file,
                f"'{outcome}' of {step.op} in state '{state.name}' loops back through "
                f"'{goto.target}' with no retry bound",
                "use 'retry' (bounded by retries) and handle 'exhausted', "
                "or count attempts in a variable",
            )
            return


def vf205_unreachable_step(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """Steps after a terminal step never run (warning)."""
    for sub in bodies(flow):
        blocks: list[list[MStep]] = [s.steps for s in sub.states]
        blocks.extend(h.steps for h in _scope_handlers(sub))
        while blocks:
            block = blocks.pop()
            for i, step in enumerate(block):
                blocks.extend(step.blocks)
                blocks.extend(h.steps for h in step.handlers)
                ends = step.op in TRANSITION_OPS or (
                    step.blocks and step.exhaustive and all(terminates(b) for b in step.blocks)
                )
                if ends and i + 1 < len(block):
                    dead = block[i + 1]
                    bag.add(
                        "VF205",
                        dead.span,
                        dead.file,
                        f"unreachable step: '{step.op}' on line {step.span.line} "
                        "always leaves before it",
                        "remove it or move it before the transition",
                    )
                    break


RULES_2XX = [
    vf201_unreachable_state,
    vf202_falls_off_end,
    vf203_unhandled_outcome,
    vf204_unbounded_input_loop,
    vf205_unreachable_step,
]
