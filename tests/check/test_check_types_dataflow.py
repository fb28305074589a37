"""Expression typing and the definite-assignment analysis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voxflow.check.dataflow import CFG, did_you_mean, reachable
from voxflow.check.types import FunctionType, infer
from voxflow.source import Span

FUNCS = {
    "len": FunctionType(("any",), "number"),
    "upper": FunctionType(("string",), "string"),
    "max": FunctionType(("number",), "number", variadic=True, min_args=1),
}


@dataclass
class E:
    kind: str
    span: Span = field(default_factory=lambda: Span(1, 1, 1, 2))
    type: str = "any"
    value: Any = None
    name: str = ""
    op: str = ""
    operand: Any = None
    left: Any = None
    right: Any = None
    func: str = ""
    args: tuple[Any, ...] = ()
    target: Any = None
    index: Any = None


def lit(t: str, col: int = 1) -> E:
    return E("literal", type=t, span=Span(1, col, 1, col + 1))


def var(n: str) -> E:
    return E("var", name=n)


TYPES = {"n": "number", "s": "string", "b": "bool", "l": "list"}


def _infer(node: E) -> tuple[str, list[str]]:
    t, issues = infer(node, lambda n: TYPES.get(n, "any"), FUNCS)
    return t, [i.code + ":" + i.message for i in issues]


def test_arithmetic_types() -> None:
    assert _infer(E("binary", op="+", left=var("n"), right=lit("number"))) == ("number", [])
    assert _infer(E("binary", op="+", left=var("s"), right=lit("string"))) == ("string", [])
    _, issues = _infer(E("binary", op="+", left=var("s"), right=var("n")))
    assert issues == ["VF303:cannot add a string and a number"]
    _, issues = _infer(E("binary", op="*", left=var("b"), right=lit("number", 9)))
    assert issues == ["VF303:'*' needs numbers, not a bool"]


def test_any_never_errors() -> None:
    assert _infer(E("binary", op="-", left=var("unknown"), right=lit("number")))[1] == []


def test_comparison_and_membership() -> None:
    assert _infer(E("binary", op="<", left=var("s"), right=var("n")))[1] == [
        "VF303:cannot compare a string with a number using '<'"
    ]
    assert _infer(E("binary", op="in", left=var("s"), right=var("n")))[1] == [
        "VF303:'in' needs a list, map or string, not a number"
    ]
    assert _infer(E("binary", op="in", left=var("s"), right=var("l"))) == ("bool", [])


def test_function_calls() -> None:
    assert _infer(E("call", func="upper", args=(var("s"),))) == ("string", [])
    _, issues = _infer(E("call", func="uper", args=(var("s"),)))
    assert issues == ["VF304:unknown function 'uper'"]
    _, issues = _infer(E("call", func="upper", args=(var("n"),)))
    assert issues == ["VF303:argument 1 of upper() must be a string, not a number"]
    _, issues = _infer(E("call", func="len", args=()))
    assert issues == ["VF303:len() takes 1 argument, got 0"]
    assert _infer(E("call", func="max", args=(var("n"), lit("number"), var("n"))))[1] == []


def test_unknown_function_hint() -> None:
    _, issues = infer(E("call", func="uper", args=()), lambda n: "any", FUNCS)
    assert issues[0].hint == "did you mean 'upper'?"


def test_did_you_mean_and_reachable() -> None:
    assert did_you_mean("mneu", ["menu", "main", "goodbye"]) == "menu"
    assert did_you_mean("zzz", ["menu"]) is None
    assert did_you_mean("Menu", ["menu"]) == "menu"
    assert reachable(["a"], {"a": ["b"], "b": ["a", "c"], "d": ["a"]}) == {"a", "b", "c"}


def test_maybe_unset_on_one_branch() -> None:
    g = CFG()
    sp = Span(5, 3, 5, 4)
    entry = g.node()
    left = g.node(assigns=["x"])
    right = g.node()
    join = g.node(uses=[("x", sp, "f.flow")])
    g.edge(entry, left)
    g.edge(entry, right)
    g.edge(left, join)
    g.edge(right, join)
    assert g.maybe_unset(entry) == [("x", sp, "f.flow")]
    g.gen[right] = g.bit("x")
    assert g.maybe_unset(entry) == []


def test_loop_back_edge_and_initial_names() -> None:
    g = CFG()
    sp = Span(1, 1, 1, 2)
    entry = g.node(uses=[("y", sp, "f")])
    body = g.node(assigns=["x"], uses=[("x", sp, "f")])
    g.edge(entry, body)
    g.edge(body, entry)
    g.bit("y")
    assert g.maybe_unset(entry) == [("y", sp, "f"), ("x", sp, "f")]
    assert g.maybe_unset(entry, initially=["y"]) == [("x", sp, "f")]
    dead = g.node(uses=[("x", sp, "f")])
    assert dead not in g.succ[entry]
    assert len(g.maybe_unset(entry, initially=["y"])) == 1
