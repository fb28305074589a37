"""`today()`: the call's date in the flow's time zone, so a holiday list is one line
(`if today() in holidays`); `hour()`/`weekday()` alone cannot tell 25 December."""

from __future__ import annotations

from pathlib import Path

from voxflow.compiler import compile_flow
from voxflow.testing.runner import run_paths

FLOW = """flow t:
    timeout 5s
    timezone "Pacific/Auckland"

var holidays: list = ["2025-12-25", "2026-01-01"]

state start:
    answer
    set day = today()
    if day in holidays:
        say "We are closed for the holiday ({{ day }})."
        hangup
    say "Open on {{ day }}."
    hangup
"""

SCENARIOS = """flow: t.flow
scenarios:
  - name: christmas
    time: "2025-12-25T09:00:00"
    expect: {said: ["closed for the holiday \\\\(2025-12-25\\\\)"]}
  - name: boxing day
    time: "2025-12-26T00:30:00"
    expect: {said: ["^Open on 2025-12-26\\\\.$"]}
"""


def test_today_is_the_date_in_the_flows_time_zone(tmp_path: Path) -> None:
    (tmp_path / "t.flow").write_text(FLOW)
    (tmp_path / "t.test.yaml").write_text(SCENARIOS)
    run = run_paths([tmp_path])
    assert not run.errors
    assert [(o.scenario.name, o.failures) for o in run.outcomes] == [
        ("christmas", []),
        ("boxing day", []),
    ]


def test_today_is_a_clock_function_kept_out_of_templates() -> None:
    text = FLOW.replace("Open on {{ day }}", "Open on {{ today() }}")
    got = [d.message for d in compile_flow(text, "t.flow").diagnostics if d.code == "VF307"]
    assert got and "today() is not available in templates" in got[0]
