"""VF3xx rules (variables, types, templates) and VF4xx rules (values)."""

from __future__ import annotations

import re
from collections.abc import Callable

from voxflow.check.dataflow import CFG, suggest_hint
from voxflow.check.model import INPUT_OPS, TRANSITION_OPS, MFlow, MHandler, MStep, MSubflow
from voxflow.check.templates import analyze_template
from voxflow.check.types import infer
from voxflow.check.walk import (
    DTMF_KEYS,
    Bag,
    RuleContext,
    all_handlers,
    all_steps,
    bodies,
    fallback_handlers,
    handlers_for,
)
from voxflow.source import Span

__all__ = ["RULES_3XX", "RULES_4XX", "step_reads"]


def _template_span(base: Span, line_in_template: int) -> Span:
    if line_in_template <= 1:
        return base
    line = base.line + line_in_template - 1
    return Span(line, 1, line, 2)


def step_reads(step: MStep) -> list[tuple[str, Span]]:
    """Names ``step`` reads: expression variables plus the names its templates use."""
    out = list(step.reads)
    for text, span in step.templates:
        info = analyze_template(text)
        out.extend((name, span) for name in sorted(info.names))
    return out


def _assigned(sub: MSubflow) -> dict[str, Span]:
    """Every name that something in ``sub`` assigns or declares, with a first span."""
    out: dict[str, Span] = {}
    for var in [*sub.params, *sub.variables]:
        out.setdefault(var.name, var.span)
    for step in all_steps(sub):
        for name in step.assigns:
            out.setdefault(name, step.span)
        for names in step.outcome_assigns.values():
            for name in names:
                out.setdefault(name, step.span)
    return out


def _reads(sub: MSubflow) -> list[tuple[str, Span, str]]:
    return [(n, sp, s.file) for s in all_steps(sub) for n, sp in step_reads(s)]


def vf305_undefined_variable(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A name is read but nothing declares or assigns it."""
    for sub in bodies(flow):
        known = set(_assigned(sub)) | set(flow.roots)
        for name, span, file in _reads(sub):
            if name not in known:
                bag.add(
                    "VF305",
                    span,
                    file,
                    f"undefined variable '{name}'",
                    suggest_hint(name, known) or "declare it or set it before use",
                )


def vf302_unused_variable(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A variable is declared or assigned but never read (warning)."""
    for sub in bodies(flow):
        read = {n for n, _, _ in _reads(sub)}
        returned = {r.name for r in sub.returns}
        for name, span in _assigned(sub).items():
            if name not in read and name not in returned and not name.startswith("_"):
                file = next(
                    (v.file for v in [*sub.params, *sub.variables] if v.name == name), sub.file
                )
                bag.add(
                    "VF302",
                    span,
                    file,
                    f"variable '{name}' is never used",
                    "remove it, or name it with a leading '_' to keep it",
                )


class _Builder:
    """Builds the definite-assignment CFG of one flow or subflow."""

    def __init__(self, sub: MSubflow) -> None:
        self.sub = sub
        self.cfg = CFG()
        self.entry: dict[str, int] = {}
        self.joins: list[int] = []
        for state in sub.states:
            self.entry.setdefault(state.name, self.cfg.node())

    def block(
        self, steps: list[MStep], start: int, fallback: dict[str, list[MHandler]]
    ) -> int | None:
        """Wire ``steps`` after node ``start``; the node control leaves by, or None."""
        cur: int | None = start
        for step in steps:
            if cur is None:
                return None
            cur = self.step(step, cur, fallback)
        return cur

    def step(self, step: MStep, prev: int, fallback: dict[str, list[MHandler]]) -> int | None:
        uses = [(n, sp, step.file) for n, sp in step_reads(step)]
        node = self.cfg.node(step.assigns, uses)
        self.cfg.edge(prev, node)
        if step.op == "goto" and step.target in self.entry:
            self.cfg.edge(node, self.entry[step.target])
            return None
        if step.op == "continue" and self.joins:
            self.cfg.edge(node, self.joins[-1])
            return None
        if step.op in TRANSITION_OPS:
            return None
        if step.blocks:
            join = self.cfg.node()
            for block in step.blocks:
                end = self.block(block, node, fallback)
                if end is not None:
                    self.cfg.edge(end, join)
            if not step.exhaustive:
                self.cfg.edge(node, join)
            return join
        if step.op in INPUT_OPS:
            return self._input(step, node, fallback)
        return node

    def _input(self, step: MStep, node: int, fallback: dict[str, list[MHandler]]) -> int:
        join = self.cfg.node()
        own = {h.outcome for h in step.handlers}
        for outcome in step.success:
            if outcome not in own:
                ok = self.cfg.node(step.outcome_assigns.get(outcome, ()))
                self.cfg.edge(node, ok)
                self.cfg.edge(ok, join)
        resolved = handlers_for(step, fallback)
        for h in step.handlers:
            if h.outcome not in resolved:
                resolved[h.outcome] = [h]
        for outcome, handlers in resolved.items():
            after = self.cfg.node(step.outcome_assigns.get(outcome, ()))
            self.cfg.edge(node, after)
            if not handlers:
                self.cfg.edge(after, join)
            self.joins.append(join)
            for h in handlers:
                end = self.block(h.steps, after, {})
                if end is not None:
                    self.cfg.edge(end, join)
            self.joins.pop()
        return join


def vf301_maybe_unset(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A variable is read on a path where it may not have been assigned yet."""
    for sub in bodies(flow):
        if not sub.states:
            continue
        b = _Builder(sub)
        start = b.cfg.node()
        first = sub.initial if sub.initial in b.entry else sub.states[0].name
        b.cfg.edge(start, b.entry[first])
        for state in sub.states:
            if b.entry.get(state.name) is None:
                continue
            fallback = fallback_handlers(sub, state)
            b.block(state.steps, b.entry[state.name], fallback)
        for v in [*sub.params, *sub.variables]:
            b.cfg.bit(v.name)
        initially = [v.name for v in [*sub.params, *sub.variables] if v.initialized]
        initially.extend(flow.roots)
        seen: set[tuple[str, Span]] = set()
        for name, span, file in b.cfg.maybe_unset(start, initially):
            if (name, span) in seen:
                continue
            seen.add((name, span))
            bag.add(
                "VF301",
                span,
                file,
                f"'{name}' may be unset here",
                f"assign '{name}' on every path before this step, or give it a default",
            )


def _typer(types: dict[str, str]) -> Callable[[str], str]:
    return lambda name: types.get(name, "any")


def vf303_type_errors(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """VF303 type errors and VF304 unknown functions in expressions."""
    for sub in bodies(flow):
        types = {v.name: v.type for v in [*sub.params, *sub.variables]}
        var_type = _typer(types)
        for step in all_steps(sub):
            for expr in step.exprs:
                _, issues = infer(expr, var_type, ctx.functions, fallback=step.span)
                for issue in issues:
                    bag.add(
                        issue.code, issue.span or step.span, step.file, issue.message, issue.hint
                    )


def vf306_unused_subflow(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A subflow is defined but never called (warning)."""
    called = {s.subflow for b in bodies(flow) for s in all_steps(b) if s.op == "call"}
    for sub in flow.subflows:
        if sub.name not in called:
            bag.add("VF306", sub.span, sub.file, f"subflow '{sub.name}' is never called")


def vf307_template_syntax(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A prompt template is not valid jinja2."""
    for sub in bodies(flow):
        for step in all_steps(sub):
            for text, span in step.templates:
                info = analyze_template(text)
                if info.error:
                    bag.add(
                        "VF307",
                        _template_span(span, info.error_line),
                        step.file,
                        f"template error: {info.error}",
                        "templates use jinja2 syntax: {{ name }}, {% if x %}...{% endif %}",
                    )


RULES_3XX = [
    vf301_maybe_unset,
    vf302_unused_variable,
    vf303_type_errors,
    vf305_undefined_variable,
    vf306_unused_subflow,
    vf307_template_syntax,
]

_COUNT_NAMES = {"retries", "max_attempts", "attempts", "max_turns"}


def vf4xx_values(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """VF401 timeouts, VF402 max digits, VF403 terminator, VF404 durations, VF405 retries,
    VF406 choice keys, VF407 regexes, VF408 other out-of-range values."""
    values = list(flow.config)
    for sub in bodies(flow):
        for step in all_steps(sub):
            values.extend(step.values)
            if step.retries is not None:
                values.append(step.retries)
            for key, span in step.choice_keys:
                if not key or any(ch not in DTMF_KEYS for ch in key):
                    bag.add(
                        "VF406",
                        span,
                        step.file,
                        f"'{key}' is not a DTMF key",
                        "keys are 0-9, *, # and A-D",
                    )
            for pattern, span in step.patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    bag.add("VF407", span, step.file, f"invalid regular expression: {exc}")
        for h in all_handlers(sub):
            if h.count < 1:
                bag.add("VF408", h.span, h.file, f"handler count must be at least 1, not {h.count}")
    for v in values:
        _value(v.name, v.value, v.unit, v.span, flow.file, bag)


def _value(name: str, value: object, unit: str, span: Span, file: str, bag: Bag) -> None:
    if unit == "ms":
        if not isinstance(value, int | float) or isinstance(value, bool):
            bag.add("VF404", span, file, f"'{name}' needs a duration such as 5s or 500ms")
        elif value <= 0:
            bag.add("VF401", span, file, f"'{name}' must be greater than zero")
        elif value > 24 * 3600 * 1000:
            bag.add("VF404", span, file, f"'{name}' is longer than a day")
        return
    if name == "max_digits" and isinstance(value, int) and value <= 0:
        bag.add("VF402", span, file, f"max_digits must be at least 1, not {value}")
    elif name == "terminator" and isinstance(value, str):
        if len(value) != 1 or value not in DTMF_KEYS:
            bag.add(
                "VF403",
                span,
                file,
                f"terminator '{value}' is not a single DTMF key",
                "use '#' or '*'",
            )
    elif name in _COUNT_NAMES and isinstance(value, int) and value < 1:
        bag.add("VF405", span, file, f"{name} must be at least 1, not {value}")


RULES_4XX = [vf4xx_values]
