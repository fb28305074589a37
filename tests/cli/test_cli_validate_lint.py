"""voxflow validate and lint: exit codes, formats, and no tracebacks on broken input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner, Result

from voxflow.cli.main import cli

SCHEMA = json.loads(
    (Path(__file__).parent.parent / "check" / "data" / "sarif-2.1.0-subset.schema.json").read_text(
        encoding="utf-8"
    )
)

CLEAN = """\
flow clean

state start:
    answer
    say "Hello"
    hangup
"""


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def _no_crash(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert not re.search(r'error VF000|title=VF000|"(code|ruleId)": "VF000"', result.output)


def test_validate_requires_a_path() -> None:
    result = _run("validate")
    assert result.exit_code == 2
    assert "Missing argument" in result.output


def test_validate_missing_path_is_usage_error(tmp_path: Path) -> None:
    result = _run("validate", str(tmp_path / "nope.flow"))
    assert result.exit_code == 2
    assert "no such file or directory" in result.output


def test_directory_without_flows_is_usage_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi", encoding="utf-8")
    result = _run("lint", str(tmp_path))
    assert result.exit_code == 2
    assert "no .flow files" in result.output


def test_lint_rejects_unknown_format(tmp_path: Path) -> None:
    result = _run("lint", "--format", "xml", str(tmp_path))
    assert result.exit_code == 2


BROKEN: dict[str, bytes] = {
    "binary.flow": bytes(range(256)) * 8,
    "badutf8.flow": b'flow x\nstate s:\n    say "caf\xe9"\n',
    "huge.flow": b"# filler\n" * (10 * 1024 * 1024 // 9 + 1),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_unreadable_files_are_vf004_not_tracebacks(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(BROKEN[name])
    result = _run("validate", str(path))
    _no_crash(result)
    assert result.exit_code == 1
    assert f"{path}:" in result.output
    assert "error VF004" in result.output


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_every_format_reports_vf004(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "bin.flow"
    path.write_bytes(b"\x00\x01garbage")
    result = _run("lint", "--format", fmt, str(path))
    _no_crash(result)
    assert result.exit_code == 1
    if fmt == "json":
        doc = json.loads(result.stdout)
        assert doc["summary"]["errors"] == 1
        assert doc["diagnostics"][0]["code"] == "VF004"
    elif fmt == "sarif":
        doc = json.loads(result.stdout)
        jsonschema.validate(doc, SCHEMA)
        res = doc["runs"][0]["results"][0]
        assert res["ruleId"] == "VF004" and res["level"] == "error"
        rules = doc["runs"][0]["tool"]["driver"]["rules"]
        assert rules[res["ruleIndex"]]["id"] == "VF004"
    elif fmt == "github":
        assert result.stdout.startswith("::error file=")
        assert "title=VF004::" in result.stdout
    else:
        assert "error VF004" in result.stdout


def test_sarif_for_clean_input_is_valid(tmp_path: Path) -> None:
    (tmp_path / "a.flow").write_text(CLEAN, encoding="utf-8")
    result = _run("lint", "--format", "sarif", str(tmp_path))
    _no_crash(result)
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert doc["version"] == "2.1.0"


def test_directory_recursion_finds_nested_flows(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "x.flow").write_bytes(b"\x00")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "y.flow").write_bytes(b"\x00")
    (tmp_path / "ignored.txt").write_bytes(b"\x00")
    result = _run("lint", "--format", "json", str(tmp_path))
    doc = json.loads(result.stdout)
    assert [Path(f).name for f in doc["files"]] == ["x.flow"]
