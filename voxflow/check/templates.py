"""Static analysis of jinja2 prompt templates (names read, syntax errors).

Templates are parsed in a :class:`jinja2.sandbox.SandboxedEnvironment` (never rendered) and
:func:`jinja2.meta.find_undeclared_variables` gives the top-level names they read.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import jinja2
import jinja2.meta
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["TemplateInfo", "analyze_template", "is_template"]

_ENV = SandboxedEnvironment(autoescape=False)


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    """What a template reads; ``error``/``error_line`` are set when it does not parse."""

    names: frozenset[str]
    error: str | None = None
    error_line: int = 1


def is_template(text: str) -> bool:
    """True when ``text`` contains jinja2 markup."""
    return "{{" in text or "{%" in text or "{#" in text


@lru_cache(maxsize=8192)
def analyze_template(text: str) -> TemplateInfo:
    """The undeclared names ``text`` reads, or its syntax error (line relative to the template)."""
    if not is_template(text):
        return TemplateInfo(frozenset())
    try:
        tree = _ENV.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return TemplateInfo(frozenset(), exc.message or "invalid template", exc.lineno or 1)
    except Exception as exc:  # jinja2 can raise other errors on pathological input
        return TemplateInfo(frozenset(), f"invalid template: {exc}", 1)
    return TemplateInfo(frozenset(jinja2.meta.find_undeclared_variables(tree)))
