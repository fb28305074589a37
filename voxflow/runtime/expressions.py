"""Evaluate IR expression trees (:data:`voxflow.ir.models.Expr`) to typed Python values.

Values are ``str``, ``int``/``float`` (numbers; ``bool`` is not a number), ``bool``, ``None``,
``list`` and ``dict``. Only the whitelisted functions of :data:`voxflow.ir.models.FUNCTIONS`
exist. Every failure (unset variable, wrong type, division by zero, bad regex) raises
:class:`ExpressionError`. Time functions read ``now`` from the caller: evaluation is pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, Final, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from voxflow.errors import ExpressionError
from voxflow.ir import models as ir
from voxflow.spec.functions import FUNCTIONS, parse_hours

__all__ = ["UNSET", "EvalContext", "call_function", "evaluate", "is_open", "truthy"]


class _Unset:
    """Marker for a declared variable that has no value yet."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset()


class EvalContext:
    """Names visible to an expression: ``lookup(name)`` plus the clock and timezone."""

    __slots__ = ("lookup", "now", "timezone")

    def __init__(
        self, lookup: Callable[[str], Any], *, now: float = 0.0, timezone: str = "UTC"
    ) -> None:
        self.lookup = lookup
        self.now = now
        self.timezone = timezone


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _tname(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if _is_num(v):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list | tuple):
        return "list"
    if isinstance(v, dict):
        return "map"
    return type(v).__name__


def truthy(v: Any) -> bool:
    """Truthiness used by ``if``/``and``/``or``/``not``: unset and null are false."""
    if v is UNSET or v is None:
        return False
    return bool(v)


def evaluate(expr: ir.Expr, ctx: EvalContext) -> Any:
    """Evaluate ``expr``; raises ExpressionError on any failure."""
    value = _eval(expr, ctx)
    if value is UNSET:
        name = expr.name if isinstance(expr, ir.VarExpr) else "value"
        raise ExpressionError(f"variable '{name}' is not set")
    return value


def _eval(e: ir.Expr, ctx: EvalContext) -> Any:
    kind = e.kind
    if kind == "literal":
        assert isinstance(e, ir.LiteralExpr)
        return e.value
    if kind == "var":
        assert isinstance(e, ir.VarExpr)
        return ctx.lookup(e.name)
    if kind == "binary":
        assert isinstance(e, ir.BinaryExpr)
        return _binary(e, ctx)
    if kind == "unary":
        assert isinstance(e, ir.UnaryExpr)
        v = evaluate(e.operand, ctx)
        if e.op == "not":
            return not truthy(v)
        if not _is_num(v):
            raise ExpressionError(f"cannot negate a {_tname(v)}")
        return -v
    if kind == "call":
        assert isinstance(e, ir.CallExpr)
        return _call(e, ctx)
    if kind == "list":
        assert isinstance(e, ir.ListExpr)
        return [evaluate(i, ctx) for i in e.items]
    if kind == "map":
        assert isinstance(e, ir.MapExpr)
        return {k: evaluate(v, ctx) for k, v in e.entries}
    if kind == "index":
        assert isinstance(e, ir.IndexExpr)
        target, index = evaluate(e.target, ctx), evaluate(e.index, ctx)
        return _index(target, index)
    if kind == "slice":
        assert isinstance(e, ir.SliceExpr)
        target = evaluate(e.target, ctx)
        start = None if e.start is None else evaluate(e.start, ctx)
        stop = None if e.stop is None else evaluate(e.stop, ctx)
        return _slice(target, start, stop)
    if kind == "attr":
        assert isinstance(e, ir.AttrExpr)
        target = evaluate(e.target, ctx)
        if isinstance(target, Mapping):
            if e.name not in target:
                keys = ", ".join(map(str, target))
                raise _MissingKey(f"no key '{e.name}' (keys: {keys})")
            return target[e.name]
        raise ExpressionError(f"cannot read '.{e.name}' of a {_tname(target)}")
    raise ExpressionError(f"unknown expression kind {kind!r}")  # pragma: no cover


class _MissingKey(ExpressionError):
    """A map has no such key (``default()`` and ``is_set()`` treat it as unset)."""


def _index(target: Any, index: Any) -> Any:
    if isinstance(target, Mapping):
        key = index if isinstance(index, str) else str(index)
        if key not in target:
            raise _MissingKey(f"no key {key!r}")
        return target[key]
    if isinstance(target, list | tuple | str):
        if not _is_num(index) or int(index) != index:
            raise ExpressionError(f"list index must be an integer, not {_tname(index)}")
        try:
            return target[int(index)]
        except IndexError:
            raise ExpressionError(f"index {index} out of range (length {len(target)})") from None
    raise ExpressionError(f"cannot index a {_tname(target)}")


def _bound(value: Any) -> int | None:
    if value is None:
        return None
    if not _is_num(value) or int(value) != value:
        raise ExpressionError(f"a slice bound must be an integer, not {_tname(value)}")
    return int(value)


def _slice(target: Any, start: Any, stop: Any) -> Any:
    """``target[start:stop]`` as Python (and templates) slice a string or a list."""
    if not isinstance(target, list | tuple | str):
        raise ExpressionError(f"cannot slice a {_tname(target)}")
    part = target[_bound(start) : _bound(stop)]
    return list(part) if isinstance(part, tuple) else part


def _binary(e: ir.BinaryExpr, ctx: EvalContext) -> Any:
    op = e.op
    if op == "and":
        return truthy(evaluate(e.left, ctx)) and truthy(evaluate(e.right, ctx))
    if op == "or":
        return truthy(evaluate(e.left, ctx)) or truthy(evaluate(e.right, ctx))
    a, b = evaluate(e.left, ctx), evaluate(e.right, ctx)
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if op == "in":
        if isinstance(b, str):
            if not isinstance(a, str):
                raise ExpressionError(f"'in' a string needs a string, not {_tname(a)}")
            return a in b
        if isinstance(b, list | tuple):
            return any(_equal(a, x) for x in b)
        if isinstance(b, Mapping):
            return a in b
        raise ExpressionError(f"'in' needs a string, list or map, not {_tname(b)}")
    if op in ("<", "<=", ">", ">="):
        if not ((_is_num(a) and _is_num(b)) or (isinstance(a, str) and isinstance(b, str))):
            raise ExpressionError(f"cannot compare {_tname(a)} {op} {_tname(b)}")
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
        if op == ">":
            return a > b
        return a >= b
    if op == "+":
        if isinstance(a, str) and isinstance(b, str):
            return a + b
        if isinstance(a, list) and isinstance(b, list):
            return a + b
    if not (_is_num(a) and _is_num(b)):
        raise ExpressionError(f"cannot apply '{op}' to {_tname(a)} and {_tname(b)}")
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        raise ExpressionError("division by zero")
    if op == "/":
        q = a / b
        return int(q) if isinstance(q, float) and q.is_integer() and isinstance(a, int) else q
    return a % b


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _num(v: Any, fname: str) -> float | int:
    if not _is_num(v):
        raise ExpressionError(f"{fname}() needs a number, not {_tname(v)}")
    return cast(float | int, v)  # _is_num checked it


def _str(v: Any, fname: str) -> str:
    if not isinstance(v, str):
        raise ExpressionError(f"{fname}() needs a string, not {_tname(v)}")
    return v


def _to_number(v: Any, fname: str, integer: bool) -> int | float:
    if _is_num(v):
        return int(v) if integer else v
    if isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            raise ExpressionError(f"{fname}({v!r}): not a number") from None
        if math.isnan(f) or math.isinf(f):
            raise ExpressionError(f"{fname}({v!r}): not a finite number")
        if integer:
            return int(f)
        return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f
    raise ExpressionError(f"{fname}() cannot convert a {_tname(v)}")


def _to_str(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ExpressionError(f"invalid regex {pattern!r}: {exc}") from None


def _local(ctx: EvalContext) -> datetime:
    try:
        tz = ZoneInfo(ctx.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ExpressionError(f"unknown timezone {ctx.timezone!r}") from None
    return datetime.fromtimestamp(ctx.now, tz)


def is_open(spec: str, when: datetime) -> bool:
    """True when ``when`` falls in ``spec``: comma-separated ``[day[-day]] HH:MM-HH:MM``."""
    try:
        hours = parse_hours(spec)
    except ValueError as exc:
        raise ExpressionError(f"is_open(): {exc}") from None
    wd = when.isoweekday()
    minute = when.hour * 60 + when.minute
    for lo, hi, start, end in hours:
        in_days = lo <= wd <= hi if lo <= hi else (wd >= lo or wd <= hi)
        if in_days and start <= minute < end:
            return True
    return False


def _call(e: ir.CallExpr, ctx: EvalContext) -> Any:
    f = e.func
    if f not in FUNCTIONS:
        raise ExpressionError(f"unknown function {f}()")
    if f in ("is_set", "default"):
        try:  # a missing map key counts as unset here: default(call.metadata.x, 0)
            first = _eval(e.args[0], ctx) if e.args else UNSET
        except _MissingKey:
            first = UNSET
        if f == "is_set":
            return first is not UNSET and first is not None
        if first is UNSET or first is None:
            return evaluate(e.args[1], ctx) if len(e.args) > 1 else None
        return first
    return call_function(f, [evaluate(a, ctx) for a in e.args], ctx)


def call_function(name: str, args: list[Any], ctx: EvalContext | None = None) -> Any:
    """Call whitelisted function ``name`` on evaluated ``args`` (templates use this; the clock
    functions need ``ctx``). Raises ExpressionError for a wrong call."""
    sig = FUNCTIONS.get(name)
    if sig is None:
        raise ExpressionError(f"unknown function {name}()")
    need = sig.min_args if sig.min_args is not None else len(sig.params)
    if len(args) < need or (not sig.variadic and len(args) > len(sig.params)):
        raise ExpressionError(f"{name}() takes {len(sig.params)} argument(s), got {len(args)}")
    return _IMPLS[name](args, ctx or EvalContext(lambda n: UNSET))


def _len(a: list[Any], _c: EvalContext) -> int:
    if not isinstance(a[0], str | list | tuple | dict):
        raise ExpressionError(f"len() of a {_tname(a[0])}")
    return len(a[0])


def _contains(a: list[Any], _c: EvalContext) -> bool:
    hay, needle = a
    if isinstance(hay, str):
        return _str(needle, "contains") in hay
    if isinstance(hay, list | tuple):
        return any(_equal(needle, x) for x in hay)
    if isinstance(hay, dict):
        return needle in hay
    raise ExpressionError(f"contains() needs a string, list or map, not {_tname(hay)}")


def _join(a: list[Any], _c: EvalContext) -> str:
    if not isinstance(a[0], list | tuple):
        raise ExpressionError(f"join() needs a list, not {_tname(a[0])}")
    return _str(a[1], "join").join(_to_str(x) for x in a[0])


_IMPLS: dict[str, Callable[[list[Any], EvalContext], Any]] = {
    "len": _len,
    "lower": lambda a, c: _str(a[0], "lower").lower(),
    "upper": lambda a, c: _str(a[0], "upper").upper(),
    "trim": lambda a, c: _str(a[0], "trim").strip(),
    "str": lambda a, c: _to_str(a[0]),
    "int": lambda a, c: _to_number(a[0], "int", True),
    "number": lambda a, c: _to_number(a[0], "number", False),
    "round": lambda a, c: round(_num(a[0], "round")),
    "abs": lambda a, c: abs(_num(a[0], "abs")),
    "min": lambda a, c: min(_num(x, "min") for x in a),
    "max": lambda a, c: max(_num(x, "max") for x in a),
    "contains": _contains,
    "startswith": lambda a, c: _str(a[0], "startswith").startswith(_str(a[1], "startswith")),
    "endswith": lambda a, c: _str(a[0], "endswith").endswith(_str(a[1], "endswith")),
    "matches": lambda a, c: _regex(_str(a[1], "matches")).search(_str(a[0], "matches")) is not None,
    "replace": lambda a, c: _str(a[0], "replace").replace(
        _str(a[1], "replace"), _str(a[2], "replace")
    ),
    "digits": lambda a, c: "".join(ch for ch in _to_str(a[0]) if ch.isdigit()),
    "join": _join,
    "split": lambda a, c: _str(a[0], "split").split(_str(a[1], "split") or None),
    "now": lambda a, c: c.now,
    "hour": lambda a, c: _local(c).hour,
    "minute": lambda a, c: _local(c).minute,
    "weekday": lambda a, c: _local(c).isoweekday(),
    "today": lambda a, c: _local(c).date().isoformat(),
    "is_open": lambda a, c: is_open(_str(a[0], "is_open"), _local(c)),
}
