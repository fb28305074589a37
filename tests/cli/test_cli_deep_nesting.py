"""A flow nested deeper than the checker can walk is one VF001 error for every command, with
nothing else on stderr. ``compile`` and ``graph`` went on lowering it after the checker gave up:
the lowering's RecursionError inside generators printed "Exception ignored in: ...
RecursionError" tracebacks around the diagnostic."""

from __future__ import annotations

from pathlib import Path

import forked
import pytest


def _deep(depth: int) -> str:
    lines = ['flow deep:\n    answers "1"\n\nvar x: number\n\nstate a:\n']
    lines += ["    " * (i + 1) + "if x == 1:\n" for i in range(depth)]
    lines.append("    " * (depth + 1) + "hangup\n")
    return "".join(lines)


@pytest.mark.parametrize("command", ["compile", "graph", "validate"])
def test_a_flow_nested_too_deeply_is_one_clean_error(tmp_path: Path, command: str) -> None:
    flow = tmp_path / "deep.flow"
    flow.write_text(_deep(200))
    done = forked.run(command, str(flow), timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "nested too deeply" in done.stdout + done.stderr
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "RecursionError" not in done.stderr, done.stderr
