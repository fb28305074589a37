"""Source/Span helpers and the diagnostic renderers."""

from __future__ import annotations

import json

from voxflow.diagnostics import (
    Diagnostic,
    Severity,
    render_github,
    render_json,
    render_text,
    sort_diagnostics,
)
from voxflow.source import Source, Span
from voxflow.sourcefile import decode_source, read_source

TEXT = "flow demo\nstate menu:\n    goto mneu\n"


def _diag(**kw: object) -> Diagnostic:
    base: dict[str, object] = {
        "severity": Severity.ERROR,
        "code": "VF101",
        "span": Span(3, 10, 3, 14),
        "message": "unknown state 'mneu'",
        "hint": "did you mean 'menu'?",
        "file": "demo.flow",
    }
    base.update(kw)
    return Diagnostic(**base)  # type: ignore[arg-type]


def test_source_line_and_offsets_roundtrip() -> None:
    src = Source("demo.flow", TEXT)
    assert src.line_count == 3
    assert src.line_text(3) == "    goto mneu"
    assert src.line_text(99) == ""
    off = TEXT.index("mneu")
    assert src.offset_to_linecol(off) == (3, 10)
    assert src.linecol_to_offset(3, 10) == off
    span = src.span_of(off, off + 4)
    assert span == Span(3, 10, 3, 14)
    assert src.text_of(span) == "mneu"


def test_span_merge_and_contains() -> None:
    a, b = Span(1, 5, 1, 8), Span(3, 1, 3, 4)
    m = a.merge(b)
    assert m == Span(1, 5, 3, 4)
    assert m.contains(a) and m.contains(b) and not a.contains(m)


def test_clamp_moves_span_inside_file() -> None:
    src = Source("x", "ab\ncd")
    assert src.clamp(Span(9, 9, 9, 12)) == Span(2, 3, 2, 4)


def test_text_render_has_header_source_line_carets_and_hint() -> None:
    out = render_text([_diag()], {"demo.flow": Source("demo.flow", TEXT)})
    lines = out.splitlines()
    assert lines[0] == "demo.flow:3:10: error VF101: unknown state 'mneu'"
    assert lines[1] == "3 |     goto mneu"
    assert lines[2] == "  |          ^^^^"
    assert lines[3] == "hint: did you mean 'menu'?"
    assert lines[-1] == "1 error, 0 warnings"


def test_text_render_expands_tabs_under_caret() -> None:
    src = Source("t.flow", "\tgoto x\n")
    out = render_text([_diag(file="t.flow", span=Span(1, 7, 1, 8), hint=None)], {"t.flow": src})
    src_line, caret_line = out.splitlines()[1:3]
    assert src_line.index("x") == caret_line.index("^")


def test_json_render_fields_and_summary() -> None:
    warn = _diag(severity=Severity.WARNING, code="VF201", span=Span(2, 1, 2, 5))
    doc = json.loads(render_json([_diag(), warn], files=["demo.flow"]))
    assert doc["summary"] == {"errors": 1, "warnings": 1, "notes": 0}
    first = doc["diagnostics"][0]
    assert (first["code"], first["line"], first["col"]) == ("VF201", 2, 1)
    assert doc["diagnostics"][1]["end_col"] == 14


def test_github_annotation_escapes_and_inclusive_end() -> None:
    d = _diag(message="bad: 50%, really\nyes", file="a,b.flow")
    out = render_github([d])
    assert out == (
        "::error file=a%2Cb.flow,line=3,col=10,endLine=3,endColumn=13,title=VF101::"
        "bad: 50%25, really%0Ayes%0Ahint: did you mean 'menu'?\n"
    )


def test_sort_removes_duplicates() -> None:
    assert len(sort_diagnostics([_diag(), _diag()])) == 1


def test_decode_rejects_binary_bad_utf8_and_huge() -> None:
    binary = decode_source("b.flow", b"flow x\n\x00\x01\x02")
    assert isinstance(binary, Diagnostic) and binary.code == "VF004"
    assert binary.span.line == 2
    bad = decode_source("u.flow", b'flow x\nsay "caf\xe9"\n')
    assert isinstance(bad, Diagnostic) and "UTF-8" in bad.message
    assert (bad.span.line, bad.span.col) == (2, 9)
    huge = decode_source("h.flow", b"#" * 2000, max_bytes=1000)
    assert isinstance(huge, Diagnostic) and "too large" in huge.message
    ok = decode_source("ok.flow", b"\xef\xbb\xbfflow x\r\n")
    assert isinstance(ok, Source) and ok.text == "flow x\n"


def test_read_source_missing_and_directory(tmp_path: object) -> None:
    from pathlib import Path

    base = Path(str(tmp_path))
    missing = read_source(base / "nope.flow")
    assert isinstance(missing, Diagnostic) and missing.code == "VF002"
    dirdiag = read_source(base)
    assert isinstance(dirdiag, Diagnostic) and dirdiag.code == "VF004"
    (base / "x.flow").write_text("flow x\n", encoding="utf-8")
    src = read_source(base / "x.flow")
    assert isinstance(src, Source) and src.text == "flow x\n"
