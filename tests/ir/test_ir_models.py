"""IR model contract: frozen, strict, discriminated, JSON round-trip."""

from __future__ import annotations

import pydantic
import pytest

from voxflow.ir import (
    SCHEMA_VERSION,
    BargeIn,
    BinaryExpr,
    Choice,
    Flow,
    GatherStep,
    GotoStep,
    Handler,
    LiteralExpr,
    RetryStep,
    SayStep,
    SetStep,
    Span,
    State,
    Template,
    VarExpr,
)

SP = Span(file="t.flow", line=1, col=1, end_line=1, end_col=5)


def _flow() -> Flow:
    retry = Handler(count=1, origin="state", steps=(RetryStep(span=SP),), span=SP)
    out = Handler(count=3, origin="flow", steps=(GotoStep(state="bye", span=SP),), span=SP)
    gather = GatherStep(
        span=SP,
        var="dept",
        prompt=Template(source="Hi {{ name }}", names=("name",)),
        choices=(Choice(value="sales", keys=("1",), phrases=("sales",), span=SP),),
        interdigit_ms=3000,
        timeout_ms=5000,
        bargein=BargeIn(mode="dtmf"),
        on={"noinput": (out, retry), "choice:sales": (out,)},
    )
    set_step = SetStep(
        span=SP,
        var="n",
        value=BinaryExpr(op="+", left=VarExpr(name="n"), right=LiteralExpr(type="number", value=1)),
    )
    menu = State(name="menu", steps=(set_step, gather), span=SP, max_attempts=3)
    bye = State(
        name="bye",
        steps=(SayStep(span=SP, text=Template(source="Bye"), bargein=BargeIn()),),
        span=SP,
    )
    return Flow(name="t", file="t.flow", initial="menu", states={"menu": menu, "bye": bye}, span=SP)


def test_flow_json_round_trips() -> None:
    flow = _flow()
    text = flow.model_dump_json()
    again = Flow.model_validate_json(text)
    assert again == flow
    assert again.schema_version == SCHEMA_VERSION
    step = again.states["menu"].steps[1]
    assert isinstance(step, GatherStep)
    assert step.on["noinput"][0].count == 3
    value = again.states["menu"].steps[0]
    assert isinstance(value, SetStep) and isinstance(value.value, BinaryExpr)


def test_models_are_frozen_and_strict() -> None:
    flow = _flow()
    with pytest.raises(pydantic.ValidationError):
        flow.name = "other"  # type: ignore[misc]
    data = flow.model_dump(mode="json")
    data["surprise"] = 1
    with pytest.raises(pydantic.ValidationError):
        Flow.model_validate(data)


def test_unknown_op_and_schema_version_are_rejected() -> None:
    data = _flow().model_dump(mode="json")
    data["states"]["bye"]["steps"][0]["op"] = "exec_python"
    with pytest.raises(pydantic.ValidationError):
        Flow.model_validate(data)
    data = _flow().model_dump(mode="json")
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(pydantic.ValidationError):
        Flow.model_validate(data)
