"""The checker over real parsed source (parser + adapter + rules), and through the front door
(parse, check, lower) for the codes lowering owns."""

from __future__ import annotations

from pathlib import Path

from voxflow.check import check_text
from voxflow.compiler import compile_flow
from voxflow.source import Source
from voxflow.sourcefile import read_source

DATA = Path(__file__).parent / "data"


def test_many_problems_flow_reports_each_rule_at_its_line() -> None:
    src = read_source(DATA / "many_problems.flow")
    assert isinstance(src, Source)
    got = {(d.code, d.span.line) for d in compile_flow(src.text, src.name).diagnostics}
    for expected in [
        ("VF107", 3),
        ("VF203", 12),
        ("VF402", 12),
        ("VF403", 12),
        ("VF101", 15),
        ("VF204", 16),
        ("VF205", 17),  # the gather never continues: every outcome leaves or retries
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


def test_no_diagnostic_is_reported_twice() -> None:
    src = read_source(DATA / "many_problems.flow")
    assert isinstance(src, Source)
    diags = compile_flow(src.text, src.name).diagnostics
    keys = [(d.code, d.span, d.message) for d in diags]
    assert len(keys) == len(set(keys))
    checker_codes = {d.code for d in check_text(src)}
    assert not checker_codes & {"VF107", "VF401", "VF402", "VF403", "VF404", "VF405", "VF408"}
