"""Prompt templates: jinja2 ``SandboxedEnvironment`` with ``StrictUndefined``.

Undefined names, sandbox violations and syntax errors all raise :class:`TemplateError`.
Compiled templates are cached per source text (an LRU of bounded size), so rendering the
same prompt for thousands of calls compiles it once.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jinja2
import jinja2.meta
from jinja2.sandbox import SandboxedEnvironment

from voxflow.errors import TemplateError
from voxflow.runtime.expressions import UNSET, call_function
from voxflow.spec.functions import TEMPLATE_FUNCTIONS

__all__ = ["TemplateRenderer", "default_renderer", "is_template", "render", "template_names"]

_CACHE_SIZE = 4096


def _fmt_digits(value: Any) -> str:
    """Space the characters of a value so TTS reads them one by one ("1234" -> "1 2 3 4")."""
    return " ".join(str(value))


def template_functions() -> dict[str, Callable[..., Any]]:
    """The expression functions templates may call (:data:`TEMPLATE_FUNCTIONS`), with the
    expression semantics; ``default``/``is_set`` treat an undefined name as unset."""
    out: dict[str, Callable[..., Any]] = {}
    for name in sorted(TEMPLATE_FUNCTIONS):
        out[name] = functools.partial(_call_function, name)
    return out


def _call_function(name: str, *args: Any) -> Any:
    values = [UNSET if isinstance(a, jinja2.Undefined) else a for a in args]
    if name == "is_set":
        return bool(values) and values[0] is not UNSET and values[0] is not None
    if name == "default":
        first = values[0] if values else UNSET
        return (values[1] if len(values) > 1 else None) if first in (UNSET, None) else first
    if any(v is UNSET for v in values):
        raise TemplateError(f"{name}() of an undefined name")
    return call_function(name, values)


class TemplateRenderer:
    """Renders prompt templates with a sandboxed, strict jinja2 environment and a compile cache."""

    def __init__(self, *, cache_size: int = _CACHE_SIZE) -> None:
        self._env = SandboxedEnvironment(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
        )
        self._env.filters["digits"] = _fmt_digits
        self._env.globals.update(template_functions())
        self._cache: OrderedDict[str, jinja2.Template] = OrderedDict()
        self._cache_size = cache_size

    def compile(self, source: str) -> jinja2.Template:
        """Compile ``source`` (cached). Raises TemplateError on a syntax error."""
        tpl = self._cache.get(source)
        if tpl is not None:
            self._cache.move_to_end(source)
            return tpl
        try:
            tpl = self._env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            msg = f"template syntax error at line {exc.lineno}: {exc.message}"
            raise TemplateError(msg) from exc
        self._cache[source] = tpl
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return tpl

    def render(self, source: str, variables: Mapping[str, Any]) -> str:
        """Render ``source`` with ``variables``. Plain text without ``{{``/``{%`` skips jinja."""
        if not is_template(source):
            return source
        tpl = self.compile(source)
        try:
            return tpl.render(dict(variables))
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"undefined name in template: {exc.message}") from exc
        except jinja2.exceptions.SecurityError as exc:
            raise TemplateError(f"template not allowed by the sandbox: {exc}") from exc
        except TemplateError:
            raise
        except Exception as exc:  # any error inside a user template is a template error
            raise TemplateError(f"template failed: {type(exc).__name__}: {exc}") from exc

    def names(self, source: str) -> frozenset[str]:
        """The undeclared variable names a template reads (for static checks)."""
        try:
            ast = self._env.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            msg = f"template syntax error at line {exc.lineno}: {exc.message}"
            raise TemplateError(msg) from exc
        return frozenset(jinja2.meta.find_undeclared_variables(ast))


def is_template(source: str) -> bool:
    """True when ``source`` contains jinja syntax."""
    return "{{" in source or "{%" in source or "{#" in source


default_renderer = TemplateRenderer()


def render(source: str, variables: Mapping[str, Any]) -> str:
    """Render with the process-wide :data:`default_renderer`."""
    return default_renderer.render(source, variables)


def template_names(sources: Iterable[str]) -> frozenset[str]:
    """Union of the names read by several templates."""
    out: set[str] = set()
    for s in sources:
        out |= default_renderer.names(s)
    return frozenset(out)
