"""Prompt templates: jinja2 ``SandboxedEnvironment`` with ``StrictUndefined`` and resource limits.

Undefined names, sandbox violations and syntax errors all raise :class:`TemplateError`.
Compiled templates are cached per source text (an LRU of bounded size), so rendering the
same prompt for thousands of calls compiles it once.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import jinja2
import jinja2.meta
from jinja2 import nodes
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import SandboxedEnvironment

from voxflow.errors import TemplateError
from voxflow.runtime.expressions import UNSET, call_function
from voxflow.spec.functions import TEMPLATE_FUNCTIONS
from voxflow.spec.template_limits import (
    MACRO_CALL_COST,
    MAX_OUTPUT,
    MAX_WIDTH,
    StepBudget,
    TemplateLimitError,
    check_binop,
    check_join,
    check_range,
    check_replace,
    check_sum,
    check_width,
    format_widths_ok,
    weight,
)

__all__ = [
    "LimitedSandbox",
    "TemplateRenderer",
    "default_renderer",
    "is_template",
    "render",
    "template_names",
]

_CACHE_SIZE = 4096


def _fmt_digits(value: Any) -> str:
    """Space the characters of a value so TTS reads them one by one ("1234" -> "1 2 3 4")."""
    return " ".join(str(value))


def _format_checked(filter_fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            check_binop("%", value, args or tuple(kwargs.values()))
        return filter_fn(value, *args, **kwargs)

    return wrapped


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


_NESTED_SPEC = re.compile(r"\{[^{}]*:[^{}]*\{")  # a width given as an argument: {:>{}}
_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_PADDING_FILTERS = ("center", "indent")  # (value, width, ...): the ones that pad


_BUDGET: ContextVar[StepBudget | None] = ContextVar("voxflow_template_budget", default=None)
"""The budget of the rendering under way (set by :meth:`TemplateRenderer.render`)."""
_COUNTED = "_voxflow_counted"  # the filter every ``for`` loop's iterable goes through


def _spend_each(items: Iterable[Any], budget: StepBudget) -> Iterator[Any]:
    """``items``, spending a step each (counted here, spent 64 at a time: a call per item would
    cost more than the loop's body)."""
    n = 0
    for item in items:
        n += 1
        if n == 64:
            budget.spend(64)
            n = 0
        yield item
    if n:
        budget.spend(n)


def _counted(items: Any) -> Any:
    """A loop's iterable, each item spending one step of the rendering's budget."""
    budget = _BUDGET.get()
    return items if budget is None else _spend_each(items, budget)


class LimitedSandbox(SandboxedEnvironment):
    """jinja2's sandbox that also bounds what a template can build
    (:mod:`voxflow.spec.template_limits`): ``*``, ``**``, ``+`` and ``%`` are intercepted (which
    also stops jinja folding them at compile time), ``range`` and padding widths are capped,
    and every loop iteration and call spends a step of the rendering's :class:`StepBudget`
    (``lipsum``, which builds text in one call, is not offered)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters[_COUNTED] = _counted
        self.globals.pop("lipsum", None)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Parse, then route every ``for`` loop's iterable through the counting filter."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _COUNTED, [], [], None, None, lineno=loop.lineno)
        return tree

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Padding methods of strings get their width checked; ``replace`` and ``join`` what
        they would build. Every call spends budget (a macro call more); ``loop(items)`` in a
        recursive loop counts its items like a loop does."""
        budget = _BUDGET.get()
        if budget is not None:
            budget.spend(MACRO_CALL_COST if isinstance(obj, Macro) else 1)
            if isinstance(obj, LoopContext) and args:
                args = (_spend_each(args[0], budget), *args[1:])
        name, owner = getattr(obj, "__name__", ""), getattr(obj, "__self__", None)
        if isinstance(owner, str):
            if name in _PADDING_METHODS:
                for a in (*args, *kwargs.values()):
                    check_width(a)
            elif name == "replace" and len(args) >= 2:
                check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else None)
            elif name == "join" and len(args) == 1:
                args = (args[0] if isinstance(args[0], list | tuple) else list(args[0]),)
                check_join(owner, args[0])
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format``/``format_map`` in a template: field widths are checked first."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt: str = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            nested = [v for v in (*args, *kwargs.values()) if isinstance(v, int)]
            wide_nested = _NESTED_SPEC.search(fmt) and any(v > MAX_WIDTH for v in nested)
            if wide_nested or not format_widths_ok(fmt):
                raise TemplateLimitError(f"format widths above {MAX_WIDTH} are not allowed")
            return wrapped(*args, **kwargs)

        return checked


def _limited_range(*args: int) -> range:
    check_range(*args)
    return range(*args)


def _width_checked(
    filter_fn: Callable[..., Any], position: int, keyword: str
) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        width = kwargs.get(keyword, args[position] if len(args) > position else None)
        check_width(width)
        return filter_fn(*args, **kwargs)

    return wrapped


def _checked_output(value: Any) -> Any:
    """Every ``{{ value }}`` printed: a list holding one long string many times is refused
    before ``str()`` builds it (the rendered-text cap would see it only once built)."""
    if isinstance(value, list | tuple | dict) and weight(value, MAX_OUTPUT) > MAX_OUTPUT:
        raise TemplateLimitError(f"the rendered text is longer than {MAX_OUTPUT} characters")
    return value


def _replace_checked(filter_fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> Any:
        check_replace(s, old, new, count)
        return filter_fn(eval_ctx, s, old, new, count)

    return jinja2.pass_eval_context(wrapped)


def _join_checked(filter_fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        if attribute is None:
            value = value if isinstance(value, list | tuple) else list(value)
            check_join(d, value)
        return filter_fn(eval_ctx, value, d, attribute)

    return jinja2.pass_eval_context(wrapped)


def _sum_checked(filter_fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(env: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        if attribute is None:
            iterable = iterable if isinstance(iterable, list | tuple) else list(iterable)
            check_sum(iterable, start)
        return filter_fn(env, iterable, attribute, start)

    return jinja2.pass_environment(wrapped)


_NO_ATTR = re.compile(r"^'(dict|list|str|int|float|NoneType) object' has no attribute (.+)$")
_KIND = {"dict": "a map", "list": "a list", "str": "a string", "NoneType": "null"}


def _undefined(exc: jinja2.UndefinedError) -> str:
    """jinja's message in flow words: ``a map has no key 'token'``, not ``'dict object' has
    no attribute 'token'`` (a missing ``call.metadata`` entry reads like a Python bug)."""
    msg = str(exc.message or exc)
    m = _NO_ATTR.match(msg)
    if m is None:
        return msg
    kind, name = m.group(1), m.group(2)
    if kind == "dict":
        return f"a map has no key {name}"
    return f"{_KIND.get(kind, 'a number')} has no {name}"


class TemplateRenderer:
    """Renders prompt templates with a sandboxed, strict, resource-limited jinja2 environment
    and a compile cache; the rendered text is capped at ``max_output`` characters."""

    def __init__(self, *, cache_size: int = _CACHE_SIZE, max_output: int = MAX_OUTPUT) -> None:
        self._env = LimitedSandbox(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            finalize=_checked_output,
        )
        self.max_output = max_output
        self._env.globals["range"] = _limited_range
        for name in _PADDING_FILTERS:
            self._env.filters[name] = _width_checked(self._env.filters[name], 1, "width")
        self._env.filters["format"] = _format_checked(self._env.filters["format"])
        self._env.filters["replace"] = _replace_checked(self._env.filters["replace"])
        self._env.filters["join"] = _join_checked(self._env.filters["join"])
        self._env.filters["sum"] = _sum_checked(self._env.filters["sum"])
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
        # jinja keeps a template's globals as a ChainMap over the environment's and copies it
        # item by item (in Python) into every render's context; ours are all set in __init__,
        # so a plain dict snapshot renders the same and the copy is one C-level dict() call.
        tpl.globals = dict(tpl.globals)
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
            return self._render_capped(tpl, variables)
        except TemplateLimitError as exc:
            raise TemplateError(f"template too expensive: {exc}") from exc
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"undefined name in template: {_undefined(exc)}") from exc
        except jinja2.exceptions.SecurityError as exc:
            raise TemplateError(f"template not allowed by the sandbox: {exc}") from exc
        except TemplateError:
            raise
        except Exception as exc:  # any error inside a user template is a template error
            raise TemplateError(f"template failed: {type(exc).__name__}: {exc}") from exc

    def _render_capped(self, tpl: jinja2.Template, variables: Mapping[str, Any]) -> str:
        parts: list[str] = []
        size = 0
        token = _BUDGET.set(StepBudget())
        try:
            for chunk in tpl.generate(dict(variables)):
                size += len(chunk)
                if size > self.max_output:
                    raise TemplateLimitError(
                        f"the rendered text is longer than {self.max_output} characters"
                    )
                parts.append(chunk)
        finally:
            _BUDGET.reset(token)
        return "".join(parts)

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
