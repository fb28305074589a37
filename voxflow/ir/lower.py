"""Lowering: a parsed :class:`~voxflow.syntax.ast.Program` -> the IR :class:`~voxflow.ir.Flow`.

Gives option values their meaning per step (reporting unknown or malformed options), applies
the flow's config defaults, resolves every input step's outcomes through the scope chain
(step, enclosing scopes innermost first, flow), and appends the implied transition to every
handler body. It collects diagnostics and never raises for a bad flow.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from voxflow.diagnostics import Diagnostic, Severity
from voxflow.ir import models as ir
from voxflow.ir.lower_steps import lower_http, lower_simple
from voxflow.ir.options import BAD, Opts, split_patterns
from voxflow.source import Span
from voxflow.spec.dtmf import number_problem
from voxflow.spec.functions import timezone_problem
from voxflow.spec.options import (
    HEADER_OPTIONS,
    REPEATABLE,
    STEP_OPTIONS,
    TYPES,
    did_you_mean,
    template_names,
)
from voxflow.spec.semantics import (
    implied_transition,
    iter_handlers,
    resolve_outcome,
    select_handlers,
    tail_ends_in_transition,
)
from voxflow.syntax import ast

__all__ = ["Lowerer", "lower_program"]


@dataclass
class _Level:
    """One scope level: its handlers and anytime commands, with the file they belong to."""

    origin: str
    handlers: list[tuple[ast.Handler, str]] = field(default_factory=list)
    anytimes: list[tuple[ast.Anytime, str]] = field(default_factory=list)


class Lowerer:
    def __init__(self, program: ast.Program) -> None:
        self.program = program
        self.diags: list[Diagnostic] = []
        self.file = program.root.path
        self.config = ir.Config()
        self.chain: list[_Level] = []
        self.state_errors: tuple[ir.Handler, ...] = ()
        self.error_items: list[tuple[ast.Handler, str, str]] = []
        self._cache: dict[tuple[int, str, str], ir.Handler] = {}
        self._commands: dict[tuple[int, str], ir.Command] = {}

    # ---------------------------------------------------------- diagnostics and spans
    def error(self, code: str, span: Span, message: str, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(Severity.ERROR, code, span, message, hint, self.file))

    def sp(self, span: Span) -> ir.Span:
        return ir.Span(
            file=self.file,
            line=span.line,
            col=span.col,
            end_line=span.end_line,
            end_col=span.end_col,
        )

    # ---------------------------------------------------------- values
    def template(self, lit: ast.Literal_ | None) -> ir.Template | None:
        if lit is None:
            return None
        source = str(lit.value)
        names, _problem = template_names(source)  # bad templates are the checker's VF307
        return ir.Template(source=source, names=names)

    def expr(self, e: ast.Expr) -> ir.Expr:
        if isinstance(e, ast.Literal_):
            return ir.LiteralExpr(type=e.type, value=e.value)
        if isinstance(e, ast.Name):
            return ir.VarExpr(name=e.name)
        if isinstance(e, ast.Unary):
            return ir.UnaryExpr(op=e.op, operand=self.expr(e.operand))
        if isinstance(e, ast.Binary):
            left, right = self.expr(e.left), self.expr(e.right)
            return ir.BinaryExpr(op=e.op, left=left, right=right)
        if isinstance(e, ast.Call):  # unknown functions are the checker's VF304
            return ir.CallExpr(func=e.func, args=tuple(self.expr(a) for a in e.args))
        if isinstance(e, ast.ListLit):
            return ir.ListExpr(items=tuple(self.expr(a) for a in e.items))
        if isinstance(e, ast.MapLit):
            return ir.MapExpr(entries=tuple((k, self.expr(v)) for k, v in e.entries))
        if isinstance(e, ast.Index):
            return ir.IndexExpr(target=self.expr(e.target), index=self.expr(e.index))
        if isinstance(e, ast.Slice):
            start = None if e.start is None else self.expr(e.start)
            stop = None if e.stop is None else self.expr(e.stop)
            return ir.SliceExpr(target=self.expr(e.target), start=start, stop=stop)
        return ir.AttrExpr(target=self.expr(e.target), name=e.name)

    def options(self, kind: str, options: Sequence[ast.Option], spec: dict[str, str]) -> Opts:
        opts = Opts(self, kind)
        for opt in options:
            if opt.name not in spec:
                where = "the flow header" if kind == "flow" else f"'{kind}'"
                hint = did_you_mean(opt.name, spec)
                if hint is None and spec:
                    hint = "known options: " + ", ".join(sorted(spec))
                self.error("VF107", opt.name_span, f"unknown option '{opt.name}' in {where}", hint)
                continue
            if opt.name in opts.values and opt.name not in REPEATABLE:
                continue  # the checker reports the repeated option (VF104)
            value = opts.read(opt, spec[opt.name])
            if value is BAD:
                continue
            if opt.name in REPEATABLE:
                opts.values.setdefault(opt.name, []).append(value)
            else:
                opts.values[opt.name] = value
        return opts

    # ---------------------------------------------------------- config
    def lower_config(self) -> tuple[ir.Config, dict[str, Any], list[str], list[str], str, str]:
        header = self.program.root.header
        metadata: dict[str, Any] = {}
        webhook: list[str] = []
        answers: list[str] = []
        direction = "any"
        title: str | None = None
        for module in self.program.modules[1:]:
            if module.header is not None:
                self.file = module.path
                self.error(
                    "VF408",
                    module.header.span,
                    "an included file cannot have a 'flow' header",
                    "move the header to the main file",
                )
        self.file = self.program.root.path
        if header is None:
            return self.config, metadata, webhook, answers, direction, ""
        o = self.options("flow", header.options, HEADER_OPTIONS)
        b = ir.BargeIn(
            mode=o.get("bargein", "any"),
            min_words=o.get("bargein_min_words", 1),
            min_ms=o.get("bargein_min_ms", 0),
        )
        self.config = ir.Config(
            language=o.get("language", "en-US"),
            voice=o.get("voice", None),
            timeout_ms=o.get("timeout", 5000),
            interdigit_ms=o.get("interdigit", o.get("interdigit_timeout", 3000)),
            max_attempts=o.get("retries", o.get("attempts", o.get("max_attempts", 3))),
            bargein=b,
            timezone=o.get("timezone", "UTC"),
            http_timeout_ms=o.get("http_timeout", 10000),
            dial_timeout_ms=o.get("dial_timeout", 30000),
            min_confidence=o.get("confidence", None),
        )
        tz = o.get("timezone", None)
        problem = timezone_problem(tz) if isinstance(tz, str) else None
        if problem is not None:
            self.error("VF408", o.spans.get("timezone", header.span), *problem)
        answers = list(o.get("answers", []))
        for number in answers:
            bad = number_problem(number)
            if bad is not None:
                where = o.spans.get("answers", header.span)
                self.error("VF408", where, f"answers: {bad}", 'e.g. "_1XX" for 100-199')
        direction = o.get("direction", "any")
        title = header.title or o.get("title", None)
        for m in header.metas:
            if not isinstance(m.value, ast.Literal_):
                self.error("VF408", m.value.span, "route metadata must be a constant")
                continue
            metadata[m.key] = m.value.value
            if m.webhook:
                webhook.append(m.key)
        return self.config, metadata, webhook, answers, direction, title or ""

    # ---------------------------------------------------------- handlers
    def tail_steps(self, tail: ast.Tail) -> list[ir.Step]:
        if isinstance(tail, ast.Arrow):
            return [self.arrow(tail)]
        return self.steps(tail.steps)

    def arrow(self, a: ast.Arrow) -> ir.Step:
        s = self.sp(a.span)
        if a.target == "retry":
            return ir.RetryStep(span=s)
        if a.target == "continue":
            return ir.ContinueStep(span=s)
        if a.target == "hangup":
            return ir.HangupStep(span=s)
        if a.target == "return":
            return ir.ReturnStep(span=s)
        return ir.GotoStep(span=s, state=a.target)

    def handler(
        self, tail: ast.Tail, span: Span, implied: ir.Step, count: int = 1, origin: str = "step"
    ) -> ir.Handler:
        steps = self.tail_steps(tail)
        if not tail_ends_in_transition(tail):
            steps.append(implied)
        return ir.Handler(count=count, origin=origin, steps=tuple(steps), span=self.sp(span))

    def implied(self, outcome: str, span: Span) -> ir.Step:
        s = self.sp(span)
        op = implied_transition(outcome)
        if op == "retry":
            return ir.RetryStep(span=s)
        if op == "hangup":
            return ir.HangupStep(span=s, reason=outcome)
        return ir.ContinueStep(span=s)

    def resolve(
        self,
        step_handlers: Sequence[ast.Handler],
        outcomes: Sequence[str],
        explicit: dict[str, tuple[ir.Handler, ...]],
        span: Span,
    ) -> dict[str, tuple[ir.Handler, ...]]:
        """Every outcome -> its handlers (count desc, innermost first); see
        :func:`voxflow.spec.semantics.resolve_outcome`."""
        levels: list[tuple[str, list[tuple[ast.Handler, str]]]] = [
            ("step", [(h, self.file) for h in step_handlers])
        ]
        levels += [(lv.origin, lv.handlers) for lv in self.chain]
        keyed = _keyed(levels)
        errors = self.error_items
        result: dict[str, tuple[ir.Handler, ...]] = dict(explicit)
        for outcome in outcomes:
            if outcome in result:
                continue
            picked, how = resolve_outcome(keyed, outcome, errors)
            if how == "implied":
                implied = self.implied(outcome, span)
                found = [
                    ir.Handler(count=1, origin="default", steps=(implied,), span=self.sp(span))
                ]
            elif how == "error":
                found = list(self.state_errors)
            else:
                event = outcome if how == "handler" else "default"
                found = [self._lowered(h, file, origin, event) for h, file, origin in picked]
            found.sort(key=lambda h: -h.count)
            result[outcome] = tuple(found)
        return result

    def _collect(
        self, levels: list[tuple[str, list[tuple[ast.Handler, str]]]], event: str
    ) -> list[ir.Handler]:
        picked = select_handlers(_keyed(levels), event)
        return [self._lowered(h, file, origin, event) for h, file, origin in picked]

    def _lowered(self, h: Any, file: str, origin: str, event: str) -> ir.Handler:
        key = (id(h), event, origin)
        lowered = self._cache.get(key)
        if lowered is None:
            saved = self.file
            self.file = file
            lowered = self.handler(
                h.tail, h.span, self.implied(event, h.span), h.count or 1, origin
            )
            self._cache[key] = lowered
            self.file = saved
        return lowered

    def check_counts(self) -> None:
        """VF408 for a handler count below 1 (``on noinput 0``)."""
        for module in self.program.modules:
            self.file = module.path
            for h in iter_handlers(ast.Program(module, [module])):
                if h.count is not None and h.count < 1:
                    self.error("VF408", h.span, f"handler count must be at least 1, not {h.count}")
        self.file = self.program.root.path

    def commands(self) -> tuple[ir.Command, ...]:
        out: list[ir.Command] = []
        saved = self.file
        for lv in self.chain:
            for a, file in lv.anytimes:
                cached = self._commands.get((id(a), lv.origin))
                if cached is not None:
                    out.append(cached)
                    continue
                self.file = file
                keys, phrases, patterns = split_patterns(a.patterns)
                handler = self.handler(
                    a.tail, a.span, ir.RetryStep(span=self.sp(a.span)), origin=lv.origin
                )
                name = (phrases or keys or patterns or ("command",))[0]
                command = ir.Command(
                    name=name,
                    keys=keys,
                    phrases=phrases,
                    patterns=patterns,
                    handler=handler,
                    span=self.sp(a.span),
                )
                self._commands[(id(a), lv.origin)] = command
                out.append(command)
        self.file = saved
        return tuple(out)

    # ---------------------------------------------------------- steps
    def steps(self, steps: Iterable[ast.Step]) -> list[ir.Step]:
        return [self.step(s) for s in steps]

    def step(self, s: ast.Step) -> ir.Step:
        """One step in IR form (errors reported, a placeholder value kept)."""
        span = self.sp(s.span)
        if isinstance(s, ast.SimpleStep):
            return lower_simple(self, s)
        if isinstance(s, ast.HttpStep):
            return lower_http(self, s)
        if isinstance(s, ast.SetStep):
            return ir.SetStep(span=span, var=s.var, value=self.expr(s.value))
        if isinstance(s, ast.PauseStep):
            return self._pause(s, span)
        if isinstance(s, ast.IfStep):
            return self._if(s, span)
        if isinstance(s, ast.MatchStep):
            return self._match(s, span)
        if isinstance(s, ast.RecordStart):
            return self._record_start(s, span)
        if isinstance(s, ast.RecordStop):
            return ir.RecordStopStep(span=span, name=self.template(s.name))
        if isinstance(s, ast.CallStep):
            return self._call(s, span)
        if isinstance(s, ast.MetaStep):
            return ir.MetaStep(span=span, key=s.key, value=self.expr(s.value), webhook=s.webhook)
        if isinstance(s, ast.GotoStep):
            return ir.GotoStep(span=span, state=s.target)
        if isinstance(s, ast.RetryStep):
            return ir.RetryStep(span=span)
        if isinstance(s, ast.ContinueStep):
            return ir.ContinueStep(span=span)
        return ir.ReturnStep(
            span=span, values=tuple((v.name, self.expr(v.value)) for v in s.values)
        )

    def _pause(self, s: ast.PauseStep, span: ir.Span) -> ir.Step:
        """``pause 500ms`` (a duration literal, else VF404)."""
        d = s.duration
        if not (isinstance(d, ast.Literal_) and d.type == "duration"):
            self.error("VF404", d.span, "pause needs a duration", "write e.g. 'pause 500ms'")
            return ir.PauseStep(span=span, duration_ms=0)
        return ir.PauseStep(span=span, duration_ms=int(d.value or 0))

    def _if(self, s: ast.IfStep, span: ir.Span) -> ir.Step:
        """``if``/``elif`` branches and the ``else`` steps."""
        branches = tuple(
            ir.IfBranch(
                cond=self.expr(b.cond), steps=tuple(self.steps(b.steps)), span=self.sp(b.span)
            )
            for b in s.branches
        )
        return ir.IfStep(
            span=span, branches=branches, else_steps=tuple(self.steps(s.else_steps or ()))
        )

    def _match(self, s: ast.MatchStep, span: ir.Span) -> ir.Step:
        """``match`` as a switch over its cases and default."""
        cases = tuple(
            ir.SwitchCase(
                values=tuple(self.expr(v) for v in c.values),
                steps=tuple(self.tail_steps(c.tail)),
                span=self.sp(c.span),
            )
            for c in s.cases
        )
        default = tuple(self.tail_steps(s.default)) if s.default is not None else ()
        return ir.SwitchStep(
            span=span, subject=self.expr(s.subject), cases=cases, default_steps=default
        )

    def _record_start(self, s: ast.RecordStart, span: ir.Span) -> ir.Step:
        """``record start NAME`` with its options."""
        o = self.options("record_start", s.options, STEP_OPTIONS["record_start"])
        return ir.RecordStartStep(
            span=span,
            name=self.template(s.name) or ir.Template(source=""),
            format=o.get("format", "wav"),
            max_duration_ms=o.get("max", None),
            beep=o.get("beep", False),
        )

    def _call(self, s: ast.CallStep, span: ir.Span) -> ir.Step:
        """``call SUBFLOW(args) -> returns`` with its outcome handlers."""
        on = self.resolve(s.handlers, ir.OUTCOMES["call"], {}, s.span)
        return ir.CallStep(
            span=span,
            subflow=s.subflow,
            args=tuple((a.name, self.expr(a.value)) for a in s.args),
            returns=tuple((b.name, b.var) for b in s.returns),
            on=on,
        )

    # ---------------------------------------------------------- states and flows

    def state(self, st: ast.State, chain: list[_Level], file: str) -> ir.State:
        self.file = file
        self.chain = chain
        levels = [(lv.origin, lv.handlers) for lv in chain]
        self.state_errors = ()
        self.error_items = []
        errors = tuple(self._collect(levels, "error"))
        errors = tuple(sorted(errors, key=lambda h: -h.count))
        self.state_errors = errors
        self.error_items = select_handlers(_keyed(levels), "error")
        hangups = tuple(self._collect(levels, "hangup"))
        self.file = file
        commands = self.commands()
        steps = self.steps(st.steps)
        max_attempts = max((_attempts(x) for x in _walk(steps)), default=1)
        return ir.State(
            name=st.name,
            steps=tuple(steps),
            scopes=tuple(lv.origin.removeprefix("scope:") for lv in chain if lv.origin != "flow"),
            on_error=errors,
            on_hangup=hangups,
            commands=commands,
            max_attempts=max_attempts,
            span=self.sp(st.span),
        )

    def states_in(
        self,
        states: Iterable[ast.State],
        scopes: Iterable[ast.Scope],
        chain: list[_Level],
        file: str,
        out: dict[str, ir.State],
        order: list[tuple[str, Span, str]],
    ) -> None:
        for st in states:
            if st.name not in out:
                out[st.name] = self.state(st, chain, file)
                order.append((file, st.span, st.name))
        for sc in scopes:
            level = _Level(f"scope:{sc.name}")
            level.handlers = [(h, file) for h in sc.handlers]
            level.anytimes = [(a, file) for a in sc.anytimes]
            self.states_in(sc.states, sc.scopes, [level, *chain], file, out, order)

    def variables(self, decls: Iterable[ast.VarDecl | ast.Param]) -> list[ir.VarDecl]:
        out = []
        for v in decls:
            vtype = v.type or "any"
            if vtype not in TYPES:
                self.error(
                    "VF408",
                    v.span,
                    f"unknown type '{vtype}'",
                    did_you_mean(vtype, TYPES) or "types: " + ", ".join(TYPES),
                )
                vtype = "any"
            default = self.expr(v.default) if v.default is not None else None
            sensitive = isinstance(v, ast.VarDecl) and v.sensitive
            out.append(
                ir.VarDecl(
                    name=v.name,
                    type=vtype,
                    default=default,
                    sensitive=sensitive,
                    span=self.sp(v.span),
                )
            )
        return out

    def flow(self) -> ir.Flow:
        self.check_counts()
        config, metadata, webhook, answers, direction, title = self.lower_config()
        root = self.program.root
        flow_level = _Level("flow")
        variables: list[ir.VarDecl] = []
        for m in self.program.modules:
            self.file = m.path
            flow_level.handlers += [(h, m.path) for h in m.handlers]
            flow_level.anytimes += [(a, m.path) for a in m.anytimes]
            variables += self.variables(m.vars)
        states: dict[str, ir.State] = {}
        order: list[tuple[str, Span, str]] = []
        for m in self.program.modules:
            self.states_in(m.states, m.scopes, [flow_level], m.path, states, order)
        subflows: dict[str, ir.Subflow] = {}
        for m in self.program.modules:
            for sf in m.subflows:
                if sf.name not in subflows:
                    subflows[sf.name] = self.subflow(sf, m.path, flow_level)
        self.file = root.path
        initial = _initial(order, root.path)
        header = root.header
        name = header.name if header else os.path.splitext(os.path.basename(root.path))[0]
        span = header.span if header else Span(1, 1, 1, 2)
        if initial is None and header is not None:
            # A file without a header and without states is a library of subflows/handlers.
            self.error("VF408", span, "the flow has no states", "add 'state start:' with steps")
        return ir.Flow(
            name=name,
            title=title or None,
            file=root.path,
            answers=tuple(answers),
            direction=direction,
            config=config,
            metadata=metadata,
            webhook_keys=tuple(webhook),
            variables=tuple(variables),
            initial=initial or "",
            states=states,
            subflows=subflows,
            includes=tuple(m.path for m in self.program.modules[1:]),
            span=self.sp(span),
        )

    def subflow(self, sf: ast.Subflow, file: str, flow_level: _Level) -> ir.Subflow:
        self.file = file
        level = _Level(f"subflow:{sf.name}")
        level.handlers = [(h, file) for h in sf.handlers]
        level.anytimes = [(a, file) for a in sf.anytimes]
        params = [
            ir.Param(name=p.name, type=v.type, default=v.default, span=v.span)
            for p, v in zip(sf.params, self.variables(sf.params), strict=True)
        ]
        returns = [
            ir.Param(name=p.name, type=v.type, default=v.default, span=v.span)
            for p, v in zip(sf.returns, self.variables(sf.returns), strict=True)
        ]
        variables = self.variables(sf.vars)
        states: dict[str, ir.State] = {}
        order: list[tuple[str, Span, str]] = []
        self.states_in(sf.states, sf.scopes, [level, flow_level], file, states, order)
        self.file = file
        initial = _initial(order, file)
        if initial is None:
            self.error("VF408", sf.span, f"subflow '{sf.name}' has no states")
        return ir.Subflow(
            name=sf.name,
            params=tuple(params),
            returns=tuple(returns),
            variables=tuple(variables),
            initial=initial or "",
            states=states,
            span=self.sp(sf.span),
        )


def _walk(steps: Iterable[ir.Step]) -> Iterable[ir.Step]:
    for s in steps:
        yield s
        if isinstance(s, ir.IfStep):
            for b in s.branches:
                yield from _walk(b.steps)
            yield from _walk(s.else_steps)
        elif isinstance(s, ir.SwitchStep):
            for c in s.cases:
                yield from _walk(c.steps)
            yield from _walk(s.default_steps)


def _attempts(step: ir.Step) -> int:
    return int(getattr(step, "max_attempts", 1))


def _initial(order: list[tuple[str, Span, str]], root: str) -> str | None:
    mine = [(span.line, span.col, name) for file, span, name in order if file == root]
    if mine:
        return min(mine)[2]
    return order[0][2] if order else None


def _keyed(
    levels: list[tuple[str, list[tuple[ast.Handler, str]]]],
) -> list[list[tuple[tuple[str, ...], int, tuple[ast.Handler, str, str]]]]:
    return [[(h.events, h.count or 1, (h, f, origin)) for h, f in hs] for origin, hs in levels]


def lower_program(program: ast.Program) -> tuple[ir.Flow | None, list[Diagnostic]]:
    """Lower a parsed program. Returns None for the flow when lowering found errors."""
    lw = Lowerer(program)
    flow = lw.flow()
    if any(d.severity is Severity.ERROR for d in lw.diags):
        return None, lw.diags
    return flow, lw.diags
