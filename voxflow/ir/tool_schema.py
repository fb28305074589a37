"""Agent tool and action argument constraints -> JSON-Schema keywords.

``tool book(party: number min 1 max 8, day: string one_of ["mon", "tue"])``: each constraint is
a literal checked here (VF408) and becomes a keyword of the argument's JSON schema, which the
model sees and the agent validates before the exit is taken (one corrective retry).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from voxflow.spec.options import did_you_mean
from voxflow.syntax import ast

if TYPE_CHECKING:
    from voxflow.ir.lower import Lowerer

__all__ = ["CONSTRAINTS", "arg_schema"]

_NUMERIC = ("number",)
_SIZED = ("string", "list")
CONSTRAINTS: dict[str, tuple[str, ...]] = {
    "min": _NUMERIC,
    "max": _NUMERIC,
    "one_of": ("string", "number", "any"),
    "pattern": ("string",),
    "min_length": _SIZED,
    "max_length": _SIZED,
    "items": ("list",),
    "schema": ("string", "number", "bool", "list", "map", "any", "duration"),
}
"""Each constraint and the argument types it applies to."""


def _literal(e: ast.Expr) -> Any:
    """The JSON value of a literal expression; ValueError when it is not one."""
    if isinstance(e, ast.Literal_) and e.type in ("string", "number", "bool", "null"):
        return e.value
    if isinstance(e, ast.Unary) and e.op == "-" and isinstance(e.operand, ast.Literal_):
        if e.operand.type == "number" and isinstance(e.operand.value, int | float):
            return -e.operand.value
    if isinstance(e, ast.ListLit):
        return [_literal(x) for x in e.items]
    if isinstance(e, ast.MapLit):
        return {str(k): _literal(v) for k, v in e.entries}
    raise ValueError("not a literal")


def _number(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError("takes a number")
    return v


def _count(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError("takes a whole number")
    return v


def _choices(v: Any) -> Any:
    if not isinstance(v, list) or not v or any(isinstance(x, list | dict) for x in v):
        raise ValueError('takes a list of values, e.g. ["mon", "tue"]')
    return v


def _regex(v: Any) -> Any:
    if not isinstance(v, str):
        raise ValueError("takes a quoted regular expression")
    try:
        re.compile(v)
    except re.error as exc:
        raise ValueError(f"is not a valid regular expression: {exc}") from None
    return v


def _object(v: Any) -> Any:
    if not isinstance(v, dict):
        raise ValueError('takes a JSON schema map, e.g. {"type": "object"}')
    return v


_READ: dict[str, Callable[[Any], Any]] = {
    "min": _number,
    "max": _number,
    "one_of": _choices,
    "pattern": _regex,
    "min_length": _count,
    "max_length": _count,
    "items": _object,
    "schema": _object,
}


def _keyword(name: str, arg_type: str) -> str:
    if name in ("min_length", "max_length"):
        prefix = "min" if name == "min_length" else "max"
        return f"{prefix}Items" if arg_type == "list" else f"{prefix}Length"
    return {"min": "minimum", "max": "maximum", "one_of": "enum"}.get(name, name)


def arg_schema(lw: Lowerer, arg: ast.ToolArg, arg_type: str) -> str:
    """The argument's constraints as JSON-Schema keywords (JSON text; "" when none)."""
    out: dict[str, Any] = {}
    for c in arg.constraints:
        if c.name not in CONSTRAINTS:
            lw.error(
                "VF408",
                c.name_span,
                f"unknown constraint '{c.name}'",
                did_you_mean(c.name, CONSTRAINTS) or "known: " + ", ".join(CONSTRAINTS),
            )
            continue
        if arg_type not in CONSTRAINTS[c.name]:
            lw.error("VF408", c.span, f"'{c.name}' does not apply to a {arg_type} argument")
            continue
        try:
            value = _READ[c.name](_literal(c.values[0]))
        except ValueError as exc:
            lw.error("VF408", c.values[0].span, f"'{c.name}' {exc}")
            continue
        if c.name == "schema":
            out.update(value)
        else:
            out[_keyword(c.name, arg_type)] = value
    if not out:
        return ""
    # here, not at the top: a flow without constrained tool arguments is checked without jsonschema
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(out)
    except SchemaError as exc:
        lw.error("VF408", arg.span, f"invalid JSON schema for '{arg.name}': {exc.message}")
        return ""
    return json.dumps(out, sort_keys=True)
