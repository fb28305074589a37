"""Static types of expressions (VF303 type errors, VF304 unknown functions).

Expression nodes are read structurally: a ``kind`` (``literal``, ``var``, ``unary``, ``binary``,
``call``, ``list``, ``map``, ``index``, ``attr``) and the fields of :mod:`voxflow.ir.models`'
expression classes, plus an optional ``span``. Types are the IR's value types; ``any`` is
compatible with everything, so an unknown type never produces a false error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from voxflow.check.dataflow import suggest_hint
from voxflow.source import Span
from voxflow.spec.functions import hours_problem

__all__ = ["FunctionType", "TypeIssue", "infer"]

ANY = "any"
_NUMERIC = {"number", "duration"}


@dataclass(frozen=True, slots=True)
class FunctionType:
    """A whitelisted function's parameter types and result type."""

    params: tuple[str, ...]
    result: str
    variadic: bool = False
    min_args: int | None = None


@dataclass(frozen=True, slots=True)
class TypeIssue:
    """A problem found while typing an expression."""

    code: str  # VF303 or VF304
    message: str
    span: Span | None
    hint: str | None = None


@dataclass
class _Ctx:
    var_type: Callable[[str], str]
    functions: Mapping[str, FunctionType]
    issues: list[TypeIssue] = field(default_factory=list)
    fallback: Span | None = None

    def span(self, node: Any) -> Span | None:
        return _span(node) or self.fallback


def _span(node: Any) -> Span | None:
    span = getattr(node, "span", None)
    if span is None:
        return None
    if isinstance(span, Span):
        return span
    try:
        return Span(int(span.line), int(span.col), int(span.end_line), int(span.end_col))
    except (AttributeError, TypeError, ValueError):
        return None


def _fits(actual: str, expected: str) -> bool:
    if ANY in (actual, expected) or actual == expected:
        return True
    return (actual in _NUMERIC and expected in _NUMERIC) or actual == "null"


def _article(t: str) -> str:
    return f"an {t}" if t[0] in "aeiou" else f"a {t}"


def infer(
    node: Any,
    var_type: Callable[[str], str],
    functions: Mapping[str, FunctionType],
    *,
    fallback: Span | None = None,
) -> tuple[str, list[TypeIssue]]:
    """The static type of ``node`` and the issues found inside it."""
    ctx = _Ctx(var_type, functions, fallback=fallback)
    result = _infer(node, ctx)
    return result, ctx.issues


_KINDS = {
    "Literal_": "literal",
    "Name": "var",
    "Unary": "unary",
    "Binary": "binary",
    "Call": "call",
    "ListLit": "list",
    "MapLit": "map",
    "Index": "index",
    "Slice": "slice",
    "Attr": "attr",
}


def _slice_type(node: Any, ctx: _Ctx) -> str:
    """``target[start:stop]``: a string or a list (the same type back), number bounds."""
    target = _infer(node.target, ctx)
    if target not in {"string", "list", ANY}:
        ctx.issues.append(
            TypeIssue(
                "VF303",
                f"cannot slice {_article(target)} (only a string or a list)",
                ctx.span(node),
            )
        )
        target = ANY
    for bound in (node.start, node.stop):
        if bound is not None and not _fits(t := _infer(bound, ctx), "number"):
            ctx.issues.append(
                TypeIssue(
                    "VF303", f"a slice bound must be a number, not {_article(t)}", ctx.span(bound)
                )
            )
    return str(target)


def _infer(node: Any, ctx: _Ctx) -> str:
    kind = getattr(node, "kind", None) or _KINDS.get(type(node).__name__)
    if kind == "literal":
        return str(getattr(node, "type", ANY) or ANY)
    if kind == "var":
        return ctx.var_type(str(node.name))
    if kind == "unary":
        t = _infer(node.operand, ctx)
        if node.op == "-" and not _fits(t, "number"):
            ctx.issues.append(TypeIssue("VF303", f"cannot negate {_article(t)}", ctx.span(node)))
            return ANY
        return "bool" if node.op == "not" else t
    if kind == "binary":
        return _binary(node, ctx)
    if kind == "call":
        return _call(node, ctx)
    if kind == "list":
        for item in getattr(node, "items", ()):
            _infer(item, ctx)
        return "list"
    if kind == "map":
        for entry in getattr(node, "entries", ()):
            value = entry[1] if isinstance(entry, tuple) else getattr(entry, "value", None)
            if value is not None:
                _infer(value, ctx)
        return "map"
    if kind == "index":
        target = _infer(node.target, ctx)
        index = _infer(node.index, ctx)
        if target in {"number", "bool", "duration"}:
            ctx.issues.append(
                TypeIssue("VF303", f"cannot index {_article(target)}", ctx.span(node))
            )
        elif target in {"list", "string"} and not _fits(index, "number"):
            ctx.issues.append(
                TypeIssue(
                    "VF303",
                    f"{_article(target)} index must be a number, not {_article(index)}",
                    ctx.span(node.index),
                )
            )
        return "string" if target == "string" else ANY
    if kind == "slice":
        return _slice_type(node, ctx)
    if kind == "attr":
        target = _infer(node.target, ctx)
        if target in {"number", "bool", "duration", "list", "string"}:
            ctx.issues.append(
                TypeIssue(
                    "VF303",
                    f"{_article(target)} has no attribute '{node.name}'",
                    ctx.span(node),
                )
            )
        return ANY
    return ANY


def _binary(node: Any, ctx: _Ctx) -> str:
    op = str(node.op)
    left = _infer(node.left, ctx)
    right = _infer(node.right, ctx)
    if op in {"and", "or"}:
        return "bool" if left == right == "bool" else ANY
    if op in {"==", "!="}:
        if {left, right} == {"string", "number"}:  # "1" == 1 is false: keys are text
            always = "false" if op == "==" else "true"
            ctx.issues.append(
                TypeIssue(
                    "VF303",
                    f"a string is never equal to a number ('{op}' is always {always})",
                    ctx.span(node),
                    'compare text with text ("1"), or convert first: int(x) == 1',
                )
            )
        return "bool"
    if op in {"in", "not in"}:
        if right in {"number", "bool", "duration"}:
            ctx.issues.append(
                TypeIssue(
                    "VF303",
                    f"'in' needs a list, map or string, not {_article(right)}",
                    ctx.span(node.right),
                )
            )
        return "bool"
    if op in {"<", "<=", ">", ">="}:
        ok = (_fits(left, "number") and _fits(right, "number")) or (
            _fits(left, "string") and _fits(right, "string")
        )
        if not ok:
            ctx.issues.append(
                TypeIssue(
                    "VF303",
                    f"cannot compare {_article(left)} with {_article(right)} using '{op}'",
                    ctx.span(node),
                )
            )
        return "bool"
    if op == "+":
        if ANY in (left, right):
            return left if right == ANY and left != ANY else right if left == ANY else ANY
        if left in _NUMERIC and right in _NUMERIC:
            return "duration" if "duration" in (left, right) else "number"
        if left == right and left in {"string", "list"}:
            return left
        ctx.issues.append(
            TypeIssue(
                "VF303",
                f"cannot add {_article(left)} and {_article(right)}",
                ctx.span(node),
                "convert with str(...) to join text and numbers"
                if "string" in (left, right)
                else None,
            )
        )
        return ANY
    # - * / %
    for side, t in ((node.left, left), (node.right, right)):
        if not _fits(t, "number"):
            ctx.issues.append(
                TypeIssue("VF303", f"'{op}' needs numbers, not {_article(t)}", ctx.span(side))
            )
            return ANY
    return "duration" if "duration" in (left, right) and op in {"-", "*", "/"} else "number"


def _call(node: Any, ctx: _Ctx) -> str:
    name = str(node.func)
    args = list(getattr(node, "args", ()))
    types = [_infer(a, ctx) for a in args]
    sig = ctx.functions.get(name)
    if sig is None:
        ctx.issues.append(
            TypeIssue(
                "VF304",
                f"unknown function '{name}'",
                ctx.span(node),
                suggest_hint(name, ctx.functions)
                or "only whitelisted functions can be called (see docs/language.md)",
            )
        )
        return ANY
    lo = sig.min_args if sig.min_args is not None else len(sig.params)
    hi = None if sig.variadic else len(sig.params)
    if len(args) < lo or (hi is not None and len(args) > hi):
        want = f"{lo}" if hi == lo else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
        ctx.issues.append(
            TypeIssue(
                "VF303",
                f"{name}() takes {want} argument{'s' * (want != '1')}, got {len(args)}",
                ctx.span(node),
            )
        )
        return sig.result
    spec = getattr(args[0], "value", None) if name == "is_open" else None
    if isinstance(spec, str) and type(args[0]).__name__ in ("Literal_", "LiteralExpr"):
        problem = hours_problem(spec)
        if problem is not None:
            ctx.issues.append(
                TypeIssue("VF408", problem, ctx.span(args[0]), "write e.g. 'mon-fri 09:00-17:00'")
            )
    for i, (arg, t) in enumerate(zip(args, types, strict=True)):
        want_t = sig.params[min(i, len(sig.params) - 1)] if sig.params else ANY
        if not _fits(t, want_t):
            ctx.issues.append(
                TypeIssue(
                    "VF303",
                    f"argument {i + 1} of {name}() must be {_article(want_t)}, not {_article(t)}",
                    ctx.span(arg) or ctx.span(node),
                )
            )
    return sig.result
