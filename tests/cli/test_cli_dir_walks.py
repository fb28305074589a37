"""Directory walks never open what is not a regular file: a FIFO (or a link to a device, or a
dangling link) named ``*.flow`` or ``*.test.yaml`` inside a directory given to ``run``,
``validate``, ``lint``, ``fmt``, ``test`` or ``replay`` is skipped with a one-line warning
naming it; the regular files around it are still read. (Opening a FIFO blocks until a writer
comes: before, ``voxflow run DIR/`` and ``voxflow test x.flow`` hung there.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from voxflow.cli.main import cli
from voxflow.errors import ConfigError, FlowError
from voxflow.runtime.registry import FlowRegistry, read_flow_text
from voxflow.testing.replay import find_flow

GOOD = """\
flow good:
    answers "100"

state start:
    answer
    say "Hello."
    hangup
"""

SCENARIO = """\
flow: ../good.flow
scenarios:
  - name: says hello
    expect:
      said: ["Hello."]
"""

NOT_REGULAR = "not a regular file (a device, pipe or socket is never read)"


def _tree(tmp_path: Path) -> Path:
    d = tmp_path / "flows"
    (d / "tests").mkdir(parents=True)
    (d / "good.flow").write_text(GOOD)
    (d / "tests" / "good.test.yaml").write_text(SCENARIO)
    os.mkfifo(d / "pipe.flow")
    os.mkfifo(d / "tests" / "pipe.test.yaml")
    (d / "zero.flow").symlink_to("/dev/zero")
    (d / "gone.flow").symlink_to(d / "nowhere.flow")
    return d


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def _warned(out: str, d: Path, *names: str) -> None:
    for name in names:
        assert f"warning: skipped {d / name}: {NOT_REGULAR}" in out, out


@pytest.mark.parametrize("command", [["validate"], ["lint"], ["fmt", "--check"]])
def test_validate_lint_and_fmt_skip_what_is_not_a_regular_file(
    tmp_path: Path, command: list[str]
) -> None:
    d = _tree(tmp_path)
    code, out = _cli(*command, str(d))
    assert code == 0, out
    _warned(out, d, "pipe.flow", "zero.flow")
    assert f"warning: skipped {d / 'gone.flow'}: No such file or directory" in out


def test_test_skips_fifos_in_a_directory_and_next_to_a_named_flow(tmp_path: Path) -> None:
    d = _tree(tmp_path)
    code, out = _cli("test", str(d))
    assert code == 0 and "1 passed, 0 failed" in out, out
    _warned(out, d, "pipe.flow", "zero.flow", "tests/pipe.test.yaml")
    code, out = _cli("test", str(d / "good.flow"))
    assert code == 0 and "1 passed, 0 failed" in out, out
    _warned(out, d, "tests/pipe.test.yaml")


def test_run_on_a_directory_skips_fifos_and_says_so(tmp_path: Path) -> None:
    d = _tree(tmp_path)
    reg = FlowRegistry()
    skipped: list[str] = []
    [fv] = reg.load([d], on_skip=skipped.append)
    assert fv.flow.name == "good"
    assert f"skipped {d / 'pipe.flow'}: {NOT_REGULAR}" in skipped
    only = tmp_path / "only"
    only.mkdir()
    os.mkfifo(only / "pipe.flow")
    code, out = _cli("run", str(only), "--no-audio")
    assert code == 2 and "no .flow files found" in out, out
    _warned(out, only, "pipe.flow")


def test_a_flow_replaced_by_a_fifo_is_refused_not_read(tmp_path: Path) -> None:
    path = tmp_path / "good.flow"
    path.write_text(GOOD)
    reg = FlowRegistry()
    reg.load([path])
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(FlowError, match="not a regular file"):
        read_flow_text(path)
    os.utime(path, ns=(1, 1))  # a new mtime: the reload tries it, and keeps the old version
    assert reg.reload_changed() == [] and "not a regular file" in reg.problems[path]
    with pytest.raises(ConfigError, match="not a regular file"):
        FlowRegistry().load([path])


def test_replay_finds_its_flow_past_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "a.flow")
    (tmp_path / "b.flow").write_text(GOOD)
    assert find_flow("good", tmp_path) == tmp_path / "b.flow"


def test_a_file_where_an_output_directory_goes_is_named_as_such(tmp_path: Path) -> None:
    """``--trace DIR`` and ``--junit DIR/x.xml`` with a file at DIR: "is a file, not a
    directory", not mkdir's "File exists"."""
    d = _tree(tmp_path)
    taken = tmp_path / "taken"
    taken.write_text("")
    code, out = _cli("test", str(d / "good.flow"), "--junit", str(taken / "x.xml"))
    assert code == 2  # a usage error, as for every command's output (test_cli_unwritable_output)
    assert f"cannot write {taken / 'x.xml'}: {taken} is a file, not a directory" in out
    code, out = _cli("run", str(d / "good.flow"), "--no-audio", "--trace", str(taken))
    assert code == 2 and f"--trace: {taken} is a file, not a directory" in out, out
    assert "File exists" not in out


def test_cluster_publish_of_a_directory_warns_of_what_it_skipped(tmp_path: Path) -> None:
    d = _tree(tmp_path)
    code, out = _cli("cluster", "publish", str(d), "--redis", "redis://127.0.0.1:1")
    assert code == 3, out  # Redis unreachable: after the flows were loaded
    _warned(out, d, "pipe.flow", "zero.flow")
