"""``voxflow compile``: IR JSON on success, diagnostics and exit codes otherwise."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from voxflow.cli.main import cli
from voxflow.ir import Flow

ROOT = Path(__file__).resolve().parents[2]


def test_compile_prints_ir_json() -> None:
    result = CliRunner().invoke(cli, ["compile", str(ROOT / "flows" / "voicemail.flow")])
    assert result.exit_code == 0, result.output
    flow = Flow.model_validate_json(result.stdout)
    assert flow.name == "voicemail" and flow.initial == "start"


def test_compile_writes_output_file(tmp_path: Path) -> None:
    out = tmp_path / "ir.json"
    result = CliRunner().invoke(
        cli, ["compile", str(ROOT / "flows" / "main_ivr.flow"), "-o", str(out), "--indent", "0"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["schema_version"] == 1 and "main_menu" in data["states"]


def test_compile_errors_exit_1_with_diagnostics(tmp_path: Path) -> None:
    bad = tmp_path / "bad.flow"
    bad.write_text("state main\n    answer\n", encoding="utf-8")
    out = tmp_path / "never.json"
    result = CliRunner().invoke(cli, ["compile", str(bad), "-o", str(out)])
    assert result.exit_code == 1
    assert "bad.flow:1:11: error VF001: missing ':' after the state name" in result.output
    assert not out.exists()
    garbage = tmp_path / "garbage.flow"
    garbage.write_bytes(b"\x00\xff\xfe" * 100)
    result = CliRunner().invoke(cli, ["compile", str(garbage)])
    assert result.exit_code == 1 and "VF004" in result.output
    result = CliRunner().invoke(cli, ["compile", str(tmp_path / "missing.flow")])
    assert result.exit_code == 1 and "VF002" in result.output


def test_compile_usage_errors_exit_2(tmp_path: Path) -> None:
    assert CliRunner().invoke(cli, ["compile"]).exit_code == 2
    assert CliRunner().invoke(cli, ["compile", str(tmp_path)]).exit_code == 2
    flow = str(ROOT / "flows" / "voicemail.flow")
    assert CliRunner().invoke(cli, ["compile", flow, "--indent", "99"]).exit_code == 2
