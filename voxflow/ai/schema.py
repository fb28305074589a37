"""Tool-argument checking: parse a tool call's JSON and validate it against a JSON-schema subset.

The subset is what tool declarations use: ``type`` (object, string, integer, number, boolean,
array, null, or a list of these), ``properties``, ``required``, ``additionalProperties``,
``enum``, ``const``, ``items``, ``minimum``/``maximum``, ``minLength``/``maxLength``, ``pattern``,
``minItems``/``maxItems``. Messages are written for the model, so a corrective retry can fix them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["ToolArgumentsError", "parse_tool_arguments", "schema_from_types", "validate"]

_SIMPLE_TYPES: dict[str, str] = {
    "str": "string",
    "string": "string",
    "text": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
}


class ToolArgumentsError(ValueError):
    """A tool call's arguments are not valid JSON or do not match the tool's schema."""


def schema_from_types(
    params: Mapping[str, str], *, optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Build an object schema from ``{"name": "string", "count": "int"}``; every name is required
    unless listed in ``optional``."""
    props: dict[str, Any] = {}
    for name, tname in params.items():
        key = tname.strip().lower()
        if key not in _SIMPLE_TYPES:
            raise ValueError(f"unknown parameter type {tname!r} for {name!r}")
        props[name] = {"type": _SIMPLE_TYPES[key]}
    return {
        "type": "object",
        "properties": props,
        "required": [n for n in params if n not in optional],
        "additionalProperties": False,
    }


def parse_tool_arguments(raw: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """Parse ``raw`` (the model's JSON text) and validate it; raise :class:`ToolArgumentsError`."""
    text = raw.strip() or "{}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolArgumentsError(
            f"arguments are not valid JSON ({exc.msg} at char {exc.pos})"
        ) from None
    if not isinstance(value, dict):
        raise ToolArgumentsError("arguments must be a JSON object")
    effective = schema if schema else {"type": "object"}
    problems: list[str] = []
    validate(value, effective, "", problems)
    if problems:
        raise ToolArgumentsError("; ".join(problems[:5]))
    return value


def _type_ok(value: Any, tname: str) -> bool:
    if tname == "object":
        return isinstance(value, dict)
    if tname == "array":
        return isinstance(value, list)
    if tname == "string":
        return isinstance(value, str)
    if tname == "boolean":
        return isinstance(value, bool)
    if tname == "null":
        return value is None
    if tname == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if tname == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True  # unknown type names do not constrain


def validate(value: Any, schema: Mapping[str, Any], path: str, problems: list[str]) -> None:
    """Append one message per violation of ``schema`` by ``value`` to ``problems``."""
    where = path or "arguments"
    types = schema.get("type")
    if types is not None:
        tlist = [types] if isinstance(types, str) else list(types)
        if not any(_type_ok(value, t) for t in tlist):
            problems.append(f"{where} must be {' or '.join(tlist)}, got {json.dumps(value)}")
            return
    if "const" in schema and value != schema["const"]:
        problems.append(f"{where} must be {json.dumps(schema['const'])}")
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(json.dumps(v) for v in schema["enum"])
        problems.append(f"{where} must be one of {choices}, got {json.dumps(value)}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(f"{where} must have at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{where} must have at most {schema['maxLength']} characters")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            problems.append(f"{where} must match the pattern {schema['pattern']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where} must be >= {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where} must be <= {schema['maximum']}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            problems.append(f"{where} must have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"{where} must have at most {schema['maxItems']} items")
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                validate(item, items, f"{where}[{i}]", problems)
    if isinstance(value, dict):
        props: Mapping[str, Any] = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                problems.append(f"missing required argument {path + '.' if path else ''}{name!r}")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            sub = f"{path}.{name}" if path else name
            if name in props:
                validate(item, props[name], sub, problems)
            elif extra is False:
                allowed = ", ".join(props) or "none"
                problems.append(f"unexpected argument {sub!r} (allowed: {allowed})")
            elif isinstance(extra, Mapping):
                validate(item, extra, sub, problems)
