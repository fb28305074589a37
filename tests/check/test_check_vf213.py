"""VF213: a ``return`` that can run in the main flow, where there is no subflow to return to: it
hangs up the call (outcome ``completed``, reason ``return``). Written in a main-flow state it is
a roundabout ``hangup``; in a flow-level handler it returns from a subflow but hangs up when the
same handler runs in the main flow. The checker says so; a return that can only run in subflows
is quiet."""

from __future__ import annotations

from voxflow.compiler import compile_flow

SUB = """
subflow ask() -> (x: bool):
    state s:
        menu "Press 1 to pick.":
            1 -> ok
    state ok:
        return x = true
"""

MAIN = (
    """flow t:
    answers "100"
    retries 2

var picked: bool = false

on noinput, nomatch -> retry
HANDLER
state start:
    answer
    call ask() returns (x as picked):
        on returned -> main

state main:
    menu "Press 1 to end.":
        1 -> bye
MAIN_HANDLER
state bye:
    hangup "done"
"""
    + SUB
)


def _vf213(source: str) -> list[tuple[int, str, str]]:
    diags = compile_flow(source, "t.flow").diagnostics
    return [(d.span.line, d.message, d.severity.value) for d in diags if d.code == "VF213"]


def _flow(handler: str, main_handler: str = "") -> str:
    return MAIN.replace("HANDLER\n", handler, 1).replace("MAIN_HANDLER\n", main_handler)


def test_a_flow_level_return_that_runs_in_the_main_flow_is_reported() -> None:
    found = _vf213(_flow('on exhausted:\n    say "Sorry."\n    return\n'))
    assert [(line, sev) for line, _, sev in found] == [(10, "warning")]
    message = found[0][1]
    assert "state 'main'" in message and "hangs up the call" in message
    assert "(in subflow 'ask' it returns to the call step)" in message


def test_a_flow_level_return_the_main_flow_never_reaches_is_quiet() -> None:
    handled = "        on exhausted -> bye\n"
    assert _vf213(_flow("on exhausted -> return\n", handled)) == []


def test_a_return_written_in_a_main_flow_state_is_reported() -> None:
    src = _flow("on exhausted -> bye\n").replace('    hangup "done"\n', "    return\n")
    found = _vf213(src)
    assert [line for line, _, _ in found] == [18]
    assert "there is no subflow to return to" in found[0][1]


def test_returns_in_subflows_are_quiet() -> None:
    assert _vf213(_flow("on exhausted -> bye\n")) == []
