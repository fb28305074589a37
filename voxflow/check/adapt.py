"""Build the checker model (:mod:`voxflow.check.model`) from the parser's AST.

Option meaning comes from lowering's tables (:data:`voxflow.spec.options.STEP_OPTIONS`): lowering
owns option and value diagnostics (VF107, VF401-VF405, VF408); here options only contribute
what the rules need: the variables a step stores into (``var`` options), templates (``template``
options, plus the strings of an http ``headers`` map) and names read in expression options.
A repeated option is recorded for VF104.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeGuard

from voxflow.check.model import (
    FLOW_OUTCOMES,
    SUCCESS_OUTCOMES,
    MFlow,
    MHandler,
    MScope,
    MState,
    MStep,
    MSubflow,
    MValue,
    MVar,
)
from voxflow.source import Span
from voxflow.spec.options import DYNAMIC_OPTIONS, INERT_OPTIONS, REPEATABLE, STEP_OPTIONS
from voxflow.spec.semantics import COMMAND_EVENT, SUCCESS, step_outcomes
from voxflow.syntax import ast

__all__ = [
    "STORE_OPTIONS",
    "TEMPLATE_OPTIONS",
    "build_model",
    "expr_names",
    "expr_strings",
    "sent_templates",
]

STORE_OPTIONS = frozenset(
    name for spec in STEP_OPTIONS.values() for name, kind in spec.items() if kind == "var"
)
"""Options whose bare-word value is a variable the step stores into."""

TEMPLATE_OPTIONS = frozenset(
    name for spec in STEP_OPTIONS.values() for name, kind in spec.items() if kind == "template"
)
"""Options whose string value is a jinja2 template."""

_ARROW_OPS = {"retry", "continue", "hangup", "return"}


def expr_names(expr: Any) -> Iterator[tuple[str, Span]]:
    """Every variable an expression reads (roots of attribute/index chains included)."""
    if isinstance(expr, ast.Name):
        yield expr.name, expr.span
    elif isinstance(expr, ast.Unary):
        yield from expr_names(expr.operand)
    elif isinstance(expr, ast.Binary):
        yield from expr_names(expr.left)
        yield from expr_names(expr.right)
    elif isinstance(expr, ast.Call):
        for a in expr.args:
            yield from expr_names(a)
    elif isinstance(expr, ast.ListLit):
        for a in expr.items:
            yield from expr_names(a)
    elif isinstance(expr, ast.MapLit):
        for _, v in expr.entries:
            yield from expr_names(v)
    elif isinstance(expr, ast.Index):
        yield from expr_names(expr.target)
        yield from expr_names(expr.index)
    elif isinstance(expr, ast.Slice):
        for part in (expr.target, expr.start, expr.stop):
            if part is not None:
                yield from expr_names(part)
    elif isinstance(expr, ast.Attr):
        yield from expr_names(expr.target)


def expr_strings(expr: Any) -> Iterator[tuple[str, str, Span]]:
    """Every string literal of an expression: (value, source spelling, span)."""
    if isinstance(expr, ast.Literal_):
        if expr.type == "string":
            yield str(expr.value), expr.text or repr(expr.value), expr.span
    elif isinstance(expr, ast.Unary):
        yield from expr_strings(expr.operand)
    elif isinstance(expr, ast.Binary | ast.Index):
        parts = (
            (expr.left, expr.right) if isinstance(expr, ast.Binary) else (expr.target, expr.index)
        )
        for part in parts:
            yield from expr_strings(part)
    elif isinstance(expr, ast.Slice):
        for bound in (expr.target, expr.start, expr.stop):
            if bound is not None:
                yield from expr_strings(bound)
    elif isinstance(expr, ast.Call | ast.ListLit):
        for a in expr.args if isinstance(expr, ast.Call) else expr.items:
            yield from expr_strings(a)
    elif isinstance(expr, ast.MapLit):
        for _, v in expr.entries:
            yield from expr_strings(v)
    elif isinstance(expr, ast.Attr):
        yield from expr_strings(expr.target)


def sent_templates(expr: Any) -> Iterator[tuple[str, Span]]:
    """The string literals with ``{{ }}``/``{% %}`` the runtime renders in a value sent or passed
    on (an http ``body``, a subflow argument): alone, or items of literal lists and maps."""
    if isinstance(expr, ast.Literal_):
        text = str(expr.value)
        if expr.type == "string" and ("{{" in text or "{%" in text):
            yield text, expr.span
    elif isinstance(expr, ast.ListLit):
        for item in expr.items:
            yield from sent_templates(item)
    elif isinstance(expr, ast.MapLit):
        for _, v in expr.entries:
            yield from sent_templates(v)


class _Adapter:
    def __init__(self, file: str) -> None:
        self.file = file

    # -------------------------------------------------------------- steps
    def tail(self, tail: ast.Arrow | ast.Body | None) -> list[MStep]:
        if tail is None:
            return []
        if isinstance(tail, ast.Arrow):
            op = tail.target if tail.target in _ARROW_OPS else "goto"
            target = tail.target if op == "goto" else None
            return [MStep(op, tail.span, self.file, target=target, target_span=tail.target_span)]
        return self.steps(tail.steps)

    def steps(self, steps: Iterable[Any]) -> list[MStep]:
        return [self.step(s) for s in steps]

    def handler(self, h: ast.Handler) -> list[MHandler]:
        body = self.tail(h.tail)
        return [MHandler(ev, body, h.span, self.file, h.count or 1) for ev in h.events]

    def _options(self, step: MStep, options: Iterable[ast.Option], kind: str) -> None:
        spec = STEP_OPTIONS.get(kind, {})
        seen: set[str] = set()
        for opt in options:
            name = opt.name
            if name in seen and name not in REPEATABLE:
                step.repeated.append((name, opt.name_span))
            seen.add(name)
            if name in INERT_OPTIONS.get(kind, {}):
                step.inert.append((name, opt.name_span))
            okind = spec.get(name)
            if okind == "retries" and opt.values and isinstance(opt.values[0], ast.Name):
                step.retries = MValue(name, opt.values[0].name, opt.values[0].span)
            for value in opt.values:
                if okind == "var" and isinstance(value, ast.Name):
                    step.outcome_assigns.setdefault("*", []).append(value.name)
                elif okind == "template" and _is_string(value):
                    assert isinstance(value, ast.Literal_)
                    step.templates.append((str(value.value), value.span))
                elif okind in _VALUE_KINDS and not isinstance(value, ast.Literal_):
                    # a computed value (max_digits len(pin)) reads its names even where
                    # lowering rejects it
                    step.reads.extend(expr_names(value))
                    if name in DYNAMIC_OPTIONS.get(kind, {}) and not isinstance(value, ast.Unary):
                        want = "number" if okind == "int" else "duration"
                        step.typed_options.append((name, value, want))
                elif okind == "expr":
                    if name in _TYPED_EXPRS:
                        step.typed_options.append((name, value, _TYPED_EXPRS[name]))
                    step.reads.extend(expr_names(value))
                    step.exprs.append(value)
                    if name == "body":
                        step.templates.extend(sent_templates(value))
                    if name == "headers" and isinstance(value, ast.MapLit):
                        step.templates.extend(
                            (str(v.value), v.span) for _, v in value.entries if _is_string(v)
                        )
                        step.http_parts.extend(
                            (f"header:{k}", str(v.value), v.span)
                            for k, v in value.entries
                            if _is_string(v)
                        )

    def action(self, step: MStep, a: ast.Action) -> None:
        """An agent action: its templates and expressions read flow names, except its own
        parameters; its options are checked for repeats like a step's."""
        params = frozenset(arg.name for arg in a.args)
        step.tool_names.append(("action", a.name, a.name_span))
        step.tool_args.append((f"action '{a.name}'", [(arg.name, arg.span) for arg in a.args]))
        options: list[ast.Option] = []
        for req in a.requests:
            if isinstance(req.url.value, str):
                step.scoped_templates.append((req.url.value, req.url.span, params))
                step.http_parts.append(("url", req.url.value, req.url.span))
            options.extend(req.options)
        options.extend(a.options)
        seen: set[str] = set()
        for opt in options:
            if opt.name in seen:
                step.repeated.append((opt.name, opt.name_span))
            seen.add(opt.name)
            if opt.name not in ("body", "headers"):
                continue
            for value in opt.values:
                if opt.name == "headers" and isinstance(value, ast.MapLit):
                    for key, v in value.entries:
                        if _is_string(v):
                            step.scoped_templates.append((str(v.value), v.span, params))
                            step.http_parts.append((f"header:{key}", str(v.value), v.span))
                    continue
                step.reads.extend((n, sp) for n, sp in expr_names(value) if n not in params)
                step.scoped_templates.extend((t, sp, params) for t, sp in sent_templates(value))
                if not params & {n for n, _ in expr_names(value)}:
                    step.exprs.append(value)  # type-checked only without parameters

    def step(self, s: Any) -> MStep:
        """The checker's model of one AST step."""
        f = self.file
        if isinstance(s, ast.SimpleStep):
            return self.simple(s)
        if isinstance(s, ast.SetStep):
            return MStep(
                "set", s.span, f, assigns=[s.var], reads=list(expr_names(s.value)), exprs=[s.value]
            )
        if isinstance(s, ast.IfStep):
            return self._if(s)
        if isinstance(s, ast.MatchStep):
            return self._match(s)
        if isinstance(s, ast.RecordStart | ast.RecordStop):
            return self._record(s)
        if isinstance(s, ast.HttpStep):
            return self._http(s)
        if isinstance(s, ast.CallStep):
            return self._call(s)
        if isinstance(s, ast.MetaStep):
            return MStep("meta", s.span, f, reads=list(expr_names(s.value)), exprs=[s.value])
        if isinstance(s, ast.GotoStep):
            return MStep("goto", s.span, f, target=s.target, target_span=s.target_span)
        if isinstance(s, ast.RetryStep):
            return MStep("retry", s.span, f)
        if isinstance(s, ast.ContinueStep):
            return MStep("continue", s.span, f)
        if isinstance(s, ast.ReturnStep):
            step = MStep("return", s.span, f)
            for v in s.values:
                step.reads.extend(expr_names(v.value))
                step.exprs.append(v.value)
            return step
        return MStep(type(s).__name__.lower(), getattr(s, "span", Span(1, 1, 1, 2)), f)

    def _if(self, s: ast.IfStep) -> MStep:
        """``if``: one block a branch (and the else), exhaustive with an else."""
        blocks = [self.steps(b.steps) for b in s.branches]
        if s.else_steps is not None:
            blocks.append(self.steps(s.else_steps))
        return MStep(
            "if",
            s.span,
            self.file,
            blocks=blocks,
            exhaustive=s.else_steps is not None,
            reads=[r for b in s.branches for r in expr_names(b.cond)],
            exprs=[b.cond for b in s.branches],
        )

    def _match(self, s: ast.MatchStep) -> MStep:
        """``match``: one block a case (and the default), exhaustive with a default."""
        blocks = [self.tail(c.tail) for c in s.cases]
        if s.default is not None:
            blocks.append(self.tail(s.default))
        return MStep(
            "switch",
            s.span,
            self.file,
            blocks=blocks,
            exhaustive=s.default is not None,
            reads=list(expr_names(s.subject)),
            # each case value is typed as 'subject == value' (VF303: case 1 never matches "1")
            exprs=[s.subject]
            + [ast.Binary(v.span, "==", s.subject, v) for c in s.cases for v in c.values],
        )

    def _record(self, s: ast.RecordStart | ast.RecordStop) -> MStep:
        """``record start``/``record stop``: the name's template (and the start's options)."""
        if isinstance(s, ast.RecordStop):
            step = MStep("record_stop", s.span, self.file)
            if s.name is not None and isinstance(s.name.value, str):
                step.templates.append((s.name.value, s.name.span))
            return step
        step = MStep("record_start", s.span, self.file)
        if isinstance(s.name.value, str):
            step.templates.append((s.name.value, s.name.span))
        self._options(step, s.options, "record_start")
        return step

    def _http(self, s: ast.HttpStep) -> MStep:
        """An http step: its URL template, options and outcomes."""
        step = self._input("http", s.span, s.handlers)
        if isinstance(s.url.value, str):
            step.templates.append((s.url.value, s.url.span))
            step.http_parts.append(("url", s.url.value, s.url.span))
        self._options(step, s.options, "http")
        # 'into' and 'status' are set on every outcome (null without a response), so an
        # 'on error' can tell a 401 from a 503
        stored = step.outcome_assigns.pop("*", [])
        for outcome in step.outcomes:
            step.outcome_assigns.setdefault(outcome, []).extend(stored)
        return step

    def _call(self, s: ast.CallStep) -> MStep:
        """A subflow call: its arguments read, its returns assigned on success."""
        step = self._input("call", s.span, s.handlers)
        step.subflow, step.subflow_span = s.subflow, s.subflow_span
        step.args = [(a.name, a.span) for a in s.args]
        step.returns = [(b.name, b.span) for b in s.returns]
        step.bound = [(b.var, b.span) for b in s.returns]
        for a in s.args:
            step.reads.extend(expr_names(a.value))
            step.exprs.append(a.value)
            step.templates.extend(sent_templates(a.value))
        self._options(step, s.options, "call")
        step.outcome_assigns.setdefault("*", []).extend(b.var for b in s.returns)
        self._store_on_success(step)
        return step

    def _input(self, op: str, span: Span, handlers: Iterable[ast.Handler]) -> MStep:
        step = MStep(
            op,
            span,
            self.file,
            outcomes=FLOW_OUTCOMES.get(op, ()),
            success=SUCCESS_OUTCOMES.get(op, ()),
        )
        for h in handlers:
            step.handlers.extend(self.handler(h))
        return step

    def _store_on_success(self, step: MStep) -> None:
        stored = step.outcome_assigns.pop("*", [])
        for outcome in [*step.success, *(o for o in step.outcomes if ":" in o)]:
            step.outcome_assigns.setdefault(outcome, []).extend(stored)

    def simple(self, s: ast.SimpleStep) -> MStep:
        kind = s.kind
        if kind in FLOW_OUTCOMES:
            step = self._input(kind, s.span, s.handlers)
        else:
            step = MStep(kind, s.span, self.file)
            for h in s.handlers:  # no outcomes to handle: VF109
                step.handlers.extend(self.handler(h))
        if s.text is not None and isinstance(s.text.value, str):
            step.templates.append((s.text.value, s.text.span))
        for more in s.more_texts:
            if isinstance(more.value, str):
                step.templates.append((more.value, more.span))
        self._options(step, s.options, kind)
        extra: list[str] = []
        for i, choice in enumerate(s.choices, start=1):
            outcome = f"choice:{i}"
            extra.append(outcome)
            step.handlers.append(MHandler(outcome, self.tail(choice.tail), choice.span, self.file))
            for p in choice.patterns:
                if p.kind == "key":
                    step.choice_keys.append((p.text, p.span))
                elif p.kind == "regex":
                    step.patterns.append((p.text, p.span))
                else:
                    step.phrases.append((p.text, p.span))
        for tool in s.tools:
            outcome = f"tool:{tool.name}"
            extra.append(outcome)
            step.handlers.append(MHandler(outcome, self.tail(tool.tail), tool.span, self.file))
            step.outcome_assigns[outcome] = [a.var for a in tool.args]
            step.tool_names.append(("tool", tool.name, tool.span))
            step.tool_args.append((f"tool '{tool.name}'", [(a.name, a.span) for a in tool.args]))
        for action in s.actions:
            self.action(step, action)
        if extra and kind in FLOW_OUTCOMES:
            choices = [str(i) for i in range(1, len(s.choices) + 1)]
            step.outcomes = tuple(step_outcomes(kind, choices, [t.name for t in s.tools]))
            step.success = tuple(o for o in step.outcomes if o in SUCCESS)
        self._store_on_success(step)
        return step

    # -------------------------------------------------------------- declarations
    def var(self, v: ast.VarDecl | ast.Param) -> MVar:
        vtype = v.type or (v.default.type if isinstance(v.default, ast.Literal_) else "any")
        return MVar(v.name, v.span, self.file, v.default is not None, vtype or "any")

    def state(self, s: ast.State, scope: str | None) -> MState:
        return MState(s.name, self.steps(s.steps), s.name_span, self.file, scope=scope)

    def scope_into(self, sc: ast.Scope, parent: str | None, sub: MSubflow) -> None:
        handlers = [h for x in sc.handlers for h in self.handler(x)]
        handlers.extend(self.anytimes(sc.anytimes))
        sub.scopes.append(MScope(sc.name, handlers, sc.span, self.file, parent))
        for st in sc.states:
            sub.states.append(self.state(st, sc.name))
        for inner in sc.scopes:
            self.scope_into(inner, sc.name, sub)

    def anytimes(self, items: Iterable[ast.Anytime]) -> list[MHandler]:
        return [MHandler(COMMAND_EVENT, self.tail(a.tail), a.span, self.file) for a in items]


def _first_state(sub: MSubflow) -> str | None:
    if not sub.states:
        return None
    return min(sub.states, key=lambda s: (s.file != sub.file, s.span.line, s.span.col)).name


def build_model(program: ast.Program) -> MFlow:
    """The checker model of a parsed program (root module plus included modules)."""
    root = program.root
    header = root.header
    name = header.name if header else "flow"
    span = header.name_span if header else Span(1, 1, 1, 2)
    body = MSubflow(name, span, root.path)
    flow = MFlow(name, span, root.path, body)
    for module in program.modules or [root]:
        ad = _Adapter(module.path)
        body.variables.extend(ad.var(v) for v in module.vars)
        body.handlers.extend(h for x in module.handlers for h in ad.handler(x))
        body.handlers.extend(ad.anytimes(module.anytimes))
        for st in module.states:
            body.states.append(ad.state(st, None))
        for sc in module.scopes:
            ad.scope_into(sc, None, body)
        for sf in module.subflows:
            flow.subflows.append(_subflow(ad, sf))
    body.initial = _first_state(body)
    flow.has_header = header is not None
    flow.extra_headers = [h.name_span for h in root.extra_headers]
    if header is not None:
        seen: set[str] = set()
        for opt in header.options:
            if opt.name in seen:
                flow.repeated.append((opt.name, opt.name_span))
            seen.add(opt.name)
            for value in opt.values or (None,):
                vspan = value.span if value is not None else opt.span
                if isinstance(value, ast.Literal_) and value.type == "duration":
                    flow.config.append(MValue(opt.name, value.value, opt.name_span, "ms"))
                else:
                    raw = value.value if isinstance(value, ast.Literal_) else None
                    flow.config.append(
                        MValue(opt.name, raw, opt.name_span if raw is None else vspan)
                    )
    return flow


def _subflow(ad: _Adapter, sf: ast.Subflow) -> MSubflow:
    sub = MSubflow(sf.name, sf.span, ad.file)
    sub.params = [ad.var(p) for p in sf.params]
    sub.returns = [ad.var(p) for p in sf.returns]
    sub.variables = [ad.var(v) for v in sf.vars]
    sub.handlers = [h for x in sf.handlers for h in ad.handler(x)]
    sub.handlers.extend(ad.anytimes(sf.anytimes))
    sub.states = [ad.state(s, None) for s in sf.states]
    for sc in sf.scopes:
        ad.scope_into(sc, None, sub)
    sub.initial = _first_state(sub)
    return sub


_TYPED_EXPRS = {"choices": "list", "carry": "map"}
_VALUE_KINDS = frozenset({"int", "duration", "string", "bool"})


def _is_string(value: Any) -> TypeGuard[ast.Literal_]:
    return isinstance(value, ast.Literal_) and value.type == "string"
