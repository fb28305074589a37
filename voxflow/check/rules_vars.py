"""VF3xx rules (variables, types, templates) and VF4xx rules (values)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

from voxflow.check.adapt import expr_strings
from voxflow.check.dataflow import CFG, suggest_hint
from voxflow.check.model import INPUT_OPS, TRANSITION_OPS, MFlow, MStep, MSubflow
from voxflow.check.rules_flow import subflow_exits
from voxflow.check.templates import analyze_template
from voxflow.check.types import infer
from voxflow.check.walk import (
    Bag,
    RuleContext,
    StateCtx,
    all_steps,
    bodies,
    resolve_step,
    state_context,
)
from voxflow.source import Span
from voxflow.spec.dtmf import pattern_problem
from voxflow.spec.semantics import implied_transition

__all__ = ["RULES_3XX", "RULES_4XX", "step_reads"]


def _template_span(base: Span, line_in_template: int) -> Span:
    if line_in_template <= 1:
        return base
    line = base.line + line_in_template - 1
    return Span(line, 1, line, 2)


def step_reads(step: MStep) -> list[tuple[str, Span]]:
    """Names ``step`` reads: expression variables plus the names its templates use (computed
    once per step)."""
    if step.read_cache is not None:
        return step.read_cache
    out = list(step.reads)
    for text, span in step.templates:
        info = analyze_template(text)
        out.extend((name, span) for name in sorted(info.names))
    for text, span, local in step.scoped_templates:
        info = analyze_template(text)
        out.extend((name, span) for name in sorted(info.names) if name not in local)
    step.read_cache = out
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


def _bound_by_call(sub: MSubflow) -> dict[str, tuple[Span, str]]:
    """Variables a call step's ``returns (...)`` binds, each with its binding's span and file."""
    out: dict[str, tuple[Span, str]] = {}
    for step in all_steps(sub):
        for name, span in step.bound:
            out.setdefault(name, (span, step.file))
    return out


def vf302_unused_variable(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A variable is declared or assigned but never read (warning)."""
    for sub in bodies(flow):
        read = {n for n, _, _ in _reads(sub)}
        returned = {r.name for r in sub.returns}
        declared = {v.name for v in [*sub.params, *sub.variables]}
        bound = _bound_by_call(sub)
        for name, span in _assigned(sub).items():
            if name not in read and name not in returned and not name.startswith("_"):
                file = next(
                    (v.file for v in [*sub.params, *sub.variables] if v.name == name), sub.file
                )
                hint = "remove it, or name it with a leading '_' to keep it"
                if name in bound and name not in declared:
                    span, file = bound[name]  # 'returns (_x)': a value the subflow lacks
                    hint = f"leave it out of 'returns (...)', or bind it as '{name} as _{name}'"
                bag.add("VF302", span, file, f"variable '{name}' is never used", hint)


class _Builder:
    """Builds the definite-assignment CFG of one flow or subflow. Handlers resolve and imply
    their transitions as lowering does: ``continue`` goes on after the input step, ``retry``
    runs it again."""

    def __init__(self, sub: MSubflow, exits: Callable[[str], set[str]] | None = None) -> None:
        self.sub = sub
        self.exits = exits  # the flow's states a call of a subflow can leave for (main only)
        self.cfg = CFG()
        self.entry: dict[str, int] = {}
        self.frames: list[tuple[int, int]] = []  # (input step node, join after it)
        self.active: set[int] = set()
        for state in sub.states:
            self.entry.setdefault(state.name, self.cfg.node())

    def block(self, steps: list[MStep], start: int, ctx: StateCtx) -> int | None:
        """Wire ``steps`` after node ``start``; the node control leaves by, or None."""
        cur: int | None = start
        for step in steps:
            if cur is None:
                return None
            cur = self.step(step, cur, ctx)
        return cur

    def step(self, step: MStep, prev: int, ctx: StateCtx) -> int | None:
        uses = [(n, sp, step.file) for n, sp in step_reads(step)]
        node = self.cfg.node(step.assigns, uses)
        self.cfg.edge(prev, node)
        if step.op == "call" and step.subflow and self.exits is not None:
            # left without returning: the call's 'returns' are not bound
            for target in sorted(self.exits(step.subflow)):
                self.cfg.edge(prev, self.entry[target])
        if step.op == "goto" and step.target in self.entry:
            self.cfg.edge(node, self.entry[step.target])
            return None
        if step.op in ("continue", "retry") and self.frames:
            step_node, join = self.frames[-1]
            self.cfg.edge(node, join if step.op == "continue" else step_node)
            return None
        if step.op in TRANSITION_OPS:
            return None
        if step.blocks:
            join = self.cfg.node()
            for block in step.blocks:
                end = self.block(block, node, ctx)
                if end is not None:
                    self.cfg.edge(end, join)
            if not step.exhaustive:
                self.cfg.edge(node, join)
            return join
        if step.op in INPUT_OPS:
            return self._input(step, node, ctx)
        return node

    def _implied(self, event: str, end: int, node: int, join: int) -> None:
        then = implied_transition(event)
        if then == "continue":
            self.cfg.edge(end, join)
        elif then == "retry":
            self.cfg.edge(end, node)

    def _input(self, step: MStep, node: int, ctx: StateCtx) -> int:
        join = self.cfg.node()
        for outcome, r in resolve_step(step, ctx).items():
            after = self.cfg.node(step.outcome_assigns.get(outcome, ()))
            self.cfg.edge(node, after)
            if r.how == "implied":
                self._implied(outcome, after, node, join)
                continue
            for h in r.handlers:
                if id(h) in self.active:
                    continue  # a handler re-entered from its own body adds no new path
                self.active.add(id(h))
                self.frames.append((node, join))
                end = self.block(h.steps, after, ctx)
                self.frames.pop()
                self.active.discard(id(h))
                if end is not None:
                    self._implied(h.outcome, end, node, join)
        return join


def vf301_maybe_unset(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A variable is read on a path where it may not have been assigned yet. Subflow
    parameters are bound by the caller (VF106 checks the call)."""
    for sub in bodies(flow):
        if not sub.states:
            continue
        b = _Builder(sub, partial(subflow_exits, flow) if sub is flow.body else None)
        start = b.cfg.node()
        first = sub.initial if sub.initial in b.entry else sub.states[0].name
        b.cfg.edge(start, b.entry[first])
        for state in sub.states:
            if b.entry.get(state.name) is None:
                continue
            b.block(state.steps, b.entry[state.name], state_context(flow, sub, state))
        for v in [*sub.params, *sub.variables]:
            b.cfg.bit(v.name)
        initially = [v.name for v in sub.variables if v.initialized]
        initially.extend(v.name for v in sub.params)
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


_TYPED_HINTS = {
    "duration": "a duration such as 20s, or a variable or parameter declared ': duration'",
    "number": "a whole number, e.g. len(pin), or a variable declared ': number'",
    "list": 'a list, e.g. var periods: list = ["morning", "evening"]',
    "map": 'a map, e.g. {"case": case_id}',
}


def vf303_type_errors(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """VF303 type errors and VF304 unknown functions in expressions."""
    for sub in bodies(flow):
        types = {v.name: v.type for v in [*sub.params, *sub.variables]}
        var_type = _typer(types)
        for step in all_steps(sub):
            for name, expr, want in step.typed_options:
                got, issues = infer(expr, var_type, ctx.functions, fallback=step.span)
                if not issues and got not in (want, "any"):  # a number is not a duration
                    bag.add(
                        "VF303",
                        getattr(expr, "span", step.span),
                        step.file,
                        f"'{name}' needs {'an' if want[0] in 'aeiou' else 'a'} {want}, not {got}",
                        _TYPED_HINTS[want],
                    )
            for expr in step.exprs:
                _, issues = infer(expr, var_type, ctx.functions, fallback=step.span)
                for issue in issues:
                    bag.add(
                        issue.code, issue.span or step.span, step.file, issue.message, issue.hint
                    )


def vf306_unused_subflow(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A subflow is defined but never called (warning). Only subflows of a flow file (one with
    a ``flow`` header) count: a file without a header is a library, and what it defines is
    meant to be included and called elsewhere."""
    if not flow.has_header:
        return
    called = {s.subflow for b in bodies(flow) for s in all_steps(b) if s.op == "call"}
    for sub in flow.subflows:
        if sub.file == flow.file and sub.name not in called:
            bag.add("VF306", sub.span, sub.file, f"subflow '{sub.name}' is never called")


def vf307_template_syntax(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A prompt template is not valid jinja2."""
    for sub in bodies(flow):
        for step in all_steps(sub):
            scoped = [(text, span) for text, span, _ in step.scoped_templates]
            for text, span in [*step.templates, *scoped]:
                info = analyze_template(text)
                if info.error:
                    bag.add(
                        "VF307",
                        _template_span(span, info.error_line),
                        step.file,
                        f"template error: {info.error}",
                        "templates use jinja2 syntax: {{ name }}, {% if x %}...{% endif %}",
                    )


_TEMPLATE_MARK = re.compile(r"\{\{|\{%")
_ONE_EXPR = re.compile(r"\s*\{\{\s*([^|{}]+?)\s*\}\}\s*")


def vf308_string_not_template(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """VF308 ``{{ }}``/``{% %}`` in a string of an expression (``body "{{ call.caller }}"``,
    ``set x = "Hi {{ name }}"``): expressions are values, their strings are not rendered."""
    for sub in bodies(flow):
        for step in all_steps(sub):
            rendered = {span for _, span in step.templates}
            rendered |= {span for _, span, _ in step.scoped_templates}
            for expr in step.exprs:
                for text, spelling, span in expr_strings(expr):
                    if span in rendered or not _TEMPLATE_MARK.search(text):
                        continue
                    one = _ONE_EXPR.fullmatch(text)
                    hint = (
                        f"did you mean {one.group(1)}? write the expression without quotes "
                        "and braces"
                        if one
                        else 'join text and values with +: "Dear " + str(name)'
                    )
                    bag.add(
                        "VF308",
                        span,
                        step.file,
                        f"{spelling} is used as written, not rendered: in an expression only "
                        "an http step's or agent action's body or a subflow argument (or their "
                        "list and map items) is a template",
                        hint,
                    )


RULES_3XX = [
    vf301_maybe_unset,
    vf302_unused_variable,
    vf303_type_errors,
    vf305_undefined_variable,
    vf306_unused_subflow,
    vf307_template_syntax,
    vf308_string_not_template,
]


def vf406_choice_values(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """VF406 choice keys that are not DTMF keys, VF407 invalid regular expressions. (Option
    values - VF401-VF405, VF408 - are checked by lowering, which owns their meaning.)"""
    for sub in bodies(flow):
        for step in all_steps(sub):
            for key, span in step.choice_keys:
                problem = pattern_problem(key)
                if problem is not None:
                    bag.add(
                        "VF406",
                        span,
                        step.file,
                        problem,
                        "keys are 0-9, *, # and A-D; a pattern starts with '_': "
                        "key \"_1XX\" (X any digit, Z 1-9, N 2-9, [1-5], '.' one or more)",
                    )
            for pattern, span in step.patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    bag.add("VF407", span, step.file, f"invalid regular expression: {exc}")


_SECRET_HEADER = re.compile(r"authorization|cookie|api[-_]?key|token|secret|passw(or)?d", re.I)
_JINJA_PART = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_AUTH_SCHEME = re.compile(r"\b(bearer|basic|token|digest|bot|apikey)\b", re.I)
_SECRET_QUERY = re.compile(
    r"[?&]((?:api[-_]?)?key|(?:access[-_]?)?token|secret|passw(?:or)?d|sig(?:nature)?)="
    r"(?!\{)([^&#]+)",
    re.I,
)
_USERINFO = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@{]*:[^/@{]+@", re.I)


def _literal_secret(part: str, text: str) -> str | None:
    """Why an HTTP ``url``/``header:<Name>`` template holds a credential in plain text."""
    if part.startswith("header:"):
        name = part[len("header:") :]
        if not _SECRET_HEADER.search(name):
            return None
        rest = _AUTH_SCHEME.sub("", _JINJA_PART.sub("", text))
        if rest.strip(" \t:=,;\"'"):
            return f"header '{name}' has a credential written in the flow"
        return None
    if _USERINFO.match(text):
        return "the URL has a password written in the flow"
    m = _SECRET_QUERY.search(text)
    if m:
        return f"the URL's '{m.group(1)}' parameter has a credential written in the flow"
    return None


def vf409_credential_in_flow(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """A credential (Authorization/token/API-key header, key/token/password URL parameter, or
    a password in the URL) is written in plain text: flows are shared and versioned, and
    their text lands in traces. Secrets come in through variables (e.g. ``call.metadata``)."""
    for sub in bodies(flow):
        for step in all_steps(sub):
            for part, text, span in step.http_parts:
                why = _literal_secret(part, text)
                if why:
                    bag.add(
                        "VF409",
                        span,
                        step.file,
                        why,
                        "pass it in from your application, e.g. {{ call.metadata.api_token }}, "
                        "and keep it out of .flow files",
                    )


_KEYS_ONLY = re.compile(r"[0-9*#]+")


def vf410_phrase_of_keys(flow: MFlow, ctx: RuleContext, bag: Bag) -> None:
    """VF410 a quoted choice phrase made only of DTMF keys (``"1"``): it is matched against
    speech, so a caller pressing the key gets ``nomatch``."""
    for sub in bodies(flow):
        for step in all_steps(sub):
            for phrase, span in step.phrases:
                if not _KEYS_ONLY.fullmatch(phrase):
                    continue
                if phrase.isdigit():
                    hint = f'did you mean the key? write {phrase} (or key "#" for * and #)'
                else:
                    hint = f'did you mean the key? write key "{phrase}"'
                bag.add(
                    "VF410",
                    span,
                    step.file,
                    f'"{phrase}" is a spoken phrase, not a key: a caller pressing {phrase} '
                    "gets nomatch",
                    hint,
                )


RULES_4XX = [vf406_choice_values, vf409_credential_in_flow, vf410_phrase_of_keys]
