"""VF2xx rules: control flow (reachability, fall-through, outcome exhaustiveness, loops)."""

from __future__ import annotations

from voxflow.check.dataflow import reachable
from voxflow.check.model import INPUT_OPS, MFlow, MHandler, MStep, MSubflow
from voxflow.check.rules_loops import unlimited, vf204
from voxflow.check.walk import (
    EMPTY_CTX,
    Bag,
    Resolved,
    RuleContext,
    StateCtx,
    block_flow,
    bodies,
    handler_retries,
    reached_steps,
    resolve_step,
    state_context,
    walk,
)
from voxflow.spec.semantics import REQUIRED_OUTCOMES, WAITING_OPS, implied_transition, outcome_op

__all__ = ["RULES_2XX", "state_edges", "subflow_exits"]


def state_edges(flow: MFlow, sub: MSubflow) -> dict[str, set[str]]:
    """State -> states it can go to: gotos in its steps and in every handler, anytime command
    and error handler that can run in it. Computed once per subflow."""
    cached = sub.memo.get("edges")
    if cached is not None:
        return cached  # type: ignore[no-any-return]  # memo: what this function stored
    edges: dict[str, set[str]] = {}
    for state in sub.states:
        out = edges.setdefault(state.name, set())
        ctx = state_context(flow, sub, state)
        waits = False
        for step, _ in reached_steps(state, ctx):
            if step.op == "goto" and step.target is not None:
                out.add(step.target)
            waits = waits or step.op in WAITING_OPS
            if step.op == "call" and step.subflow and sub is flow.body:
                out.update(subflow_exits(flow, step.subflow))
        if waits:
            out.update(s.target for h in ctx.commands for s in walk(h.steps) if s.target)
    sub.memo["edges"] = edges
    return edges


def subflow_exits(flow: MFlow, name: str, calling: frozenset[str] = frozenset()) -> set[str]:
    """The flow's states a call of subflow ``name`` can leave for without returning: targets
    of gotos in flow-level handlers it inherits that name no state of its own (the run time
    leaves every subflow frame for the flow's state), also from the subflows it calls."""
    sub = next((s for s in flow.subflows if s.name == name), None)
    if sub is None or name in calling:
        return set()
    cached = sub.memo.get("exits")
    if isinstance(cached, set):
        return cached
    own = {s.name for s in sub.states}
    main = {s.name for s in flow.body.states}
    edges = state_edges(flow, sub)
    start = _initial(sub)
    seen = reachable([start], edges) if start is not None else set()
    exits = {t for st in seen for t in edges.get(st, ()) if t not in own and t in main}
    for state in sub.states:
        if state.name in seen:
            for step, _ in reached_steps(state, state_context(flow, sub, state)):
                if step.op == "call" and step.subflow:
                    exits |= subflow_exits(flow, step.subflow, calling | {name})
    if not calling:
        sub.memo["exits"] = exits
    return exits


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
        seen = reachable([start], state_edges(flow, sub))
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
    """A state can reach its end without a transition (handlers resolve and imply their
    transitions exactly as lowering does)."""
    for sub in bodies(flow):
        for state in sub.states:
            falls, cont = block_flow(state.steps, state_context(flow, sub, state))
            if falls or cont:
                last = state.steps[-1] if state.steps else None
                span = last.span if last is not None else state.span
                bag.add(
                    "VF202",
                    span,
                    state.file,
                    f"state '{state.name}' can end without a transition",
                    "end every path with goto, hangup, transfer or return"
                    + ("; 'continue' only leaves a handler" if cont else ""),
                )


def _check_outcomes(step: MStep, sctx: StateCtx, bag: Bag) -> None:
    resolved = resolve_step(step, sctx)
    required = REQUIRED_OUTCOMES.get(outcome_op(step.op), ())
    missing = [o for o in required if o in resolved and resolved[o].how in ("implied", "error")]
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        bag.add(
            "VF203",
            step.span,
            step.file,
            f"{step.op} does not handle outcome{'s' * (len(missing) > 1)} {names}",
            f"add 'on {missing[0]}:' to the step, a handler in an enclosing scope, "
            "or 'on default:'",
        )
    exhausted = resolved.get("exhausted")
    if exhausted is None or exhausted.how not in ("implied", "error"):
        return
    if unlimited(step):
        return  # 'retries unlimited': exhausted cannot happen
    if any(_retries(o, r) for o, r in resolved.items() if o not in missing):
        bag.add(
            "VF203",
            step.span,
            step.file,
            f"{step.op} retries can run out but outcome 'exhausted' is not handled",
            "add 'on exhausted:' (e.g. transfer to an operator or hang up)",
        )


def _retries(outcome: str, r: Resolved) -> bool:
    if r.how == "implied":
        return implied_transition(outcome) == "retry"
    return any(handler_retries(h) for h in r.handlers)


def _scope_handlers(sub: MSubflow) -> list[MHandler]:
    out = list(sub.handlers)
    for scope in sub.scopes:
        out.extend(scope.handlers)
    for state in sub.states:
        out.extend(state.handlers)
    return out


def vf203_unhandled_outcome(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """An input step's outcome is handled neither on the step, nor by an enclosing scope's
    handler, nor by an explicit default (outcome exhaustiveness)."""
    checked: set[int] = set()
    for sub in bodies(flow):
        for state in sub.states:
            sctx = state_context(flow, sub, state)
            for step, _ in reached_steps(state, sctx):
                if step.op in INPUT_OPS and id(step) not in checked:
                    checked.add(id(step))
                    _check_outcomes(step, sctx, bag)


def vf205_unreachable_step(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """Steps after a step that never goes on to the next one (a transition, an if/match whose
    branches all leave, an input step none of whose outcomes continues) never run (warning)."""
    for sub in bodies(flow):
        blocks: list[tuple[list[MStep], StateCtx]] = [
            (s.steps, state_context(flow, sub, s)) for s in sub.states
        ]
        blocks.extend((h.steps, EMPTY_CTX) for h in _scope_handlers(sub))
        while blocks:
            block, sctx = blocks.pop()
            for i, step in enumerate(block):
                blocks.extend((b, sctx) for b in step.blocks)
                blocks.extend((h.steps, sctx) for h in step.handlers)
                if i + 1 < len(block) and not block_flow([step], sctx)[0]:
                    dead = block[i + 1]
                    where = f"'{step.op}' on line {step.span.line}"
                    why = (
                        f"no outcome of {where} continues to it"
                        if step.op in INPUT_OPS
                        else f"{where} always leaves before it"
                    )
                    bag.add(
                        "VF205",
                        dead.span,
                        dead.file,
                        f"unreachable step: {why}",
                        "remove it or move it before the transition",
                    )
                    break


RULES_2XX = [
    vf201_unreachable_state,
    vf202_falls_off_end,
    vf203_unhandled_outcome,
    vf204,
    vf205_unreachable_step,
]
