"""Lint follows a flow-level handler's goto out of a subflow that inherits it (the run time
leaves the subflow for the flow's state): the target is reachable (no VF201), and a variable the
flow sets only after the ``call`` step may be unset there (VF301)."""

from __future__ import annotations

from voxflow.compiler.frontdoor import compile_flow
from voxflow.ir.flowmap import build_flowmap

FLOW = """\
flow g:
    answers "901"

var later: string
var before: string

on noinput -> bye
on nomatch -> retry
on exhausted -> bye

subflow ask() -> (ok: bool):
    state s:
        menu "Press 1.":
            1 -> done
    state done:
        return ok = true

subflow outer() -> (ok: bool):
    state o:
        call ask() returns (ok):
            on returned:
                return ok = ok

state start:
    answer
    set before = "b"
    call CALLED() returns (ok as _ok):
        on returned -> yes
        on error -> yes

state yes:
    set later = "y"
    say "Yes {{ later }}."
    hangup

state bye:
    say "Bye {{ before }} READ."
    hangup
"""


def _codes(text: str) -> list[tuple[str, int, str]]:
    result = compile_flow(text, "g.flow")
    out = [(d.code, d.span.line, d.message) for d in result.diagnostics]
    return [c for c in out if c[0] != "VF306"]  # 'outer' is called in one of the variants


def test_the_flows_state_is_reached_through_the_subflow() -> None:
    for called in ("ask", "outer"):
        codes = _codes(FLOW.replace("CALLED", called).replace(" READ", ""))
        assert codes == [], (called, codes)
        flow = compile_flow(FLOW.replace("CALLED", called).replace(" READ", ""), "g.flow").flow
        assert flow is not None and "bye" in build_flowmap(flow).reachable  # voxflow graph


def test_a_variable_set_after_the_call_may_be_unset_there() -> None:
    codes = _codes(FLOW.replace("CALLED", "ask").replace("READ", "{{ later }}"))
    assert [(c[0], "'later'" in c[2]) for c in codes] == [("VF301", True)], codes


def test_without_the_escape_the_state_is_unreachable() -> None:
    text = FLOW.replace("CALLED", "ask").replace(" READ", "")
    text = text.replace("on noinput -> bye", "on noinput -> retry")
    text = text.replace("on exhausted -> bye", "on exhausted -> yes")
    assert [c[0] for c in _codes(text)] == ["VF201"]


LOOP = """\
flow l:
    answers "902"

var n: number = 0

on noinput -> start
on nomatch -> retry
on exhausted -> bye

subflow ask() -> (ok: bool):
    state s:
        menu "Press 1.":
            1 -> done
    state done:
        return ok = true

state start:
    answer
    COUNT
    call ask() returns (ok as _ok):
        on returned -> bye
        on error -> bye

state bye:
    say "Bye."
    hangup
"""


def test_a_goto_back_to_the_calling_state_is_an_unbounded_loop() -> None:
    codes = _codes(LOOP.replace("    COUNT\n", "").replace("var n: number = 0\n", ""))
    assert [c[0] for c in codes] == ["VF204"], codes
    assert "ask.s --noinput--> start --> call ask()" in codes[0][2], codes
    # counted in the calling state: bounded
    count = "    set n = n + 1\n    if n > 3:\n        goto bye\n"
    assert _codes(LOOP.replace("    COUNT\n", count)) == []
