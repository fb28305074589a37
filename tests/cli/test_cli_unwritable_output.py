"""An output that cannot be written is a usage error (exit 2) for every command that writes one
(``compile -o``, ``graph -o``, ``test --junit``, ``run --trace``), as docs/ci.md says: the flow
had no problem. ``compile`` exited 2 and ``graph`` 1 for the same mistake. Nothing is left
behind, and no traceback is shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from voxflow.cli.main import cli

FLOW = """\
flow good "A good flow":
    answers "100"

state main:
    answer
    hangup "done"
"""

SCENARIOS = """\
flow: good.flow
scenarios:
  - name: it hangs up
    expect:
      ended: {reason: done}
"""


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    """A good flow with a passing scenario, and a regular file where a directory would go."""
    (tmp_path / "good.flow").write_text(FLOW)
    (tmp_path / "good.test.yaml").write_text(SCENARIOS)
    taken = tmp_path / "taken"
    taken.write_text("")
    return tmp_path / "good.flow", taken


@pytest.mark.parametrize(
    ("command", "option", "name"),
    [
        ("compile", "-o", "ir.json"),
        ("graph", "-o", "flow.mmd"),
        ("test", "--junit", "report.xml"),
    ],
)
def test_an_output_that_cannot_be_written_is_a_usage_error(
    tmp_path: Path, command: str, option: str, name: str
) -> None:
    flow, taken = _tree(tmp_path)
    out = taken / name  # under a regular file: no user (root included) can write it
    result = CliRunner().invoke(cli, [command, str(flow), option, str(out)])
    assert result.exit_code == 2, result.output
    assert f"cannot write {out}" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.flow", "good.test.yaml", "taken"]


@pytest.mark.parametrize(
    ("command", "option", "name"),
    [("compile", "-o", "ir.json"), ("graph", "-o", "flow.mmd"), ("test", "--junit", "r.xml")],
)
def test_the_same_output_written_where_it_can_be_is_exit_0(
    tmp_path: Path, command: str, option: str, name: str
) -> None:
    flow, _ = _tree(tmp_path)
    result = CliRunner().invoke(cli, [command, str(flow), option, str(tmp_path / name)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / name).stat().st_size > 0
