"""Lark parse events -> AST nodes (:mod:`voxflow.syntax.ast`), each with its source span.

Used as the LALR parser's inline transformer, so no parse tree is ever built. It raises
:class:`TransformError` for values the grammar accepts but that are malformed (e.g. a bad
string escape); the parser turns it into a diagnostic.
"""

from __future__ import annotations

import ast as pyast
from typing import Any

from lark import Token, Transformer, Tree

from voxflow.source import Span
from voxflow.syntax import ast

__all__ = ["AstBuilder", "TransformError", "install_spans"]

_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


class TransformError(Exception):
    """A value the grammar accepted but that is malformed."""

    def __init__(self, message: str, span: Span, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint


def _tspan(tok: Token) -> Span:
    line = tok.line or 1
    col = tok.column or 1
    return Span(line, col, tok.end_line or line, tok.end_column or col + 1)


def unquote(tok: Token) -> str:
    """The value of a STRING token (Python-style escapes)."""
    raw = str(tok)
    body = raw[1:-1]
    if "\\" not in body:
        return body
    try:
        value = pyast.literal_eval(raw)
    except (ValueError, SyntaxError) as exc:
        raise TransformError(f"bad escape in string: {exc}", _tspan(tok)) from None
    if not isinstance(value, str):  # pragma: no cover - literal_eval of a quoted string
        raise TransformError("bad string", _tspan(tok))
    return value


def duration_ms(text: str) -> int:
    """``"1.5s"`` -> 1500."""
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            return round(float(text[: -len(unit)]) * _UNITS[unit])
    raise ValueError(text)  # pragma: no cover - the grammar only accepts these units


def _first(x: Any) -> Span | None:
    span = getattr(x, "span", None)  # AST nodes first: the most common child
    if span is not None and isinstance(span, Span):
        return span
    if isinstance(x, Token):
        if x.type.startswith("_") or x.line is None:
            return None
        return _tspan(x)
    if isinstance(x, Tree):
        x = x.children
    if isinstance(x, tuple | list):
        for item in x:
            found = _first(item)
            if found is not None:
                return found
    return None


def _last(x: Any) -> Span | None:
    if isinstance(x, Tree):
        x = x.children
    if isinstance(x, tuple | list):
        for item in reversed(x):
            found = _last(item)
            if found is not None:
                return found
        return None
    return _first(x)


class _SpanCallback:
    """Wraps one reduce callback: computes the rule's span, stores it on the builder, calls."""

    __slots__ = ("builder", "inner")

    def __init__(self, inner: Any, builder: AstBuilder) -> None:
        self.inner = inner
        self.builder = builder

    def __call__(self, children: list[Any]) -> Any:
        start = None
        for item in children:
            start = _first(item)
            if start is not None:
                break
        if start is not None:
            end = start
            for item in reversed(children):
                found = _last(item)
                if found is not None:
                    end = found
                    break
            self.builder.span = Span(start.line, start.col, end.end_line, end.end_col)
        return self.inner(children)


def install_spans(callbacks: dict[Any, Any], builder: AstBuilder) -> None:
    """Wrap a Lark LALR parser's reduce callbacks (in place) so ``builder.span`` is right."""
    for rule, callback in list(callbacks.items()):
        callbacks[rule] = _SpanCallback(callback, builder)


def _tail_of(children: list[Any]) -> ast.Tail:
    tail = children[-1]
    assert isinstance(tail, ast.Arrow | ast.Body)
    return tail


class AstBuilder(Transformer[Token, Any]):
    """Builds AST nodes bottom-up; one method per grammar rule/alias.

    ``span`` is set by :func:`install_spans` to the span of the rule being reduced (from its
    unfiltered children, keywords included) right before each method is called.
    """

    span: Span = Span(1, 1, 1, 2)

    # ---- top level
    def start(self, children: list[Any]) -> list[Any]:
        return [c for c in children if c is not None]

    def include(self, c: list[Any]) -> ast.Include:
        return ast.Include(self.span, unquote(c[0]))

    def flow_header(self, c: list[Any]) -> ast.FlowHeader:
        name, title, *lines = c
        options = tuple(x for x in lines if isinstance(x, ast.Option))
        metas = tuple(x for x in lines if isinstance(x, ast.MetaStep))
        return ast.FlowHeader(
            self.span,
            str(name),
            _tspan(name),
            unquote(title) if title is not None else None,
            options,
            metas,
        )

    def meta_line(self, c: list[Any]) -> ast.MetaStep:
        return ast.MetaStep(self.span, str(c[0]), c[1], c[2] is not None)

    meta_step = meta_line

    def var_decl(self, c: list[Any]) -> ast.VarDecl:
        vtype = None if c[1] is None else str(c[1])
        return ast.VarDecl(self.span, str(c[0]), vtype, c[2], sensitive=c[3] is not None)

    def handler(self, c: list[Any]) -> ast.Handler:
        tail = _tail_of(c)
        count_tok = c[-2]
        names = [t for t in c[:-2] if isinstance(t, Token)]
        return ast.Handler(
            self.span,
            tuple(str(t) for t in names),
            tuple(_tspan(t) for t in names),
            None if count_tok is None else int(count_tok),
            tail,
        )

    def arrow(self, c: list[Any]) -> ast.Arrow:
        return ast.Arrow(self.span, str(c[0]), _tspan(c[0]))

    def body(self, c: list[Any]) -> ast.Body:
        return ast.Body(self.span, c[0])

    def block(self, c: list[Any]) -> tuple[ast.Step, ...]:
        return tuple(c)

    def anytime(self, c: list[Any]) -> ast.Anytime:
        return ast.Anytime(self.span, tuple(c[:-1]), _tail_of(c))

    def key_pattern(self, c: list[Any]) -> ast.Pattern:
        tok = c[0]
        text = unquote(tok) if tok.type == "STRING" else str(tok)
        return ast.Pattern(self.span, "key", text)

    def phrase_pattern(self, c: list[Any]) -> ast.Pattern:
        return ast.Pattern(self.span, "phrase", unquote(c[0]))

    def regex_pattern(self, c: list[Any]) -> ast.Pattern:
        raw = str(c[0])
        if raw.endswith("i"):
            return ast.Pattern(self.span, "regex", "(?i)" + raw[1:-2])
        return ast.Pattern(self.span, "regex", raw[1:-1])

    def state(self, c: list[Any]) -> ast.State:
        return ast.State(self.span, str(c[0]), _tspan(c[0]), c[1])

    def scope(self, c: list[Any]) -> ast.Scope:
        items = c[1:]
        return ast.Scope(
            self.span,
            str(c[0]),
            tuple(x for x in items if isinstance(x, ast.Handler)),
            tuple(x for x in items if isinstance(x, ast.Anytime)),
            tuple(x for x in items if isinstance(x, ast.State)),
            tuple(x for x in items if isinstance(x, ast.Scope)),
        )

    def subflow(self, c: list[Any]) -> ast.Subflow:
        name, params, returns, *items = c
        return ast.Subflow(
            self.span,
            str(name),
            params or (),
            returns or (),
            tuple(x for x in items if isinstance(x, ast.VarDecl)),
            tuple(x for x in items if isinstance(x, ast.Handler)),
            tuple(x for x in items if isinstance(x, ast.Anytime)),
            tuple(x for x in items if isinstance(x, ast.State)),
            tuple(x for x in items if isinstance(x, ast.Scope)),
        )

    def params(self, c: list[Any]) -> tuple[ast.Param, ...]:
        return tuple(c)

    def param(self, c: list[Any]) -> ast.Param:
        return ast.Param(self.span, str(c[0]), None if c[1] is None else str(c[1]), c[2])

    # ---- steps
    def step_kw(self, c: list[Any]) -> Token:
        tok: Token = c[0]
        return tok

    def simple_step(self, c: list[Any]) -> ast.SimpleStep:
        kw, text, *rest = c
        items: list[Any] = rest[-1]
        inline = [x for x in rest[:-1] if isinstance(x, ast.Option)]
        more = tuple(x for x in rest[:-1] if isinstance(x, ast.Literal_))
        return ast.SimpleStep(
            self.span,
            str(kw),
            self._string_literal(text) if text is not None else None,
            tuple(inline) + tuple(x for x in items if isinstance(x, ast.Option)),
            tuple(x for x in items if isinstance(x, ast.Choice)),
            tuple(x for x in items if isinstance(x, ast.Handler)),
            tuple(x for x in items if isinstance(x, ast.Tool)),
            tuple(x for x in items if isinstance(x, ast.Action)),
            more,
        )

    def extra_text(self, c: list[Any]) -> ast.Literal_:
        return self._string_literal(c[0])

    def step_tail(self, c: list[Any]) -> list[Any]:
        return c

    def option(self, c: list[Any]) -> ast.Option:
        return ast.Option(self.span, str(c[0]), tuple(c[1:]), _tspan(c[0]))

    def option_line(self, c: list[Any]) -> ast.Option:
        values = tuple(x for x in c[1:] if x is not None)
        return ast.Option(self.span, str(c[0]), values, _tspan(c[0]))

    def choice(self, c: list[Any]) -> ast.Choice:
        return ast.Choice(self.span, tuple(c[:-1]), _tail_of(c))

    def tool(self, c: list[Any]) -> ast.Tool:
        name, args, desc, tail = c
        return ast.Tool(
            self.span, str(name), args or (), unquote(desc) if desc is not None else "", tail
        )

    def tool_args(self, c: list[Any]) -> tuple[ast.ToolArg, ...]:
        return tuple(c)

    def tool_arg(self, c: list[Any]) -> ast.ToolArg:
        name, typ, var, desc, *constraints = c
        return ast.ToolArg(
            self.span,
            str(name),
            str(typ),
            str(var) if var is not None else str(name),
            unquote(desc) if desc is not None else "",
            tuple(constraints),
        )

    def arg_constraint(self, c: list[Any]) -> ast.Option:
        return ast.Option(self.span, str(c[0]), (c[1],), _tspan(c[0]))

    def action(self, c: list[Any]) -> ast.Action:
        name, args, desc, *items = c
        return ast.Action(
            self.span,
            str(name),
            _tspan(name),
            args or (),
            unquote(desc) if desc is not None else "",
            tuple(x for x in items if isinstance(x, ast.ActionHttp)),
            tuple(x for x in items if isinstance(x, ast.Option)),
        )

    def action_http(self, c: list[Any]) -> ast.ActionHttp:
        method, url, *options = c
        return ast.ActionHttp(
            self.span,
            str(method),
            _tspan(method),
            self._string_literal(url),
            tuple(x for x in options if isinstance(x, ast.Option)),
        )

    def set_step(self, c: list[Any]) -> ast.SetStep:
        return ast.SetStep(self.span, str(c[0]), _tspan(c[0]), c[1])

    def pause_step(self, c: list[Any]) -> ast.PauseStep:
        return ast.PauseStep(self.span, c[0])

    def if_step(self, c: list[Any]) -> ast.IfStep:
        cond, steps, *rest = c
        first = ast.Branch(self.span, cond, steps)
        branches = [first, *(x for x in rest if isinstance(x, ast.Branch))]
        else_steps = rest[-1] if rest and isinstance(rest[-1], tuple) else None
        return ast.IfStep(self.span, tuple(branches), else_steps)

    def elif_clause(self, c: list[Any]) -> ast.Branch:
        return ast.Branch(self.span, c[0], c[1])

    def else_clause(self, c: list[Any]) -> tuple[ast.Step, ...]:
        steps: tuple[ast.Step, ...] = c[0]
        return steps

    def match_step(self, c: list[Any]) -> ast.MatchStep:
        subject, *rest = c
        cases = tuple(x for x in rest if isinstance(x, ast.Case))
        default = rest[-1] if rest and isinstance(rest[-1], ast.Arrow | ast.Body) else None
        return ast.MatchStep(self.span, subject, cases, default)

    def case_clause(self, c: list[Any]) -> ast.Case:
        return ast.Case(self.span, tuple(c[:-1]), _tail_of(c))

    def default_clause(self, c: list[Any]) -> ast.Tail:
        return _tail_of(c)

    def record_start(self, c: list[Any]) -> ast.RecordStart:
        return ast.RecordStart(self.span, self._string_literal(c[0]), tuple(c[1:]))

    def record_stop(self, c: list[Any]) -> ast.RecordStop:
        return ast.RecordStop(self.span, None if c[0] is None else self._string_literal(c[0]))

    def http_step(self, c: list[Any]) -> ast.HttpStep:
        method, url, *rest = c
        items: list[Any] = rest[-1]
        inline = [x for x in rest[:-1] if isinstance(x, ast.Option)]
        return ast.HttpStep(
            self.span,
            str(method),
            _tspan(method),
            self._string_literal(url),
            tuple(inline) + tuple(x for x in items if isinstance(x, ast.Option)),
            tuple(x for x in items if isinstance(x, ast.Handler)),
        )

    def call_step(self, c: list[Any]) -> ast.CallStep:
        name, args, rets, items = c
        return ast.CallStep(
            self.span,
            str(name),
            _tspan(name),
            args or (),
            rets or (),
            tuple(x for x in items if isinstance(x, ast.Option)),
            tuple(x for x in items if isinstance(x, ast.Handler)),
        )

    def call_args(self, c: list[Any]) -> tuple[ast.CallArg, ...]:
        return tuple(c)

    def call_arg(self, c: list[Any]) -> ast.CallArg:
        return ast.CallArg(self.span, str(c[0]), c[1])

    def ret_binds(self, c: list[Any]) -> tuple[ast.RetBind, ...]:
        return tuple(c)

    def ret_bind(self, c: list[Any]) -> ast.RetBind:
        return ast.RetBind(self.span, str(c[0]), str(c[1]) if c[1] is not None else str(c[0]))

    def goto_step(self, c: list[Any]) -> ast.GotoStep:
        return ast.GotoStep(self.span, str(c[0]), _tspan(c[0]))

    def retry_step(self, c: list[Any]) -> ast.RetryStep:
        return ast.RetryStep(self.span)

    def continue_step(self, c: list[Any]) -> ast.ContinueStep:
        return ast.ContinueStep(self.span)

    def return_step(self, c: list[Any]) -> ast.ReturnStep:
        return ast.ReturnStep(self.span, c[0] or ())

    # ---- expressions
    def _string_literal(self, tok: Token) -> ast.Literal_:
        return ast.Literal_(_tspan(tok), "string", unquote(tok), str(tok))

    def or_(self, c: list[Any]) -> ast.Binary:
        return ast.Binary(self.span, "or", c[0], c[1])

    def and_(self, c: list[Any]) -> ast.Binary:
        return ast.Binary(self.span, "and", c[0], c[1])

    def not_(self, c: list[Any]) -> ast.Unary:
        return ast.Unary(self.span, "not", c[0])

    def compare(self, c: list[Any]) -> ast.Binary:
        return ast.Binary(self.span, str(c[1]), c[0], c[2])

    binop = compare

    def contains(self, c: list[Any]) -> ast.Binary:
        return ast.Binary(self.span, "in", c[0], c[1])

    def not_contains(self, c: list[Any]) -> ast.Unary:
        inner = ast.Binary(self.span, "in", c[0], c[1])
        return ast.Unary(self.span, "not", inner)

    def neg(self, c: list[Any]) -> ast.Unary:
        return ast.Unary(self.span, "-", c[0])

    def attr(self, c: list[Any]) -> ast.Attr:
        return ast.Attr(self.span, c[0], str(c[1]))

    def index(self, c: list[Any]) -> ast.Index:
        return ast.Index(self.span, c[0], c[1])

    def slice(self, c: list[Any]) -> ast.Slice:
        return ast.Slice(self.span, c[0], c[1], c[2])

    def number(self, c: list[Any]) -> ast.Literal_:
        text = str(c[0])
        value: int | float = float(text) if "." in text else int(text)
        return ast.Literal_(self.span, "number", value, text)

    def duration(self, c: list[Any]) -> ast.Literal_:
        text = str(c[0])
        return ast.Literal_(self.span, "duration", duration_ms(text), text)

    def string(self, c: list[Any]) -> ast.Literal_:
        return ast.Literal_(self.span, "string", unquote(c[0]), str(c[0]))

    def true(self, c: list[Any]) -> ast.Literal_:
        return ast.Literal_(self.span, "bool", True, "true")

    def false(self, c: list[Any]) -> ast.Literal_:
        return ast.Literal_(self.span, "bool", False, "false")

    def null(self, c: list[Any]) -> ast.Literal_:
        return ast.Literal_(self.span, "null", None, "null")

    def name(self, c: list[Any]) -> ast.Name:
        return ast.Name(self.span, str(c[0]))

    def func_call(self, c: list[Any]) -> ast.Call:
        args = tuple(x for x in c[1:] if x is not None)
        return ast.Call(self.span, str(c[0]), args, _tspan(c[0]))

    def list_lit(self, c: list[Any]) -> ast.ListLit:
        return ast.ListLit(self.span, tuple(x for x in c if x is not None))

    def map_lit(self, c: list[Any]) -> ast.MapLit:
        return ast.MapLit(self.span, tuple(x for x in c if x is not None))

    def map_entry(self, c: list[Any]) -> tuple[str, ast.Expr]:
        key = c[0]
        return (unquote(key) if key.type == "STRING" else str(key)), c[1]
