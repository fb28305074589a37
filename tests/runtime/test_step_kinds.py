"""One table of step kinds (voxflow.spec.steps) checks every stage: grammar and lowering, the IR
models, the step function's executors, the driver's operation handlers and which kinds an
``on hangup`` handler runs. A step kind missing from any stage fails here, by name."""

from __future__ import annotations

import textwrap
import typing
from typing import Any

import pytest
from pydantic import BaseModel

from voxflow.compiler import compile_flow
from voxflow.ir import models as ir
from voxflow.runtime import events as ev
from voxflow.runtime.driver import OP_HANDLERS
from voxflow.runtime.machine import DISPATCH
from voxflow.runtime.step import initial_state, step
from voxflow.spec.steps import HANGUP_SAFE, STEP_KINDS, StepKind

_IR_STEPS: tuple[type[BaseModel], ...] = typing.get_args(typing.get_args(ir.Step)[0])
_TIMERS = (ev.StartTimer, ev.RecordTimer)  # performed by the driver's loop, not a call op


def _ir_op(model: type[BaseModel]) -> str:
    default = model.model_fields["op"].default
    assert isinstance(default, str)
    return default


def _flow_text(kind: StepKind) -> str:
    body = textwrap.indent(kind.example, "    ")
    in_sub = kind.op == "return"
    return (
        'flow kinds:\n    answers "900"\n    retries 2\n\n'
        'var v: string = "x"\nvar r: map\nvar done: bool\n\n'
        "subflow ask(q: string) -> (ok: bool):\n    state s:\n"
        + (textwrap.indent(kind.example, "        ") if in_sub else "        return ok = true")
        + "\n\nstate start:\n"
        + ("    goto other" if in_sub else body + "\n    goto other")
        + "\n\nstate other:\n    hangup\n"
    )


def _ops_in(node: object, found: set[str]) -> None:
    if isinstance(node, BaseModel):
        op = getattr(node, "op", None)
        if isinstance(op, str) and isinstance(node, _IR_STEPS):
            found.add(op)
        for value in node.__dict__.values():
            _ops_in(value, found)
    elif isinstance(node, tuple | list):
        for item in node:
            _ops_in(item, found)
    elif isinstance(node, dict):
        for item in node.values():
            _ops_in(item, found)


def test_the_table_has_one_row_per_ir_step_model() -> None:
    table = [k.op for k in STEP_KINDS]
    assert len(table) == len(set(table)), "an op is listed twice"
    assert set(table) == {_ir_op(m) for m in _IR_STEPS}


@pytest.mark.parametrize("kind", STEP_KINDS, ids=lambda k: k.op)
def test_each_step_kind_parses_and_lowers_to_its_ir_step(kind: StepKind) -> None:
    result = compile_flow(_flow_text(kind), "kinds.flow")
    errors = [d for d in result.diagnostics if d.severity.name == "ERROR"]
    assert result.flow is not None and not errors, (kind.op, errors)
    found: set[str] = set()
    _ops_in(result.flow, found)
    assert kind.op in found, f"'{kind.example}' lowers to {sorted(found)}, not {kind.op}"


@pytest.mark.parametrize("kind", STEP_KINDS, ids=lambda k: k.op)
def test_the_step_function_executes_each_step_kind(kind: StepKind) -> None:
    assert kind.op in DISPATCH, f"no executor for '{kind.op}' in the step function"


def test_the_driver_performs_every_call_operation() -> None:
    ops = {cls for cls in vars(ev).values() if isinstance(cls, type) and issubclass(cls, ev.Op)}
    ops.discard(ev.Op)
    missing = {cls.__name__ for cls in ops - set(OP_HANDLERS) - set(_TIMERS)}
    assert not missing, f"no driver handler for {sorted(missing)}"


@pytest.mark.parametrize("kind", STEP_KINDS, ids=lambda k: k.op)
def test_what_each_step_kind_emits_first_is_a_command_the_driver_performs(kind: StepKind) -> None:
    result = compile_flow(_flow_text(kind), "kinds.flow")
    assert result.flow is not None
    _, commands = step(result.flow, initial_state(result.flow, ev.CallInfo("c")), ev.Start())
    for cmd in commands:
        assert isinstance(cmd, typing.get_args(ev.Command)), cmd
        if isinstance(cmd, ev.Op):
            assert type(cmd) in OP_HANDLERS or isinstance(cmd, _TIMERS), cmd


def test_the_grammar_and_the_table_name_the_same_step_keywords() -> None:
    from voxflow.syntax.parser import step_keywords

    table = {k for kind in STEP_KINDS for k in kind.keywords} - {"elif", "else"}
    assert set(step_keywords()) == table  # a keyword added to one and not the other fails here
    result = compile_flow('flow f:\n    answers "1"\n\nstate s:\n    sya "hi"\n')
    assert any("did you mean 'say'" in (d.hint or "") for d in result.diagnostics)


def _hangup_flow(kind: StepKind) -> str:
    handler = "on hangup:\n" + textwrap.indent(kind.example, "    ") + '\n    log "handler end"\n'
    return (
        'flow kinds:\n    answers "900"\n    retries 2\n\n'
        'var v: string = "x"\nvar r: map\nvar done: bool\n\n'
        "subflow ask(q: string) -> (ok: bool):\n    state s:\n        return ok = true\n\n"
        + handler
        + '\nstate start:\n    hangup "bye"\n\nstate other:\n    hangup\n'
    )


@pytest.mark.parametrize("kind", [k for k in STEP_KINDS if k.op != "return"], ids=lambda k: k.op)
def test_an_on_hangup_handler_runs_exactly_the_hangup_safe_step_kinds(
    kind: StepKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table's ``hangup_safe`` column decides: a safe step's executor runs in the handler,
    any other step is passed over (``return`` only ends a subflow, never in a handler)."""
    result = compile_flow(_hangup_flow(kind), "kinds.flow")
    errors = [d for d in result.diagnostics if d.severity.name == "ERROR"]
    assert result.flow is not None and not errors, (kind.op, errors)
    ran: list[str] = []
    for op, executor in list(DISPATCH.items()):

        def spy(m: Any, s: Any, _op: str = op, _run: Any = executor) -> None:
            if m.status == "hangup_handler":
                ran.append(_op)
            _run(m, s)

        monkeypatch.setitem(DISPATCH, op, spy)
    step(result.flow, initial_state(result.flow, ev.CallInfo("c")), ev.Start())
    assert (kind.op in ran) is kind.hangup_safe, (kind.op, ran)
    assert HANGUP_SAFE == {k.op for k in STEP_KINDS if k.hangup_safe}
