"""Slices in expressions (``name[0:3]``): parsed, type-checked, lowered, evaluated as templates
slice (Python's rules: a bound left out is the end, negative counts from the end, bounds past
the end are clipped), formatted without spaces around the ``:``."""

from __future__ import annotations

from typing import Any

import pytest
from _runtime_flowkit import lit, var

from voxflow.compiler import compile_flow
from voxflow.errors import ExpressionError
from voxflow.fmt import format_source
from voxflow.ir import models as ir
from voxflow.runtime.expressions import EvalContext, evaluate
from voxflow.runtime.templating import TemplateRenderer

NAMES: dict[str, Any] = {"s": "Alexandra", "xs": [1, 2, 3, 4], "m": {"a": 1}, "n": 7}


def ev(e: Any) -> Any:
    return evaluate(e, EvalContext(NAMES.__getitem__, now=0.0, timezone="UTC"))


def sl(target: Any, start: Any = None, stop: Any = None) -> ir.SliceExpr:
    wrap = lambda v: None if v is None else lit(v)  # noqa: E731  (a one-line helper)
    return ir.SliceExpr(target=target, start=wrap(start), stop=wrap(stop))


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        (sl(var("s"), 0, 3), "Ale"),
        (sl(var("s"), None, 4), "Alex"),
        (sl(var("s"), -4), "ndra"),
        (sl(var("s"), 2, 99), "exandra"),
        (sl(var("xs"), 1, 3), [2, 3]),
        (sl(var("xs"), -2), [3, 4]),
        (sl(var("xs"), None, -1), [1, 2, 3]),
        (sl(var("xs")), [1, 2, 3, 4]),
        (sl(var("xs"), 3, 1), []),
    ],
)
def test_slices_are_python_slices(expr: ir.SliceExpr, want: Any) -> None:
    assert ev(expr) == want


def test_a_slice_agrees_with_the_template_of_the_same_text() -> None:
    render = TemplateRenderer().render
    for text, expr in (("s[1:4]", sl(var("s"), 1, 4)), ("xs[-3:]", sl(var("xs"), -3))):
        assert render("{{ " + text + " }}", dict(NAMES)) == str(ev(expr))


def test_bad_slices_are_expression_errors() -> None:
    for bad in (sl(var("m"), 0, 1), sl(var("n"), 0), sl(var("s"), "a"), sl(var("s"), 1.5)):
        with pytest.raises(ExpressionError):
            ev(bad)


FLOW = """flow s:
    timeout 5s

var name: string = "Alexandra"
var items: list = [1, 2, 3, 4]
var short: string = ""

state start:
    answer
    set short = name[:3] + "."
    if items[-2:] == [3, 4]:
        say "{{ short }}"
    hangup
"""


def test_a_slice_compiles_and_lints_clean() -> None:
    result = compile_flow(FLOW, "s.flow")
    assert result.diagnostics == [] and result.flow is not None
    step = result.flow.states["start"].steps[1]
    assert isinstance(step, ir.SetStep) and isinstance(step.value, ir.BinaryExpr)
    assert step.value.left == ir.SliceExpr(target=ir.VarExpr(name="name"), stop=lit(3))


def test_slicing_a_map_or_with_a_string_bound_is_vf303() -> None:
    bad = FLOW.replace("var short", "var m: map = {}\nvar short").replace(
        'name[:3] + "."', 'm[1:2] + name["a":]'
    )
    got = sorted(d.message for d in compile_flow(bad, "s.flow").diagnostics if d.code == "VF303")
    assert got == [
        "a slice bound must be a number, not a string",
        "cannot slice a map (only a string or a list)",
    ]


def test_fmt_writes_a_slice_without_spaces_and_keeps_maps_spaced() -> None:
    src = FLOW.replace("name[:3]", "name[ : 3 ]").replace("items[-2:]", "items[- 2 :]")
    out = format_source(src)
    assert "name[:3]" in out and "items[-2:]" in out
    assert format_source('flow s:\n    meta a = {"k": x[1:2]}\n') == (
        'flow s:\n    meta a = {"k": x[1:2]}\n'
    )
    assert format_source(out) == out
