"""``voxflow validate`` / ``lint`` on empty and truncated files: diagnostics and exit codes, never
a traceback or an internal error."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from voxflow.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "flows").glob("*.flow"))


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def _no_crash(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert not re.search(r"VF000", result.output), result.output


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n", "   "])
def test_empty_file_is_an_empty_library(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.flow"
    path.write_text(content, encoding="utf-8")
    for command in ("validate", "lint"):
        result = _run(command, str(path), *(["--strict"] if command == "lint" else []))
        _no_crash(result)
        assert result.exit_code == 0, result.output


def test_empty_flow_with_header_has_no_states(tmp_path: Path) -> None:
    path = tmp_path / "f.flow"
    path.write_text("flow f:\n    timeout 5s\n", encoding="utf-8")
    result = _run("validate", str(path))
    _no_crash(result)
    assert result.exit_code == 1
    assert "f.flow:1:1: error VF408: the flow has no states" in result.output


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_truncated_examples_give_diagnostics(tmp_path: Path, example: Path) -> None:
    shutil.copytree(ROOT / "flows" / "shared", tmp_path / "shared")
    data = example.read_bytes()
    cuts = sorted({len(data) * k // 7 for k in range(1, 7)} | {len(data) - 1})
    for cut in cuts:
        path = tmp_path / f"cut{cut}.flow"
        path.write_bytes(data[:cut])
        result = _run("lint", "--format", "json", str(path))
        _no_crash(result)
        assert result.exit_code in (0, 1), result.output
    # a cut in the middle of a multi-byte character is bad UTF-8: VF004, exit 1
    path = tmp_path / "mb.flow"
    path.write_bytes(b'flow f:\n    timeout 5s\nstate a:\n    say "caf\xc3')
    result = _run("validate", str(path))
    _no_crash(result)
    assert result.exit_code == 1 and "VF004" in result.output
