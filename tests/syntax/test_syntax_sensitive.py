"""``var x: type sensitive`` marks a variable whose value is redacted wherever the call shows."""

from __future__ import annotations

from voxflow.compiler import compile_flow

FLOW = """\
flow s:
    answers "1"

var card: string sensitive
var pin: string = "" sensitive
var sensitive_count: number = 1

state start:
    answer
    gather "Card?" into card:
        on noinput, nomatch -> retry
        on exhausted -> bye
    say "{{ pin }}{{ sensitive_count }}"
    goto bye

state bye:
    hangup
"""


def test_sensitive_variables_reach_the_ir() -> None:
    result = compile_flow(FLOW, "s.flow")
    assert result.flow is not None, result.diagnostics
    marks = {v.name: v.sensitive for v in result.flow.variables}
    assert marks == {"card": True, "pin": True, "sensitive_count": False}
