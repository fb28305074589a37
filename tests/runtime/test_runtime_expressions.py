"""Expression evaluation: typed values, whitelisted functions, clear errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from _runtime_flowkit import binop, fn, lit, var

from voxflow.errors import ExpressionError
from voxflow.ir import models as ir
from voxflow.runtime.expressions import UNSET, EvalContext, evaluate, is_open

NAMES: dict[str, Any] = {"n": 7, "s": "Hello", "xs": [1, 2, 3], "m": {"a": 1}, "u": UNSET}
# 2026-11-24 is a Tuesday; 14:30 UTC
NOW = datetime(2026, 11, 24, 14, 30, tzinfo=UTC).timestamp()


def ev(e: Any, tz: str = "UTC") -> Any:
    def lookup(name: str) -> Any:
        if name not in NAMES:
            raise ExpressionError(f"unknown name {name}")
        return NAMES[name]

    return evaluate(e, EvalContext(lookup, now=NOW, timezone=tz))


def test_arithmetic_and_comparison() -> None:
    assert ev(binop("+", var("n"), lit(3))) == 10
    assert ev(binop("/", lit(7), lit(2))) == 3.5
    assert ev(binop("/", lit(8), lit(2))) == 4
    assert ev(binop("%", var("n"), lit(4))) == 3
    assert ev(binop("+", var("s"), lit(" world"))) == "Hello world"
    assert ev(binop("<", lit("a"), lit("b"))) is True
    assert ev(binop("in", lit(2), var("xs"))) is True
    assert ev(binop("in", lit("a"), var("m"))) is True
    assert ev(binop("==", lit(1), lit(True))) is False  # bool is not a number
    assert ev(ir.UnaryExpr(op="not", operand=lit(False))) is True


def test_short_circuit_does_not_evaluate_right_side() -> None:
    assert ev(binop("or", lit(True), binop("/", lit(1), lit(0)))) is True
    assert ev(binop("and", lit(False), var("nope"))) is False


def test_type_errors_are_expression_errors() -> None:
    for bad in (
        binop("+", lit("a"), lit(1)),
        binop("<", lit("a"), lit(1)),
        binop("/", lit(1), lit(0)),
        binop("-", lit(True), lit(1)),
        ir.IndexExpr(target=var("xs"), index=lit(9)),
        ir.AttrExpr(target=var("m"), name="zz"),
        fn("int", lit("abc")),
        fn("matches", lit("x"), lit("(")),
        fn("nosuch"),
    ):
        with pytest.raises(ExpressionError):
            ev(bad)


def test_unset_variables() -> None:
    with pytest.raises(ExpressionError, match="not set"):
        ev(var("u"))
    assert ev(fn("is_set", var("u"))) is False
    assert ev(fn("is_set", var("n"))) is True
    assert ev(fn("default", var("u"), lit("x"))) == "x"
    assert ev(fn("default", var("n"), lit("x"))) == 7


def test_functions() -> None:
    assert ev(fn("len", var("xs"))) == 3
    assert ev(fn("upper", var("s"))) == "HELLO"
    assert ev(fn("digits", lit("+1 (555) 01"))) == "155501"
    assert ev(fn("int", lit("42"))) == 42
    assert ev(fn("number", lit("2.5"))) == 2.5
    assert ev(fn("str", lit(True))) == "true"
    assert ev(fn("join", var("xs"), lit("-"))) == "1-2-3"
    assert ev(fn("split", lit("a,b"), lit(","))) == ["a", "b"]
    assert ev(fn("max", lit(1), lit(9), lit(3))) == 9
    assert ev(fn("contains", var("s"), lit("ell"))) is True
    assert ev(fn("matches", lit("order 1234"), lit(r"\d{4}"))) is True


def test_time_functions_use_the_given_clock_and_timezone() -> None:
    assert ev(fn("hour")) == 14
    assert ev(fn("weekday")) == 2
    assert ev(fn("hour"), tz="America/New_York") == 9
    assert ev(fn("is_open", lit("mon-fri 09:00-17:00"))) is True
    assert ev(fn("is_open", lit("sat-sun 09:00-17:00, mon 10:00-11:00"))) is False
    with pytest.raises(ExpressionError, match="timezone"):
        ev(fn("hour"), tz="Mars/Base")


def test_is_open_wraps_week_and_rejects_bad_specs() -> None:
    sunday = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    assert is_open("fri-mon 09:00-12:00", sunday)
    assert not is_open("mon-fri 09:00-12:00", sunday)
    with pytest.raises(ExpressionError):
        is_open("weekdays 9-5", sunday)


def test_default_and_is_set_treat_a_missing_map_key_as_unset() -> None:
    from voxflow.errors import ExpressionError
    from voxflow.runtime.expressions import EvalContext, evaluate

    meta = {"metadata": {"plan": "gold"}}
    ctx = EvalContext(lambda name: meta if name == "call" else None, now=0.0)
    missing = ir.AttrExpr(
        target=ir.AttrExpr(target=ir.VarExpr(name="call"), name="metadata"), name="amount_due"
    )
    present = ir.AttrExpr(
        target=ir.AttrExpr(target=ir.VarExpr(name="call"), name="metadata"), name="plan"
    )
    zero = ir.LiteralExpr(type="number", value=0)
    assert evaluate(ir.CallExpr(func="default", args=(missing, zero)), ctx) == 0
    assert evaluate(ir.CallExpr(func="default", args=(present, zero)), ctx) == "gold"
    assert evaluate(ir.CallExpr(func="is_set", args=(missing,)), ctx) is False
    with pytest.raises(ExpressionError, match="no key 'amount_due'"):
        evaluate(missing, ctx)
