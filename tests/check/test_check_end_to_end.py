"""The checker over real parsed source (parser + adapter + rules)."""

from __future__ import annotations

from pathlib import Path

from voxflow.check import check_text
from voxflow.source import Source, read_source

DATA = Path(__file__).parent / "data"


def test_many_problems_flow_reports_each_rule_at_its_line() -> None:
    src = read_source(DATA / "many_problems.flow")
    assert isinstance(src, Source)
    got = {(d.code, d.span.line) for d in check_text(src)}
    for expected in [
        ("VF107", 3),
        ("VF203", 12),
        ("VF402", 12),
        ("VF403", 12),
        ("VF101", 15),
        ("VF204", 16),
        ("VF202", 17),
        ("VF301", 20),
        ("VF305", 20),
        ("VF302", 21),
        ("VF303", 21),
        ("VF205", 23),
        ("VF201", 25),
    ]:
        assert expected in got, expected


def test_disable_comment_silences_warning_in_real_source() -> None:
    text = (
        "flow f:\n    timeout 5s\n\nstate a:\n    hangup\n\n"
        "state b:  # voxflow: disable=VF201\n    hangup\n"
    )
    diags = check_text(Source("f.flow", text))
    assert [d.code for d in diags] == []
    diags = check_text(Source("f.flow", text.replace("  # voxflow: disable=VF201", "")))
    assert [(d.code, d.span.line) for d in diags] == [("VF201", 7)]
