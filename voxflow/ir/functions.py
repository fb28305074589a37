"""The whitelist of functions a flow expression may call, with their static types.

The checker type-checks calls against :data:`FUNCTIONS`; the runtime implements exactly these.
"""

from __future__ import annotations

from typing import Any

from voxflow.ir.models import Node, ValueType

__all__ = ["FUNCTIONS", "FunctionSig"]


class FunctionSig(Node):
    """A whitelisted function: parameter types (``variadic`` repeats the last) and result."""

    params: tuple[ValueType, ...]
    result: ValueType
    variadic: bool = False
    min_args: int | None = None
    doc: str = ""


def _sig(params: tuple[ValueType, ...], result: ValueType, doc: str, **kw: Any) -> FunctionSig:
    return FunctionSig(params=params, result=result, doc=doc, **kw)


FUNCTIONS: dict[str, FunctionSig] = {
    "len": _sig(("any",), "number", "length of a string, list or map"),
    "lower": _sig(("string",), "string", "lower-case"),
    "upper": _sig(("string",), "string", "upper-case"),
    "trim": _sig(("string",), "string", "strip surrounding whitespace"),
    "str": _sig(("any",), "string", "convert to string"),
    "int": _sig(("any",), "number", "convert to an integer (error if not numeric)"),
    "number": _sig(("any",), "number", "convert to a number (error if not numeric)"),
    "round": _sig(("number",), "number", "round to the nearest integer"),
    "abs": _sig(("number",), "number", "absolute value"),
    "min": _sig(("number",), "number", "smallest argument", variadic=True, min_args=1),
    "max": _sig(("number",), "number", "largest argument", variadic=True, min_args=1),
    "contains": _sig(("any", "any"), "bool", "substring / list member / map key test"),
    "startswith": _sig(("string", "string"), "bool", "prefix test"),
    "endswith": _sig(("string", "string"), "bool", "suffix test"),
    "matches": _sig(("string", "string"), "bool", "regex search (Python syntax)"),
    "replace": _sig(("string", "string", "string"), "string", "replace all occurrences"),
    "digits": _sig(("string",), "string", "keep only 0-9"),
    "join": _sig(("list", "string"), "string", "join list items with a separator"),
    "split": _sig(("string", "string"), "list", "split a string on a separator"),
    "default": _sig(("any", "any"), "any", "first argument unless it is unset/null, else second"),
    "is_set": _sig(("any",), "bool", "true when the argument is set and not null"),
    "now": _sig((), "number", "current Unix time in seconds"),
    "hour": _sig((), "number", "current hour 0-23 in the flow's timezone"),
    "minute": _sig((), "number", "current minute 0-59 in the flow's timezone"),
    "weekday": _sig((), "number", "current weekday, 1=Monday .. 7=Sunday, flow timezone"),
    "is_open": _sig(
        ("string",), "bool", "true when now falls within hours like 'mon-fri 09:00-17:00'"
    ),
}
"""The only functions an expression may call, with their static types."""
