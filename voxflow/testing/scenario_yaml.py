"""Scenario YAML read with its lines: a safe loader (YAML 1.2 booleans only) whose mappings and
strings know the line they were written on, so that an error can name it (``scenario_errors``)."""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["LINE", "LinedDict", "LinedStr", "load_lined", "strip_lines"]

LINE = "__line__"
"""The key under which each loaded mapping keeps its line (dropped by :func:`strip_lines` from
mappings that are user data)."""
_DATA_KEYS = frozenset({"json", "args", "variables", "metadata", "media", "headers"})
"""Keys whose values are user data (variables, JSON bodies, args): no ``__line__`` inside."""


class _LineLoader(yaml.SafeLoader):
    """A safe loader that records each mapping's line as ``__line__``; booleans are YAML 1.2's
    (only true/false), so states named ``yes``/``no`` and answers like ``on`` stay strings."""


_BOOL = "tag:yaml.org,2002:bool"
_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_LineLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class LinedDict(dict[Any, Any]):
    """A YAML mapping that knows the line of each key (for error messages only: the models get
    plain dicts from :func:`strip_lines`)."""

    key_lines: dict[str, int]


def _refuse_duplicates(node: yaml.MappingNode) -> None:
    """A key written twice in one mapping is an error (YAML keys are unique): the loader would
    keep the last and drop the first, an expectation among them. ``<<`` merges may be
    overridden (they are not the mapping's own keys)."""
    seen: dict[tuple[str, str], yaml.Mark] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        first = seen.setdefault((key.tag, str(key.value)), key.start_mark)
        if first is not key.start_mark:
            raise yaml.constructor.ConstructorError(
                problem=f"'{key.value}' is written twice (first on line {first.line + 1})",
                problem_mark=key.start_mark,
            )


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    _refuse_duplicates(node)
    mapping = LinedDict(loader.construct_mapping(node, deep=True))
    mapping.key_lines = {
        str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)
    }
    mapping[LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class LinedStr(str):
    """A YAML string that knows its line (so ``- hangup`` steps report where they are)."""

    line: int = 0


def _construct_str(loader: _LineLoader, node: yaml.ScalarNode) -> str:
    text = LinedStr(loader.construct_scalar(node))
    text.line = node.start_mark.line + 1
    return text


_LineLoader.add_constructor("tag:yaml.org,2002:str", _construct_str)


def strip_lines(value: Any, keep: bool) -> Any:
    """Drop ``__line__`` from mappings that are user data (variables, JSON bodies, args)."""
    if isinstance(value, dict):
        return {
            k: strip_lines(v, keep and k not in _DATA_KEYS)
            for k, v in value.items()
            if keep or k != LINE
        }
    if isinstance(value, list):
        return [strip_lines(v, keep) for v in value]
    if isinstance(value, LinedStr) and not keep:
        return str(value)
    return value


def load_lined(text: str) -> Any:
    """``text`` parsed as YAML with lines kept (mappings are :class:`LinedDict` with ``LINE``,
    strings :class:`LinedStr`); raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_LineLoader)
