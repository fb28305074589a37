"""The README's first example tells the truth: linting its flow prints every diagnostic line the
README shows (the README elides some with ``...``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from voxflow.cli.main import cli

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_lint_example_matches_what_lint_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```$", README.read_text(), re.M | re.S)
    flow, shown = blocks[0], blocks[1]
    (tmp_path / "main_ivr.flow").write_text(flow)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["lint", "main_ivr.flow"], catch_exceptions=False)
    printed = set(result.output.splitlines())
    headers = [ln for ln in shown.splitlines() if ln.startswith("main_ivr.flow:")]
    assert len(headers) >= 4
    missing = [ln for ln in headers if ln not in printed]
    assert not missing, result.output
