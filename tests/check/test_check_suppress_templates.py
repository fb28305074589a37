"""Disable comments and template name analysis."""

from __future__ import annotations

from voxflow.check.suppress import apply_suppressions, parse_suppressions
from voxflow.check.templates import analyze_template
from voxflow.diagnostics import Diagnostic, Severity
from voxflow.source import Source, Span

SRC = Source(
    "f.flow",
    "flow f\n"
    "state a:  # voxflow: disable=VF201\n"
    "    # voxflow: disable-next-line=vf302, VF205\n"
    "    set x = 1\n"
    '    say "# voxflow: disable=VF999 is text, not a comment"\n'
    "    set y = 2  # voxflow: disable=all\n"
    "# voxflow: disable-file=VF306\n",
)


def _d(code: str, line: int, sev: Severity = Severity.WARNING) -> Diagnostic:
    return Diagnostic(sev, code, Span(line, 1, line, 2), "m", None, "f.flow")


def test_parse_finds_line_next_line_and_file_forms() -> None:
    sup = parse_suppressions(SRC)
    assert sup.line_codes[2] == {"VF201"}
    assert sup.line_codes[4] == {"VF302", "VF205"}
    assert sup.line_codes[6] == {"ALL"}
    assert sup.file_codes == {"VF306"}
    assert 5 not in sup.line_codes


def test_apply_silences_only_matching_warnings() -> None:
    diags = [
        _d("VF201", 2),  # silenced by the trailing comment
        _d("VF201", 3),  # other line: kept
        _d("VF302", 4),  # disable-next-line
        _d("VF999", 5),  # inside a string: kept
        _d("VF205", 6),  # "all" on the line
        _d("VF306", 1),  # file-wide
        _d("VF301", 4, Severity.ERROR),  # errors cannot be disabled
        _d("VF301", 6, Severity.ERROR),
    ]
    kept = apply_suppressions(diags, {"f.flow": SRC})
    assert [(d.code, d.span.line) for d in kept] == [
        ("VF201", 3),
        ("VF999", 5),
        ("VF301", 4),
        ("VF301", 6),
    ]


def test_apply_keeps_diagnostics_of_unknown_files() -> None:
    other = Diagnostic(Severity.WARNING, "VF306", Span(1, 1, 1, 2), "m", None, "g.flow")
    assert apply_suppressions([other], {"f.flow": SRC}) == [other]


def test_template_names_exclude_locals_and_loop_vars() -> None:
    info = analyze_template("Hi {{ name }}{% for i in items %}{{ i }}{% endfor %}{{ call.caller }}")
    assert info.names == {"name", "items", "call"}
    assert info.error is None


def test_template_syntax_error_has_line() -> None:
    info = analyze_template("line one\n{{ oops ")
    assert info.error is not None
    assert info.error_line == 2


def test_plain_text_is_not_parsed() -> None:
    assert analyze_template("no markup {here}").names == frozenset()
