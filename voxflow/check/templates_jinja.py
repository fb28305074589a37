"""The jinja2 half of :mod:`voxflow.check.templates`: templates the plain scan cannot read are
parsed in a :class:`jinja2.sandbox.SandboxedEnvironment` (never rendered),
:func:`jinja2.meta.find_undeclared_variables` gives the names they read, and constant blow-ups
are found before anything is built. Imported on the first such template.
"""

from __future__ import annotations

import jinja2
import jinja2.meta
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

from voxflow.check.templates import TemplateInfo
from voxflow.spec.functions import template_function_names
from voxflow.spec.template_limits import (
    MAX_BUILD,
    MAX_STEPS,
    TemplateLimitError,
    check_binop,
    check_range,
    check_width,
    format_widths_ok,
)

__all__ = ["constant_blowup", "parse_template"]


class _NoFolding(SandboxedEnvironment):
    """Intercepting these operators also stops jinja computing them at compile time (which
    ``find_undeclared_variables`` runs): ``{{ (1,)*99999999 }}`` is analysed, never built."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})


_ENV = _NoFolding(autoescape=False)


def parse_template(text: str) -> TemplateInfo:
    """What ``text`` reads, parsed by jinja2: its undeclared names, or its syntax error or
    constant blow-up (line relative to the template)."""
    try:
        tree = _ENV.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return TemplateInfo(frozenset(), exc.message or "invalid template", exc.lineno or 1)
    except Exception as exc:  # jinja2 can raise other errors on pathological input
        return TemplateInfo(frozenset(), f"invalid template: {exc}", 1)
    blowup = constant_blowup(tree)  # before the code generator folds constant filters
    if blowup is not None:
        return TemplateInfo(frozenset(), blowup[0], blowup[1])
    read = frozenset(jinja2.meta.find_undeclared_variables(tree))
    names, problem = template_function_names(text, read)
    return TemplateInfo(frozenset(names), problem)


_Size = tuple[str, int]  # ("seq", items) or ("int", value)


def constant_blowup(tree: nodes.Node) -> tuple[str, int] | None:
    """The first constant expression in ``tree`` that would break the runtime's template limits
    (:mod:`voxflow.spec.template_limits`): (message, line), or None."""
    for node in tree.find_all((nodes.BinExpr, nodes.Call, nodes.Filter)):
        try:
            _estimate(node)
            _check_call(node)
        except TemplateLimitError as exc:
            return f"template too expensive: {exc}", node.lineno or 1
    return _nested_loops(tree, 1)


def _nested_loops(node: nodes.Node, outer: int) -> tuple[str, int] | None:
    """Nested ``for`` loops over constant ranges and literals whose iterations multiply past
    :data:`MAX_STEPS` (the runtime's budget): (message, line), or None."""
    for child in node.iter_child_nodes():
        inner = outer
        if isinstance(child, nodes.For):
            size = _constant_length(child.iter)
            if size is not None:
                inner = outer * size
                if inner > MAX_STEPS:
                    return (
                        "template too expensive: a template may make at most "
                        f"{MAX_STEPS} loop iterations and calls, these loops make {inner}",
                        child.lineno or 1,
                    )
        found = _nested_loops(child, inner)
        if found is not None:
            return found
    return None


def _constant_length(node: nodes.Node) -> int | None:
    """How many items a loop over ``node`` has, when the template says it as a constant."""
    if isinstance(node, nodes.Const) and isinstance(node.value, str | tuple | list):
        return len(node.value)
    if isinstance(node, nodes.List | nodes.Tuple):
        return len(node.items)
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name):
        args = [a.value for a in node.args if isinstance(a, nodes.Const)]
        ints = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
        if node.node.name == "range" and 1 <= len(ints) == len(node.args) <= 3:
            return None if len(ints) == 3 and ints[2] == 0 else len(range(*ints))
    return None


def _estimate(node: nodes.Node) -> _Size | None:
    """A constant's size (sequences) or value (ints); raises when building it is too much."""
    if isinstance(node, nodes.Const):
        v = node.value
        if isinstance(v, str | tuple | list):
            return ("seq", len(v))
        return ("int", v) if isinstance(v, int) and not isinstance(v, bool) else None
    if isinstance(node, nodes.Tuple | nodes.List):
        return ("seq", len(node.items))
    if not isinstance(node, nodes.Mul | nodes.Add | nodes.Pow):
        return None
    a, b = _estimate(node.left), _estimate(node.right)
    if a is None or b is None:
        return None
    op = node.operator
    if op == "**" and a[0] == b[0] == "int":
        check_binop(op, a[1], b[1])
    out = _combine(op, a, b)
    if out is not None and out[0] == "seq" and out[1] > MAX_BUILD:
        raise TemplateLimitError(f"a template may build at most {MAX_BUILD} items, not {out[1]}")
    return out


def _combine(op: str, a: _Size, b: _Size) -> _Size | None:
    cap = 10**18
    if op == "*":
        if a[0] == "int" and b[0] == "int":
            return ("int", max(-cap, min(cap, a[1] * b[1])))
        return ("seq", a[1] * b[1])
    if op == "+" and a[0] == b[0]:
        return (a[0], min(cap, a[1] + b[1]))
    if op == "**" and a[0] == b[0] == "int":
        return ("int", min(cap, a[1] ** b[1])) if b[1] < 64 else ("int", cap)
    return None


def _check_call(node: nodes.Node) -> None:
    if isinstance(node, nodes.Mod) and isinstance(node.left, nodes.Const):
        right = node.right.value if isinstance(node.right, nodes.Const) else ()
        check_binop("%", node.left.value, right)
        return
    ints = [
        a.value
        for a in getattr(node, "args", [])
        if isinstance(a, nodes.Const) and isinstance(a.value, int)
    ]
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name):
        if node.node.name == "range" and ints and len(ints) == len(node.args) <= 3:
            check_range(*ints)
    elif isinstance(node, nodes.Filter) and node.name in ("center", "indent") and ints:
        check_width(ints[0])
    elif isinstance(node, nodes.Filter) and node.name == "format":
        fmt = node.node
        if isinstance(fmt, nodes.Const) and isinstance(fmt.value, str):
            check_binop("%", fmt.value, tuple(ints))
    elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
        if node.node.attr in ("center", "ljust", "rjust", "zfill") and ints:
            check_width(ints[0])
        owner = node.node.node
        if node.node.attr == "format" and isinstance(owner, nodes.Const):
            if isinstance(owner.value, str) and not format_widths_ok(owner.value):
                raise TemplateLimitError("format widths above the limit")
