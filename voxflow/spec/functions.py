"""The whitelist of functions a flow expression may call, with their static types.

The checker type-checks calls against :data:`FUNCTIONS`; the runtime implements exactly these.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

__all__ = [
    "CLOCK_FUNCTIONS",
    "FUNCTIONS",
    "TEMPLATE_FUNCTIONS",
    "FunctionSig",
    "ValueType",
    "hours_problem",
    "parse_hours",
    "template_function_names",
    "timezone_problem",
]


ValueType = Literal["string", "number", "bool", "duration", "list", "map", "any", "null"]
"""The static types of flow values (the IR's expression types use it too)."""


@dataclass(frozen=True, slots=True)
class FunctionSig:
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
    "today": _sig((), "string", "current date as YYYY-MM-DD in the flow's timezone"),
    "is_open": _sig(
        ("string",), "bool", "true when now falls within hours like 'mon-fri 09:00-17:00'"
    ),
}
"""The only functions an expression may call, with their static types."""

CLOCK_FUNCTIONS = frozenset({"now", "hour", "minute", "weekday", "today", "is_open"})
"""Functions that read the call's clock and the flow's timezone: expressions only."""

TEMPLATE_FUNCTIONS = frozenset(FUNCTIONS) - CLOCK_FUNCTIONS
"""The functions a template may call, as in expressions (``{{ periods[int(sel) - 1] }}``)."""


def template_function_names(
    source: str, names: tuple[str, ...] | frozenset[str]
) -> tuple[tuple[str, ...], str | None]:
    """The names of ``names`` (read by template ``source``) that are variables, dropping the
    function names the template only calls; and an error when it calls a clock function."""
    kept: list[str] = []
    problem: str | None = None
    for name in sorted(names):
        if name not in FUNCTIONS or not re.search(rf"\b{name}\s*\(", source):
            kept.append(name)
            continue
        if name in CLOCK_FUNCTIONS and problem is None:
            problem = (
                f"{name}() is not available in templates (it reads the call's clock); "
                f"set a variable first (set t = {name}({'...' if FUNCTIONS[name].params else ''}))"
                " and write {{ t }}"
            )
        if re.search(rf"\b{name}\b(?!\s*\()", source):
            kept.append(name)  # also read as a variable somewhere
    return tuple(kept), problem


_DAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}
_SPEC = re.compile(r"^\s*(?:([a-z]{3})(?:-([a-z]{3}))?\s+)?(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})\s*$")

Hours = tuple[tuple[int, int, int, int], ...]
"""Opening hours: (first weekday, last weekday, start minute, end minute) per part."""


def parse_hours(spec: str) -> Hours:
    """Parse ``is_open`` hours: comma-separated ``[day[-day]] HH:MM-HH:MM`` (weekdays 1-7).
    Raises ValueError naming the bad part."""
    out: list[tuple[int, int, int, int]] = []
    for part in spec.lower().split(","):
        if not part.strip():
            continue
        m = _SPEC.match(part)
        if not m:
            raise ValueError(f"bad hours {part.strip()!r} (e.g. mon-fri 09:00-17:00)")
        d1, d2, h1, m1, h2, m2 = m.groups()
        if d1 is not None and (d1 not in _DAYS or (d2 is not None and d2 not in _DAYS)):
            raise ValueError(f"unknown day in {part.strip()!r} (mon, tue, ... sun)")
        if int(h1) > 24 or int(h2) > 24 or int(m1) > 59 or int(m2) > 59:
            raise ValueError(f"no such time in {part.strip()!r} (HH:MM, 00:00 to 24:00)")
        lo, hi = (_DAYS[d1], _DAYS[d2 or d1]) if d1 is not None else (1, 7)
        out.append((lo, hi, int(h1) * 60 + int(m1), int(h2) * 60 + int(m2)))
    return tuple(out)


def hours_problem(spec: str) -> str | None:
    """Why ``spec`` is not valid ``is_open`` hours, or None."""
    try:
        parse_hours(spec)
    except ValueError as exc:
        return f"is_open(): {exc}"
    return None


def timezone_problem(name: str) -> tuple[str, str | None] | None:
    """(message, hint) when ``name`` is not an IANA time zone this machine knows, else None."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else "an IANA name such as 'Europe/Paris'"
        return f"unknown time zone '{name}'", hint
    return None
