"""The .flow files shipped with voxflow (include "voxflow:NAME.flow") are clean, and include."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxflow.compiler import compile_flow
from voxflow.fmt import format_source
from voxflow.syntax.parser import stdlib_dir

SHIPPED = sorted(stdlib_dir().glob("*.flow"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_flows_are_clean_and_formatted(path: Path) -> None:
    text = path.read_text()
    assert compile_flow(text, str(path)).diagnostics == []
    assert format_source(text) == text


def test_voicemail_is_included_by_its_voxflow_name(tmp_path: Path) -> None:
    main = tmp_path / "box.flow"
    main.write_text(
        'include "voxflow:voicemail.flow"\n\nflow box:\n    answers "300"\n\n'
        "state start:\n    answer\n"
        '    call voicemail(box = "300") returns (message, saved):\n'
        "        on returned -> bye\n\nstate bye:\n    hangup\n"
    )
    result = compile_flow(main.read_text(), str(main))
    assert [d.message for d in result.diagnostics] == [
        "variable 'message' is never used",
        "variable 'saved' is never used",
    ]
    assert result.flow is not None and "voicemail" in result.flow.subflows
    missing = compile_flow(main.read_text().replace("voicemail.flow", "nope.flow"), str(main))
    assert [(d.code, d.message) for d in missing.diagnostics][:1] == [
        ("VF002", "included file not found: voxflow:nope.flow")
    ]
