"""A flow-level ``on noinput`` handler's ``goto bye`` runs inside a subflow that has no state
``bye``: over real ARI on the sandbox the call leaves the subflow for the flow's ``bye`` (as
``voxflow test`` and ``voxflow graph`` say), instead of erroring with "no state 'bye'"."""

from __future__ import annotations

from pathlib import Path

from _e2e_kit import serving

from voxflow.compiler import compile_flow

FLOW = """flow inherit:
    answers "320"

on noinput:
    say "No answer."
    goto bye
on nomatch -> retry
on exhausted -> bye

subflow ask() -> (ok: bool):
    state s:
        menu "Press 1." timeout 1s:
            1 -> done
    state done:
        return ok = true

state start:
    answer
    call ask() returns (ok as _ok):
        on returned -> yes
        on error -> yes

state yes:
    say "Yes."
    hangup "yes"

state bye:
    say "Bye."
    hangup "bye"
"""


async def test_a_silent_caller_leaves_the_subflow_for_the_flows_state(tmp_path: Path) -> None:
    flow = tmp_path / "inherit.flow"
    flow.write_text(FLOW)
    assert compile_flow(FLOW, str(flow)).ok
    async with serving([flow]) as env:
        call = await env.call("320")
        end = await env.result(call)
        assert await call.wait_hangup(timeout=20)
    assert (end.outcome, end.reason) == ("completed", "bye"), env.lines.get(call.id)
    assert env.states(call)[-1] == "bye", env.lines.get(call.id)
    assert env.said(call) == ["Press 1.", "No answer.", "Bye."], env.lines.get(call.id)
