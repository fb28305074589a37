"""`voxflow test` checks an agent mock's arguments against the tool's or action's constraints,
as the run time does: an action called with arguments that break them sends no request (the
model gets 'invalid arguments'), and a tool exit whose arguments break them is a scenario
problem (at run time the model is asked again, then the step ends with 'error')."""

from __future__ import annotations

from pathlib import Path

from voxflow.testing.runner import run_paths

FLOW = """flow t:
    timeout 5s

var reason: string = ""
var party: number = 0

state start:
    answer
    agent "You take orders and bookings.":
        action order_status(order: string pattern "^[0-9]{6}$") "Look an order up":
            http get "https://orders.example.com/v1/orders/{{ order }}"
        tool book(party: number min 1 max 8) "Book a table" -> done
        tool human(reason: string) "Hand over" -> done
        on max_turns, timeout, noinput, exhausted, error -> done

state done:
    say "Bye {{ reason }} {{ party }}."
    hangup
"""

SCENARIO = """flow: t.flow
scenarios:
  - name: s
    mocks:
      agent:
        - turns:
            - {caller: "order 12", action: order_status, args: {order: "12"}, reply: "Which?"}
          TOOL
    expect:
      http: []
"""


def _failures(tmp_path: Path, tool: str) -> list[str]:
    (tmp_path / "t.flow").write_text(FLOW)
    (tmp_path / "t.test.yaml").write_text(SCENARIO.replace("TOOL", tool))
    run = run_paths([tmp_path])
    assert not run.errors
    [outcome] = run.outcomes
    return outcome.failures


def test_an_action_with_arguments_that_break_its_pattern_sends_nothing(tmp_path: Path) -> None:
    assert _failures(tmp_path, "tool: human\n          args: {reason: x}") == []


def test_a_tool_exit_with_arguments_that_break_its_constraints_is_a_problem(
    tmp_path: Path,
) -> None:
    got = _failures(tmp_path, "tool: book\n          args: {party: 20}")
    assert len(got) == 1
    assert "agent mock calls tool 'book' with arguments the step refuses" in got[0]
    assert "20" in got[0]
