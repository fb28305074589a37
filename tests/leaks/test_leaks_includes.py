"""Issue 14 item 7: includes are relative paths to .flow files inside the flow's project, read
as regular files with a size cap; errors sit at the include line; no diagnostic shows a file
that is not a flow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from voxflow.cli.main import cli
from voxflow.sourcefile import read_source

BODY = 'flow a:\n    answers "1"\n\nstate s:\n    hangup\n'
SECRET = "root:$6$secretsalt$hash:20228:0:99999:7:::"


def _lint(path: Path) -> Result:
    return CliRunner().invoke(cli, ["lint", str(path)], catch_exceptions=False)


def _flow(dirpath: Path, include: str) -> Path:
    p = dirpath / "main.flow"
    p.write_text(f'include "{include}"\n{BODY}')
    return p


@pytest.mark.parametrize(
    ("include", "says"),
    [
        ("/etc/shadow", "not absolute paths"),
        ("/dev/zero", "not absolute paths"),
        ("/dev/stdin", "not absolute paths"),
        ("\\x00", "characters no file name can have"),
        ("\\ud800.flow", "characters no file name can have"),
        ("../outside.flow", "outside the project"),
        ("secret.txt", "only .flow files"),
        ("link.flow", "outside the project"),
    ],
)
def test_refused_includes_are_reported_at_the_include_line(
    tmp_path: Path, include: str, says: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "outside.flow").write_text(SECRET + "\n")
    (project / "secret.txt").write_text(SECRET + "\n")
    os.symlink(tmp_path / "outside.flow", project / "link.flow")
    res = _lint(_flow(project, include))
    assert res.exit_code == 1, res.output
    assert "main.flow:1:1: error VF002: " in res.output and says in res.output
    assert "VF000" not in res.output and "Traceback" not in res.output
    assert "secretsalt" not in res.output


def test_includes_inside_a_project_with_voxflow_toml_may_go_up(tmp_path: Path) -> None:
    (tmp_path / "voxflow.toml").write_text("")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "common.flow").write_text("state bye:\n    hangup\n")
    (tmp_path / "flows").mkdir()
    main = tmp_path / "flows" / "main.flow"
    main.write_text('include "../shared/common.flow"\n' + BODY)
    res = CliRunner().invoke(cli, ["validate", str(main)])
    assert res.exit_code == 0, res.output


def test_a_fifo_in_the_project_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.flow")
    res = _lint(_flow(tmp_path, "pipe.flow"))
    assert res.exit_code == 1
    assert "main.flow:1:1: error VF004: not a regular file" in res.output


def test_devices_are_never_read_and_reads_are_capped(tmp_path: Path) -> None:
    d = read_source("/dev/zero")
    assert not hasattr(d, "text") and "not a regular file" in d.message  # type: ignore[union-attr]
    big = tmp_path / "big.flow"
    big.write_bytes(b"# " + b"x" * 200 + b"\n")
    d = read_source(big, max_bytes=100)
    assert "file too large" in d.message  # type: ignore[union-attr]
