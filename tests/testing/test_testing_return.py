"""``return`` in a flow-level handler leaves the subflow the call is in, and hangs up in the main
flow (there is no subflow to return to): the same in ``voxflow test`` and on the sandbox (lint
warns about it, VF213)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from voxflow.cli.main import cli
from voxflow.testing.runner import run_paths

FLOW = """flow t:
    answers "100"
    retries 2

var picked: bool = false

on noinput, nomatch -> retry
on exhausted:
    say "Sorry."
    return

state start:
    answer
    call ask() returns (x as picked):
        on returned -> main

state main:
    menu "Press 1 to end.":
        1 -> bye

state bye:
    hangup "done"

subflow ask() -> (x: bool):
    state s:
        menu "Press 1 to pick.":
            1 -> ok
    state ok:
        return x = true
"""

SCENARIO = """flow: t.flow
scenarios:
  - name: silent
    steps: []
    expect:
      said: ["Press 1 to pick", "Sorry", "Press 1 to end", "Sorry"]
      states: [start, ask.s, main]
      ended: {outcome: completed, reason: return}
"""


def test_voxflow_test_returns_from_the_subflow_and_hangs_up_in_the_main_flow(
    tmp_path: Path,
) -> None:
    (tmp_path / "t.flow").write_text(FLOW)
    (tmp_path / "t.test.yaml").write_text(SCENARIO)
    run = run_paths([tmp_path])
    assert not run.errors
    assert [o.failures for o in run.outcomes] == [[]]


def test_the_sandbox_run_does_the_same(tmp_path: Path) -> None:
    (tmp_path / "t.flow").write_text(FLOW)
    (tmp_path / "caller.txt").write_text("wait 40s\n")
    args = ["run", str(tmp_path / "t.flow"), "--no-audio", "--virtual-time",
            "--caller", str(tmp_path / "caller.txt")]  # fmt: skip
    result = CliRunner().invoke(cli, args, env={})
    out = result.output
    assert result.exit_code == 0, out
    assert out.count("Sorry.") == 2 and out.index("-> main") > out.index("Sorry.")
    assert "outcome: completed (return)" in out


def test_lint_warns_about_the_return_that_hangs_up(tmp_path: Path) -> None:
    (tmp_path / "t.flow").write_text(FLOW)
    result = CliRunner().invoke(cli, ["lint", str(tmp_path / "t.flow")])
    assert "10:5: warning VF213" in result.output, result.output
