"""The messages of a scenario file's validation errors, one a line: ``file:line: where: what``,
with the YAML line of what is wrong, what a key expects against what it got, and the key meant
by a misspelt one."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import ValidationError

from voxflow.testing.scenario_yaml import LINE, LinedDict, LinedStr

__all__ = ["format_error", "lines_of", "unknown_key"]


def unknown_key(key: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key '{key}'{hint}"


def lines_of(data: Any, loc: tuple[int | str, ...]) -> int:
    """The YAML line of what ``loc`` names: its key's line, else the innermost mapping's or the
    list item's (0 when unknown)."""
    line = 0
    cur = data
    for part in loc:
        if isinstance(cur, dict):
            line = int(cur.get(LINE, line))
            if part not in cur:
                break
            if isinstance(cur, LinedDict):
                line = cur.key_lines.get(str(part), line)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and part < len(cur):
            cur = cur[part]
            line = cur.line if isinstance(cur, LinedStr) else line
        else:
            break
    if isinstance(cur, dict):
        line = int(cur.get(LINE, line))
    return line


_WANTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}
"""pydantic's type errors, as what the key expects."""
_FIELD_WANTED = {
    "caller": 'the caller\'s number as a string (e.g. caller: "+15550100")',
    "called": 'the dialled number as a string (e.g. called: "100")',
}


def _found(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {_short(value)!r}"
    return "nothing" if value is None else type(value).__name__


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _wrong_shape(loc: tuple[int | str, ...], kind: str, value: Any) -> str:
    """``expected X, got Y`` for a value of the wrong type (with a hint for a scenario's or the
    defaults' ``caller``)."""
    call_key = str(loc[-1]) if loc[:1] in (("scenarios",), ("defaults",)) and len(loc) <= 3 else ""
    want = _WANTED[kind]
    if kind == "string_type":
        want = _FIELD_WANTED.get(call_key, want)
    msg = f"expected {want}, got {_found(value)}"
    if call_key == "caller" and isinstance(value, list | dict):
        msg += "; what the caller does goes under steps:"
    return msg


def format_error(name: str, data: Any, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors()[:5]:
        loc = tuple(p for p in err["loc"] if p != "function-after")
        where = ".".join(str(p) for p in loc if not str(p).startswith("function"))
        line = lines_of(data, loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = unknown_key(str(loc[-1]), ())
        elif err["type"] == "missing":
            msg = f"'{loc[-1]}' is required"
        elif err["type"] in _WANTED:
            msg = _wrong_shape(loc, err["type"], err.get("input"))
        lines.append(f"{name}:{line}: {where}: {msg}" if where else f"{name}:{line}: {msg}")
    return "\n".join(lines)
