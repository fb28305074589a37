"""VF1xx rules: references (states, variables, handlers, subflows, config keys, outcomes)."""

from __future__ import annotations

from voxflow.check.dataflow import suggest_hint
from voxflow.check.model import INPUT_OPS, MFlow, MHandler, MState, MStep, MSubflow
from voxflow.check.walk import Bag, RuleContext, all_steps, bodies
from voxflow.source import Span
from voxflow.spec.semantics import COMMAND_EVENT

__all__ = ["RULES_1XX"]


def vf101_unknown_state(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A goto names a state that does not exist (in its flow or subflow)."""
    for sub in bodies(flow):
        names = {s.name for s in sub.states}
        for step in all_steps(sub):
            if step.op == "goto" and step.target is not None and step.target not in names:
                bag.add(
                    "VF101",
                    step.target_span or step.span,
                    step.file,
                    f"unknown state '{step.target}'",
                    suggest_hint(step.target, names),
                )
        if sub.initial is not None and sub.states and sub.initial not in names:
            bag.add(
                "VF101",
                sub.span,
                sub.file,
                f"unknown initial state '{sub.initial}'",
                suggest_hint(sub.initial, names),
            )


def vf102_duplicate_state(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """Two states (or two subflows) share a name."""
    for sub in bodies(flow):
        seen: dict[str, MState] = {}
        for state in sub.states:
            first = seen.setdefault(state.name, state)
            if first is not state:
                bag.add(
                    "VF102",
                    state.span,
                    state.file,
                    f"duplicate state '{state.name}'",
                    f"first defined at {first.file}:{first.span.line}",
                )
    subs: dict[str, MSubflow] = {}
    for sub in flow.subflows:
        first_sub = subs.setdefault(sub.name, sub)
        if first_sub is not sub:
            bag.add(
                "VF102",
                sub.span,
                sub.file,
                f"duplicate subflow '{sub.name}'",
                f"first defined at {first_sub.file}:{first_sub.span.line}",
            )


def vf103_duplicate_variable(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A variable or parameter is declared twice in one flow or subflow."""
    for sub in bodies(flow):
        seen: dict[str, Span] = {}
        for var in [*sub.params, *sub.variables]:
            if var.name in seen:
                bag.add(
                    "VF103",
                    var.span,
                    var.file,
                    f"duplicate variable '{var.name}'",
                    f"first declared on line {seen[var.name].line}",
                )
            else:
                seen[var.name] = var.span


def _dup_handlers(handlers: list[MHandler], bag: Bag, where: str) -> None:
    seen: dict[tuple[str, int], MHandler] = {}
    for h in handlers:
        if h.outcome == COMMAND_EVENT:
            continue  # anytime commands are told apart by their phrases and keys
        key = (h.outcome, h.count)
        if key in seen:
            count = f" (count {h.count})" if h.count > 1 else ""
            bag.add(
                "VF104",
                h.span,
                h.file,
                f"duplicate '{h.outcome}' handler{count} {where}",
                f"first given on line {seen[key].span.line}",
            )
        else:
            seen[key] = h


def vf104_duplicate_handler(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """The same outcome/handler (or DTMF key, option, flow header) is given twice in one place."""
    for span in flow.extra_headers:
        bag.add("VF104", span, flow.file, "a file can have only one 'flow' header")
    for name, span in flow.repeated:
        bag.add("VF104", span, flow.file, f"option '{name}' is given twice")
    for sub in bodies(flow):
        for step in all_steps(sub):
            for name, span in step.repeated:
                bag.add("VF104", span, step.file, f"option '{name}' is given twice")
        _dup_handlers(sub.handlers, bag, "in this flow")
        for scope in sub.scopes:
            _dup_handlers(scope.handlers, bag, f"in scope '{scope.name}'")
        for state in sub.states:
            _dup_handlers(state.handlers, bag, f"in state '{state.name}'")
        for step in all_steps(sub):
            _dup_handlers(step.handlers, bag, f"on this {step.op}")
            keys: dict[str, Span] = {}
            for key, span in step.choice_keys:
                if key in keys:
                    bag.add(
                        "VF104",
                        span,
                        step.file,
                        f"key '{key}' is used by two choices",
                        f"first used on line {keys[key].line}",
                    )
                else:
                    keys[key] = span


def _subflow_map(flow: MFlow) -> dict[str, MSubflow]:
    out: dict[str, MSubflow] = {}
    for sub in flow.subflows:
        out.setdefault(sub.name, sub)
    return out


def vf105_unknown_subflow(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A call step names a subflow that does not exist."""
    subs = _subflow_map(flow)
    for body in bodies(flow):
        for step in all_steps(body):
            if step.op == "call" and step.subflow is not None and step.subflow not in subs:
                bag.add(
                    "VF105",
                    step.subflow_span or step.span,
                    step.file,
                    f"unknown subflow '{step.subflow}'",
                    suggest_hint(step.subflow, subs),
                )


def vf106_subflow_arguments(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A call passes unknown arguments, misses required ones, or asks for unknown returns."""
    subs = _subflow_map(flow)
    for body in bodies(flow):
        for step in all_steps(body):
            sub = subs.get(step.subflow or "")
            if step.op != "call" or sub is None:
                continue
            params = {p.name: p for p in sub.params}
            given = {name for name, _ in step.args}
            for name, span in step.args:
                if name not in params:
                    bag.add(
                        "VF106",
                        span,
                        step.file,
                        f"subflow '{sub.name}' has no parameter '{name}'",
                        suggest_hint(name, params),
                    )
            missing = [p.name for p in sub.params if not p.initialized and p.name not in given]
            if missing:
                names = ", ".join(f"'{m}'" for m in missing)
                bag.add(
                    "VF106",
                    step.subflow_span or step.span,
                    step.file,
                    f"call of '{sub.name}' is missing argument{'s' * (len(missing) > 1)} {names}",
                    f"'{sub.name}' is declared at {sub.file}:{sub.span.line}",
                )
            rets = {r.name for r in sub.returns}
            for name, span in step.returns:
                if name not in rets:
                    bag.add(
                        "VF106",
                        span,
                        step.file,
                        f"subflow '{sub.name}' returns no value '{name}'",
                        suggest_hint(name, rets),
                    )


def _possible(step: MStep) -> set[str]:
    return {o for o in step.outcomes if ":" not in o} | {"default"}


def vf109_unknown_outcome(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A step handles an outcome it can never produce (e.g. ``on busy`` after ``http``), or a
    step without outcomes has handlers. ``on hangup`` belongs on a scope or the flow."""
    for body in bodies(flow):
        for step in all_steps(body):
            if step.op not in INPUT_OPS:
                if step.handlers:
                    bag.add(
                        "VF109",
                        step.handlers[0].span,
                        step.file,
                        f"'{step.op}' has no outcomes to handle",
                        "only input steps (gather, menu, dial, queue, http, ...) take 'on'",
                    )
                continue
            possible = _possible(step)
            for h in step.handlers:
                if ":" in h.outcome:
                    continue  # choices and tools
                if h.outcome not in possible:
                    bag.add(
                        "VF109",
                        h.span,
                        h.file,
                        f"{step.op} never ends with outcome '{h.outcome}'",
                        suggest_hint(h.outcome, possible)
                        or "possible: " + ", ".join(sorted(_possible(step))),
                    )


def vf110_duplicate_tool(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """Two tools/actions of one agent step share a name (the model could not tell them apart),
    or one tool/action has two arguments with the same name."""
    for sub in bodies(flow):
        for step in all_steps(sub):
            names: dict[str, tuple[str, Span]] = {}
            for kind, name, span in sorted(step.tool_names, key=lambda t: (t[2].line, t[2].col)):
                if name in names:
                    first_kind, first = names[name]
                    bag.add(
                        "VF110",
                        span,
                        step.file,
                        f"{kind} '{name}' has the same name as the {first_kind} on line "
                        f"{first.line}",
                        "give every tool and action of an agent step its own name",
                    )
                else:
                    names[name] = (kind, span)
            for owner, args in step.tool_args:
                seen: set[str] = set()
                for arg, span in args:
                    if arg in seen:
                        bag.add("VF110", span, step.file, f"duplicate argument '{arg}' in {owner}")
                    seen.add(arg)


RULES_1XX = [
    vf101_unknown_state,
    vf102_duplicate_state,
    vf103_duplicate_variable,
    vf104_duplicate_handler,
    vf105_unknown_subflow,
    vf106_subflow_arguments,
    vf109_unknown_outcome,
    vf110_duplicate_tool,
]
