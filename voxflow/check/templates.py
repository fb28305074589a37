"""Static analysis of jinja2 prompt templates (names read, syntax errors).

Plain ``{{ expr }}`` templates are scanned by :func:`voxflow.spec.options.template_names` (the
scan lowering uses, ~40x cheaper than a jinja2 parse); templates with statements or comments,
and any the scan cannot read, are parsed by :mod:`voxflow.check.templates_jinja`, imported only
then (jinja2 is ~40 ms of a checking command's start-up). Results are cached per template string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from voxflow.spec.options import template_names

__all__ = ["TemplateInfo", "analyze_template", "is_template"]


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    """What a template reads; ``error``/``error_line`` are set when it does not parse."""

    names: frozenset[str]
    error: str | None = None
    error_line: int = 1


def is_template(text: str) -> bool:
    """True when ``text`` contains jinja2 markup."""
    return "{{" in text or "{%" in text or "{#" in text


@lru_cache(maxsize=65536)
def analyze_template(text: str) -> TemplateInfo:
    """The undeclared names ``text`` reads, or its syntax error (line relative to the template)."""
    if not is_template(text):
        return TemplateInfo(frozenset())
    if "{%" not in text and "{#" not in text and not _MAY_BLOW_UP.search(text):
        names, problem = template_names(text)
        if problem is None:
            return TemplateInfo(frozenset(names))
    from voxflow.check.templates_jinja import parse_template

    return parse_template(text)


_MAY_BLOW_UP = re.compile(r"[*+%]|range|center|indent|just|zfill|format")
