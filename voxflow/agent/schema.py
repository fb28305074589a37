"""Tool-argument checking: parse a tool call's JSON and validate it with ``jsonschema``.

Validation is the maintained ``jsonschema`` library (Draft 2020-12, the dialect OpenAI-style tool
declarations use), so every keyword a tool schema may carry is honoured. This module only turns
the library's errors into short messages written for the model (``missing required argument
'x'``, ``unexpected argument 'y' (allowed: ...)``), so a corrective retry can fix the call.
``jsonschema`` is imported by the first schema checked, so a process whose flows declare no tool
(``voxflow test`` of a menu) does not load it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

__all__ = [
    "ToolArgumentsError",
    "check_schema",
    "parse_tool_arguments",
    "schema_from_types",
]

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
_MAX_PROBLEMS = 5


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


def check_schema(schema: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` when ``schema`` is not a valid JSON schema (checked once per tool)."""
    from jsonschema.exceptions import SchemaError

    try:
        _validator(_key(schema))
    except SchemaError as exc:
        raise ValueError(f"invalid tool parameter schema: {exc.message}") from None


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
    from jsonschema.exceptions import SchemaError

    try:
        validator = _validator(_key(schema or {"type": "object"}))
    except SchemaError as exc:  # a broken declaration is ours, but the call still fails
        raise ToolArgumentsError(f"the tool's schema is invalid: {exc.message}") from None
    errors = sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        raise ToolArgumentsError("; ".join(_message(e) for e in errors[:_MAX_PROBLEMS]))
    return value


def _key(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, default=str)


@functools.lru_cache(maxsize=256)
def _validator(key: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    schema = json.loads(key)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _where(error: ValidationError) -> str:
    path = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path)
    return path.replace(".[", "[") or "arguments"


def _message(error: ValidationError) -> str:
    """One model-readable line per violation."""
    where = _where(error)
    prefix = "" if where == "arguments" else f"{where}."
    kind = error.validator
    value: Any = error.validator_value
    instance: Any = error.instance
    schema: Any = error.schema
    if kind == "required" and isinstance(instance, dict):
        missing = [n for n in value if n not in instance]
        quoted = ", ".join(repr(f"{prefix}{n}") for n in missing)
        return f"missing required argument {quoted}"
    if kind == "additionalProperties" and isinstance(instance, dict) and isinstance(schema, dict):
        allowed = list((schema.get("properties") or {}).keys())
        extra = [k for k in instance if k not in allowed]
        names = ", ".join(repr(f"{prefix}{k}") for k in extra)
        return f"unexpected argument {names} (allowed: {', '.join(allowed) or 'none'})"
    if kind == "type":
        tlist = [value] if isinstance(value, str) else list(value)
        return f"{where} must be {' or '.join(tlist)}, got {json.dumps(instance)}"
    if kind == "enum":
        choices = ", ".join(json.dumps(v) for v in value)
        return f"{where} must be one of {choices}, got {json.dumps(instance)}"
    return f"{where}: {error.message}"
