"""Flow scenarios in virtual time: simulation, expectations, coverage, JUnit and the CLI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from voxflow.cli.main import cli
from voxflow.compiler.frontdoor import compile_flow
from voxflow.errors import ConfigError
from voxflow.ir.models import Flow
from voxflow.testing import (
    FlowCoverage,
    check_expectations,
    junit_xml,
    parse_scenario_text,
    run_paths,
    run_scenario,
)

SMALL = """\
flow small:
    answers "200"
    retries 2

state start:
    answer
    menu "Press 1 for yes, 2 for no.":
        1 -> yes
        2 -> no
        on noinput -> bye
        on nomatch:
            say "Try again."
            retry
        on exhausted -> bye
        on error -> bye

state yes:
    say "Yes!"
    hangup

state no:
    say "No."
    goto bye

state bye:
    say "Bye."
    hangup
"""


def small_flow(tmp_path: Path) -> Flow:
    (tmp_path / "small.flow").write_text(SMALL)
    result = compile_flow(SMALL, str(tmp_path / "small.flow"))
    assert result.flow is not None, result.diagnostics
    return result.flow


def scenarios(text: str) -> list:  # type: ignore[type-arg]
    sf = parse_scenario_text("flow: small.flow\nscenarios:\n" + text)
    return [(sc, sf.defaults) for sc in sf.scenarios]


def test_dtmf_choice_runs_in_virtual_time(tmp_path: Path) -> None:
    flow = small_flow(tmp_path)
    [(sc, d)] = scenarios("  - name: pick yes\n    steps: [{press: 1}]\n")
    res = run_scenario(flow, sc, d)
    assert res.states == ["start", "yes"]
    assert res.said == ["Press 1 for yes, 2 for no.", "Yes!"]
    assert res.ended == ("completed", "normal")
    assert not res.problems
    # the prompt is 7 words * 0.4 s, the caller reacts in 0.3 s, "Yes!" lasts 0.5 s
    assert res.ended_at == pytest.approx(2.8 + 0.3 + 0.5)


def test_long_timeouts_cost_no_wall_time_and_are_deterministic(tmp_path: Path) -> None:
    flow = small_flow(tmp_path)
    [(sc, d)] = scenarios("  - name: silent\n    steps: [{silence: 30s}]\n")
    first = run_scenario(flow, sc, d)
    second = run_scenario(flow, sc, d)
    assert first.states == ["start", "bye"]
    # the noinput timer is the flow's 5 s default, counted after the 2.8 s prompt
    assert first.ended_at == pytest.approx(2.8 + 5.0 + 0.5)
    assert [t.render() for t in first.trace] == [t.render() for t in second.trace]


def test_nomatch_retry_then_choice(tmp_path: Path) -> None:
    flow = small_flow(tmp_path)
    [(sc, d)] = scenarios("  - name: n\n    steps: [{press: 9}, {press: 2}]\n")
    res = run_scenario(flow, sc, d)
    assert res.states == ["start", "no", "bye"]
    assert res.said.count("Press 1 for yes, 2 for no.") == 2
    assert "Try again." in res.said


def test_speech_bargein_and_hangup_timing(tmp_path: Path) -> None:
    flow = small_flow(tmp_path)
    [(a, d), (b, _)] = scenarios(
        "  - name: barge\n    steps: [{press: 2, bargein: 1s}]\n"
        "  - name: gone\n    steps: [{hangup: , at: 1.5s}]\n"
    )
    res = run_scenario(flow, a, d)
    assert res.states == ["start", "no", "bye"]
    assert any("barge-in" in t.text for t in res.trace)
    gone = run_scenario(flow, b, d)
    assert gone.ended is not None and gone.ended[0] == "caller_hangup"
    assert gone.ended_at == pytest.approx(1.5)


def test_failing_expectations_name_what_differs(tmp_path: Path) -> None:
    flow = small_flow(tmp_path)
    [(sc, d)] = scenarios(
        "  - name: wrong\n    steps: [{press: 1}]\n    expect:\n"
        "      said: ['^No']\n      states: [start, no]\n      variables: {x: 1}\n"
        "      ended: {outcome: transferred, before: 1s}\n"
    )
    res = run_scenario(flow, sc, d)
    failures = check_expectations(sc.expect, res)
    text = "\n".join(failures)
    assert "said: nothing matched /^No/" in text
    assert "states: 'no' was not visited" in text and "start -> yes" in text
    assert "variables: 'x' is unset" in text
    assert "outcome is completed" in text and "expected before 1s" in text


def test_coverage_numbers_on_a_small_flow(tmp_path: Path) -> None:
    flow = small_flow(tmp_path)
    cov = FlowCoverage("small.flow", flow)
    assert cov.transitions() == (0, 9)
    for sc, d in scenarios(
        "  - name: pick yes\n    steps: [{press: 1}]\n"
        "  - name: no after nomatch\n    steps: [{press: 9}, {press: 2}]\n"
    ):
        cov.add(run_scenario(flow, sc, d).hits)
    assert cov.states() == (4, 4)
    # taken: choice:1->yes, yes->hangup, nomatch->retry, choice:2->no, no->bye, bye->hangup
    assert cov.transitions() == (6, 9)
    assert cov.branches() == (3, 6)
    missing = cov.missing()
    assert "transition start --noinput--> bye (line 10)" in missing
    assert "transition start --exhausted--> bye (line 14)" in missing
    assert any(m.startswith("branch start at gather: error") for m in missing)


def write_suite(tmp_path: Path, body: str) -> Path:
    (tmp_path / "small.flow").write_text(SMALL)
    tests = tmp_path / "tests"
    tests.mkdir(exist_ok=True)
    path = tests / "small.test.yaml"
    path.write_text("flow: ../small.flow\nscenarios:\n" + body)
    return path


PASSING = "  - name: pick yes\n    steps: [{press: 1}]\n    expect: {states: [start, yes]}\n"
FAILING = (
    "  - name: expects the wrong state\n    steps:\n      - press: 2\n    expect: {states: [yes]}\n"
)


def test_cli_reports_failure_with_scenario_step_and_trace(tmp_path: Path) -> None:
    write_suite(tmp_path, PASSING + FAILING)
    result = CliRunner().invoke(cli, ["test", str(tmp_path)])
    assert result.exit_code == 1, result.output
    out = result.output
    assert out.rstrip().splitlines()[-1] == "1 passed, 1 failed"
    assert "FAIL  expects the wrong state" in out
    assert "small.test.yaml:6" in out  # the scenario's line
    assert "step 1: press 2 (line 8)" in out
    assert "enters state no" in out  # the trace


def test_cli_min_coverage_gate_and_junit(tmp_path: Path) -> None:
    write_suite(tmp_path, PASSING)
    junit = tmp_path / "out" / "junit.xml"
    runner = CliRunner()
    low = runner.invoke(cli, ["test", str(tmp_path), "--min-coverage", "90", "--junit", str(junit)])
    assert low.exit_code == 1, low.output
    assert "transitions 2/9 (22.2%), branches 1/6 (16.7%)  BELOW" in low.output
    assert low.output.rstrip().splitlines()[-1] == "1 passed, 0 failed"
    root = ET.fromstring(junit.read_bytes())
    assert root.tag == "testsuites" and root.get("tests") == "1" and root.get("failures") == "0"
    case = root.find("testsuite/testcase")
    assert case is not None and case.get("name") == "pick yes" and case.get("classname") == "small"
    ok = runner.invoke(cli, ["test", str(tmp_path), "--min-coverage", "20"])
    assert ok.exit_code == 0, ok.output


def test_junit_marks_failures(tmp_path: Path) -> None:
    write_suite(tmp_path, PASSING + FAILING)
    root = ET.fromstring(junit_xml(run_paths([tmp_path])))
    assert root.get("failures") == "1"
    failure = root.find(".//testcase[@name='expects the wrong state']/failure")
    assert failure is not None and "states:" in (failure.get("message") or "")


def test_untested_flow_counts_as_zero_coverage(tmp_path: Path) -> None:
    write_suite(tmp_path, PASSING)
    (tmp_path / "other.flow").write_text(SMALL.replace("flow small", "flow other"))
    run = run_paths([tmp_path])
    assert [Path(p).name for p in run.untested] == ["other.flow"]
    result = CliRunner().invoke(cli, ["test", str(tmp_path), "--min-coverage", "10"])
    assert result.exit_code == 1
    assert "other (" in result.output and "(no scenarios)" in result.output


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  - name: a\n    steps: [{prss: 1}]\n", ":4: scenarios.0.steps.0: unknown key 'prss'"),
        ("  - name: a\n    steps: [{press: x}]\n", "is not DTMF"),
        ("  - name: a\n    steps: [{silence: forever}]\n", "invalid duration"),
        ("  - steps: []\n", "'name' is required"),
        ("  - name: a\n    expect: {said: ['(']}\n", "invalid regular expression"),
        ("  - name: a\n    mocks: {agent: [{turns: []}]}\n", "exactly one of 'tool' or 'outcome'"),
    ],
)
def test_bad_scenario_files_name_the_line(body: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_scenario_text("flow: x.flow\nscenarios:\n" + body, name="s.test.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("s.test.yaml:")


def test_yes_and_no_stay_strings() -> None:
    sf = parse_scenario_text(
        "flow: x.flow\nscenarios:\n  - name: yes\n    expect: {states: [no, on], "
        "variables: {ok: true, answer: yes}}\n"
    )
    sc = sf.scenarios[0]
    assert sc.name == "yes" and sc.expect.states == ("no", "on")
    assert sc.expect.variables == {"ok": True, "answer": "yes"}


def test_cli_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["test", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    empty = runner.invoke(cli, ["test", str(tmp_path)])
    assert empty.exit_code == 2 and "no scenario files" in empty.output
    bad = write_suite(tmp_path, "  - name: a\n    steps: [{prss: 1}]\n")
    broken = runner.invoke(cli, ["test", str(bad)])
    assert broken.exit_code == 1
    assert "unknown key 'prss'" in broken.output and "Traceback" not in broken.output


def test_example_suite_passes_with_metadata_and_clock() -> None:
    root = Path(__file__).resolve().parents[2]
    run = run_paths([root / "flows"])
    assert run.errors == [] and run.outcomes
    failed = [o.scenario.name for o in run.outcomes if not o.passed]
    assert failed == []
    assert not run.untested
