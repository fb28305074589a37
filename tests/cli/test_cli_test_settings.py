"""``voxflow test`` and ``voxflow replay`` read the settings that change what a call does
(``[run] hangup_timeout``, ``[run] max_steps``) from where ``voxflow run`` reads them: ``--config
FILE``, else ``./voxflow.toml``, and the environment, with the same validation and exit 2 for a
bad value (the file and key named); a command-line option overrides the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from voxflow.cli.main import cli

FLOW = """flow bye:
    answers "300"

var _a: map
var n: number = 0

on hangup:
    http post "https://crm.example.test/crm" timeout 30s into _a

state start:
    answer
    set n = n + 1
    set n = n + 1
    set n = n + 1
    set n = n + 1
    hangup "done"
"""

SCENARIOS = """flow: bye.flow
scenarios:
  - name: slow crm
    mocks: {http: [{url: /crm, delay: 8s}]}
    expect:
      ended: {outcome: completed, reason: done}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory (the working directory) with a flow and its scenario file, and no
    VOXFLOW_* variable in the environment."""
    (tmp_path / "bye.flow").write_text(FLOW)
    (tmp_path / "bye.test.yaml").write_text(SCENARIOS)
    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith("VOXFLOW_")]:
        monkeypatch.delenv(var)
    return tmp_path


def _test(*args: str) -> Result:
    result = CliRunner().invoke(cli, ["test", "bye.test.yaml", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_without_settings_the_body_runs_to_its_end(project: Path) -> None:
    result = _test()
    assert result.exit_code == 0, result.output


def test_the_files_hangup_timeout_cuts_as_on_a_call(project: Path) -> None:
    (project / "voxflow.toml").write_text("[run]\nhangup_timeout = 5\n")
    result = _test()
    assert result.exit_code == 1, result.output
    assert "on hangup body was cut after 5 s" in result.output


def test_config_option_names_the_file(project: Path) -> None:
    (project / "prod.toml").write_text("[run]\nhangup_timeout = 5\n")
    assert _test().exit_code == 0  # not ./voxflow.toml: not read
    result = _test("--config", "prod.toml")
    assert result.exit_code == 1 and "cut after 5 s" in result.output, result.output


def test_the_command_line_overrides_the_file(project: Path) -> None:
    (project / "voxflow.toml").write_text("[run]\nhangup_timeout = 5\n")
    result = _test("--hangup-timeout", "20")
    assert result.exit_code == 0, result.output
    (project / "voxflow.toml").write_text("[run]\nhangup_timeout = 20\n")
    result = _test("--hangup-timeout", "5")
    assert result.exit_code == 1 and "cut after 5 s" in result.output, result.output


def test_the_files_step_budget_is_the_calls(project: Path) -> None:
    (project / "voxflow.toml").write_text("[run]\nmax_steps = 3\n")
    result = _test()
    assert result.exit_code == 1, result.output
    assert "step budget exceeded" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[run]\nhangup_timeout = -1\n", "voxflow.toml [run] hangup_timeout: "),
        ("[run]\nhangup_timeout = 'soon'\n", "voxflow.toml [run] hangup_timeout: expected a"),
        ("[run]\nmax_steps = 0\n", "voxflow.toml [run] max_steps: must be at least 1, got 0"),
        ("[run]\nhangup_timout = 5\n", "voxflow.toml: unknown setting run.hangup_timout"),
        ("[run\n", "voxflow.toml: invalid TOML"),
    ],
)
def test_a_bad_setting_is_exit_2_naming_file_and_key(
    project: Path, text: str, message: str
) -> None:
    (project / "voxflow.toml").write_text(text)
    for command in (["test", "bye.test.yaml"], ["run", "bye.flow", "--no-audio"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2, result.output
        assert f"error: {project / message}" in result.stderr, (command, result.stderr)
        assert "Traceback" not in result.output


def test_a_bad_option_or_missing_file_is_exit_2(project: Path) -> None:
    result = _test("--hangup-timeout", "0")
    assert result.exit_code == 2
    assert "error: --hangup-timeout: " in result.stderr, result.stderr
    result = _test("--config", "nope.toml")
    assert result.exit_code == 2 and "error: config file not found: nope.toml" in result.stderr


def test_the_environment_is_read_as_by_run(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad value in the environment is the run's error too (the same validation); a
    telephony-only one that is valid changes nothing."""
    monkeypatch.setenv("VOXFLOW_ARI_URL", "http://127.0.0.1:8088/ari")
    monkeypatch.setenv("VOXFLOW_RTP_PORTS", "40000-40999")
    assert _test().exit_code == 0
    monkeypatch.setenv("VOXFLOW_RTP_PORTS", "9-8")
    result = _test()
    assert result.exit_code == 2
    assert "error: environment variable VOXFLOW_RTP_PORTS: " in result.stderr, result.stderr


def _trace(project: Path, started: dict[str, object]) -> Path:
    """A trace of the call as voxflow run writes it: the on hangup request answered 8 s on."""
    records = [
        {"type": "call.started", "t": 0.0, "flow": "bye", "caller": "+1555", "called": "300",
         "started": 1767225600.0, "routes": True, "requests": True, **started},
        {"type": "state.entered", "t": 0.0, "state": "start"},
        {"type": "hangup", "t": 0.1, "by": "flow"},
        {"type": "http", "t": 0.1, "method": "POST", "url": "https://crm.example.test/crm",
         "status": 200, "ms": 8000.0},
        {"type": "call.ended", "t": 8.2, "outcome": "completed", "reason": "done"},
    ]  # fmt: skip
    path = project / "call.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_replay_takes_the_traced_values_over_the_file(project: Path) -> None:
    (project / "voxflow.toml").write_text("[run]\nhangup_timeout = 5\nmax_steps = 3\n")
    trace = _trace(project, {"hangup_timeout": 60.0, "max_steps": 1000})
    result = CliRunner().invoke(cli, ["replay", str(trace), "--flow", "bye.flow"])
    assert "cut after" not in result.output and "step budget" not in result.output, result.output


def test_replay_of_a_trace_without_them_reads_the_settings(project: Path) -> None:
    (project / "voxflow.toml").write_text("[run]\nmax_steps = 3\n")
    trace = _trace(project, {"hangup_timeout": 60.0})
    result = CliRunner().invoke(cli, ["replay", str(trace), "--flow", "bye.flow"])
    assert result.exit_code == 1 and "step budget exceeded" in result.output, result.output
    (project / "voxflow.toml").write_text("[run]\nmax_steps = -3\n")
    result = CliRunner().invoke(cli, ["replay", str(trace), "--flow", "bye.flow"])
    assert result.exit_code == 2, result.output
    assert f"error: {project}/voxflow.toml [run] max_steps: must be at least 1" in result.stderr


BUDGET_FLOW = """flow budget:
    answers "300"

var n: number = 0

state start:
    answer
    set n = n + 1
    set n = n + 1
    set n = n + 1
    set n = n + 1
    hangup "done"
"""


def test_a_run_trace_replays_with_the_runs_settings(project: Path) -> None:
    """``voxflow run`` (sandbox) with ``[run] max_steps = 3`` ends in ``error``; its trace's
    ``call.started`` records the budget and the ceiling, so a replay without the file ends the
    same (with the default budget the call would complete)."""
    (project / "budget.flow").write_text(BUDGET_FLOW)
    (project / "caller.txt").write_text("wait 1s\nhangup\n")
    (project / "voxflow.toml").write_text("[run]\nmax_steps = 3\nhangup_timeout = 7\n")
    argv = ["run", "budget.flow", "--no-audio", "--no-warm-prompts", "--caller", "caller.txt"]
    result = CliRunner().invoke(cli, [*argv, "--trace", "traces"])
    assert result.exit_code == 1, result.output  # the outcome error
    [trace] = (project / "traces").glob("*.jsonl")
    started = json.loads(trace.read_text().splitlines()[0])
    assert (started["max_steps"], started["hangup_timeout"]) == (3, 7.0)
    (project / "voxflow.toml").unlink()
    result = CliRunner().invoke(cli, ["replay", str(trace), "--flow", "budget.flow"])
    assert result.exit_code == 0, result.output
