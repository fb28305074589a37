"""Diagnostics: what the parser and checker report, and how it is rendered.

A :class:`Diagnostic` is ``(severity, code, span, message, hint, file)``. Codes are stable
(``VF001`` .. ``VF4xx``; see :data:`RULES` and ``docs/diagnostics.md``). Renderers:

* :func:`render_text`   ``path:line:col: error VF101: unknown state 'mneu'``, the source line,
  a caret under the whole span, then ``hint: did you mean 'menu'?``
* :func:`render_json`   a JSON document with every field and a summary
* :func:`render_sarif`  SARIF 2.1.0 for code-scanning tools
* :func:`render_github` GitHub Actions workflow-command annotations
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from voxflow.source import Source, Span

__all__ = [
    "RULES",
    "SARIF_SCHEMA_URI",
    "Diagnostic",
    "Rule",
    "Severity",
    "count_by_severity",
    "format_diagnostic",
    "render_github",
    "render_json",
    "render_sarif",
    "render_text",
    "sort_diagnostics",
]

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"


class Severity(StrEnum):
    """How bad a diagnostic is. Errors fail ``validate``; warnings fail ``lint --strict``."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Rule:
    """A diagnostic code's stable metadata."""

    code: str
    name: str
    severity: Severity
    summary: str


def _r(code: str, name: str, severity: Severity, summary: str) -> tuple[str, Rule]:
    return code, Rule(code, name, severity, summary)


_E, _W = Severity.ERROR, Severity.WARNING

RULES: dict[str, Rule] = dict(
    [
        _r("VF000", "internal-error", _E, "voxflow itself failed on this file (a bug)."),
        _r("VF001", "syntax-error", _E, "The file does not parse."),
        _r("VF002", "include-not-found", _E, "An included file does not exist."),
        _r("VF003", "include-cycle", _E, "Files include each other in a cycle."),
        _r("VF004", "unreadable-file", _E, "The file is binary, not UTF-8, or too large."),
        _r("VF101", "unknown-state", _E, "A transition names a state that does not exist."),
        _r("VF102", "duplicate-state", _E, "Two states have the same name."),
        _r("VF103", "duplicate-variable", _E, "A variable or parameter is declared twice."),
        _r("VF104", "duplicate-handler", _E, "A handler or outcome is given twice in one scope."),
        _r("VF105", "unknown-subflow", _E, "A call names a subflow that does not exist."),
        _r("VF106", "subflow-arguments", _E, "A subflow call's arguments do not match."),
        _r("VF107", "unknown-config-key", _E, "A config block sets a key voxflow does not know."),
        _r("VF108", "unknown-voice-setting", _E, "A voice setting voxflow does not know."),
        _r("VF109", "unknown-outcome", _E, "A step handles an outcome it can never produce."),
        _r(
            "VF110",
            "duplicate-tool",
            _E,
            "Two agent tools/actions (or two arguments) share a name.",
        ),
        _r("VF201", "unreachable-state", _W, "No path from the start reaches this state."),
        _r("VF202", "falls-off-end", _E, "A state can finish without a transition."),
        _r("VF203", "unhandled-outcome", _E, "A step outcome is not handled anywhere."),
        _r("VF204", "unbounded-input-loop", _E, "An input step loops with no retry bound."),
        _r("VF205", "unreachable-step", _W, "Steps after a terminal step never run."),
        _r(
            "VF210",
            "recording-ends-on-leave",
            _W,
            "A background recording is still running when the call leaves for a queue/transfer.",
        ),
        _r(
            "VF211",
            "unroutable-transfer",
            _W,
            "The shipped [voxflow-transfer] context has no extension for this transfer target.",
        ),
        _r(
            "VF212",
            "option-without-effect",
            _W,
            "A step option that Asterisk has no per-call way to honour (queue announce_position).",
        ),
        _r(
            "VF213",
            "return-hangs-up",
            _W,
            "A return that can run in the main flow, where it hangs up the call.",
        ),
        _r("VF301", "maybe-unset", _E, "A variable is used on a path where it may be unset."),
        _r("VF302", "unused-variable", _W, "A variable is assigned but never read."),
        _r("VF303", "type-error", _E, "An expression combines values of the wrong types."),
        _r("VF304", "unknown-function", _E, "An expression calls a function not whitelisted."),
        _r("VF305", "undefined-variable", _E, "A name is used but never assigned anywhere."),
        _r("VF306", "unused-subflow", _W, "A subflow is defined but never called."),
        _r("VF307", "template-syntax", _E, "A prompt template is not valid jinja2."),
        _r(
            "VF308",
            "string-not-template",
            _W,
            "A string in an expression holds {{ }} or {% %}: it is used as written, not rendered.",
        ),
        _r("VF401", "bad-timeout", _E, "A timeout or duration is zero or negative."),
        _r("VF402", "bad-max-digits", _E, "max digits is zero or negative."),
        _r("VF403", "bad-terminator", _E, "A terminator is not a DTMF key."),
        _r("VF404", "bad-duration", _E, "A duration literal is malformed or out of range."),
        _r("VF405", "bad-retries", _E, "A retry count is below 1."),
        _r("VF406", "bad-dtmf-key", _E, "A choice key is not a DTMF key."),
        _r("VF407", "bad-regex", _E, "A choice pattern is not a valid regular expression."),
        _r("VF408", "bad-value", _E, "A setting has a value outside its allowed range."),
        _r("VF409", "credential-in-flow", _E, "A credential is written in the flow's source."),
        _r("VF410", "phrase-looks-like-key", _W, "A quoted choice phrase is made only of keys."),
        _r(
            "VF501",
            "free-speech-offline-stt",
            Severity.NOTE,
            "A step expects free-form speech and the configured speech-to-text is the offline one.",
        ),
    ]
)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in a flow file."""

    severity: Severity
    code: str
    span: Span
    message: str
    hint: str | None = None
    file: str = ""

    @property
    def is_error(self) -> bool:
        """True for errors."""
        return self.severity is Severity.ERROR

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "file": self.file,
            "line": self.span.line,
            "col": self.span.col,
            "end_line": self.span.end_line,
            "end_col": self.span.end_col,
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }

    def __str__(self) -> str:
        return (
            f"{self.file or '<input>'}:{self.span.line}:{self.span.col}: "
            f"{self.severity.value} {self.code}: {self.message}"
        )


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics in file, position, code order, duplicates removed."""
    return sorted(
        set(diagnostics),
        key=lambda d: (d.file, d.span.line, d.span.col, d.code, d.message),
    )


def count_by_severity(diagnostics: Iterable[Diagnostic]) -> dict[Severity, int]:
    """How many diagnostics of each severity."""
    counts = dict.fromkeys(Severity, 0)
    for d in diagnostics:
        counts[d.severity] += 1
    return counts


_TAB = 4
_COLORS = {
    Severity.ERROR: "\x1b[1;31m",
    Severity.WARNING: "\x1b[1;33m",
    Severity.NOTE: "\x1b[1;36m",
}
_RESET, _BOLD, _BLUE = "\x1b[0m", "\x1b[1m", "\x1b[1;34m"


def _display(text: str) -> str:
    """Tabs expanded and control characters made visible, one display cell per character."""
    out = []
    for ch in text:
        if ch == "\t":
            out.append(" " * _TAB)
        elif ch < " " or ch == "\x7f":
            out.append("?")
        else:
            out.append(ch)
    return "".join(out)


def format_diagnostic(
    diag: Diagnostic, source: Source | None = None, *, color: bool = False
) -> str:
    """One diagnostic as text: header line, source line with carets, hint."""
    sev = diag.severity.value
    if color:
        sev = f"{_COLORS[diag.severity]}{sev}{_RESET}"
    where = (
        f"{diag.file or (source.name if source else '<input>')}:{diag.span.line}:{diag.span.col}"
    )
    header = f"{where}: {sev} {diag.code}: {diag.message}"
    if color:
        header = f"{_BOLD}{where}:{_RESET} {sev} {_BOLD}{diag.code}: {diag.message}{_RESET}"
    lines = [header]
    if source is not None:
        raw = source.line_text(diag.span.line)
        if raw or diag.span.line <= source.line_count:
            gutter = str(diag.span.line)
            pad = " " * len(gutter)
            start = max(0, diag.span.col - 1)
            if diag.span.end_line == diag.span.line:
                stop = max(start + 1, diag.span.end_col - 1)
            else:
                stop = max(start + 1, len(raw))
            prefix = (
                len(_display(raw[:start]))
                if start <= len(raw)
                else len(_display(raw)) + (start - len(raw))
            )
            width = max(1, len(_display(raw[start:stop])) if start < len(raw) else 1)
            carets = " " * prefix + "^" * width
            if color:
                carets = f"{_COLORS[diag.severity]}{carets}{_RESET}"
                lines.append(f"{_BLUE}{gutter} |{_RESET} {_display(raw)}".rstrip())
                lines.append(f"{_BLUE}{pad} |{_RESET} {carets}")
            else:
                lines.append(f"{gutter} | {_display(raw)}".rstrip())
                lines.append(f"{pad} | {carets}")
    if diag.hint:
        lines.append(f"hint: {diag.hint}")
    return "\n".join(lines)


def render_text(
    diagnostics: Iterable[Diagnostic],
    sources: Mapping[str, Source] | None = None,
    *,
    color: bool = False,
    summary: bool = True,
) -> str:
    """Every diagnostic as text, blank-line separated, then ``N errors, M warnings`` (and
    ``, K notes`` when there are any)."""
    diags = sort_diagnostics(diagnostics)
    src = sources or {}
    blocks = [format_diagnostic(d, src.get(d.file), color=color) for d in diags]
    if summary and diags:
        counts = count_by_severity(diags)
        e, w, n = counts[Severity.ERROR], counts[Severity.WARNING], counts[Severity.NOTE]
        line = f"{e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}"
        blocks.append(line + (f", {n} note{'s' * (n != 1)}" if n else ""))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def render_json(diagnostics: Iterable[Diagnostic], *, files: Iterable[str] = ()) -> str:
    """``{"version": 1, "files": [...], "diagnostics": [...], "summary": {...}}`` as JSON."""
    diags = sort_diagnostics(diagnostics)
    counts = count_by_severity(diags)
    doc = {
        "version": 1,
        "files": sorted(set(files)),
        "diagnostics": [d.to_dict() for d in diags],
        "summary": {sev.value + "s": n for sev, n in counts.items()},
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}


def _uri(path: str) -> str:
    """A relative SARIF artifact URI (forward slashes, percent-encoded)."""
    from urllib.parse import quote

    return quote(path.replace("\\", "/").removeprefix("./"), safe="/:._-~")


def render_sarif(
    diagnostics: Iterable[Diagnostic], *, tool_version: str = "0.0.0", files: Iterable[str] = ()
) -> str:
    """A SARIF 2.1.0 log with one run, the rule catalogue, and one result per diagnostic."""
    diags = sort_diagnostics(diagnostics)
    codes = sorted(RULES)
    index = {code: i for i, code in enumerate(codes)}
    rules = [
        {
            "id": code,
            "name": RULES[code].name,
            "shortDescription": {"text": RULES[code].summary},
            "defaultConfiguration": {"level": _SARIF_LEVEL[RULES[code].severity]},
            "helpUri": f"https://voxflow.invalid/docs/diagnostics#{code.lower()}",
        }
        for code in codes
    ]
    results: list[dict[str, Any]] = []
    for d in diags:
        message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
        result: dict[str, Any] = {
            "ruleId": d.code,
            "level": _SARIF_LEVEL[d.severity],
            "message": {"text": message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(d.file or "<input>")},
                        "region": {
                            "startLine": max(1, d.span.line),
                            "startColumn": max(1, d.span.col),
                            "endLine": max(1, d.span.end_line, d.span.line),
                            "endColumn": max(1, d.span.end_col),
                        },
                    }
                }
            ],
        }
        if d.code in index:
            result["ruleIndex"] = index[d.code]
        results.append(result)
    artifacts = [{"location": {"uri": _uri(f)}} for f in sorted(set(files))]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "voxflow",
                "version": tool_version,
                "informationUri": "https://voxflow.invalid/",
                "rules": rules,
            }
        },
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    if artifacts:
        run["artifacts"] = artifacts
    doc = {"$schema": SARIF_SCHEMA_URI, "version": "2.1.0", "runs": [run]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _gh_escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_escape_prop(text: str) -> str:
    return _gh_escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(diagnostics: Iterable[Diagnostic]) -> str:
    """GitHub Actions annotations (``::error file=..,line=..,col=..,title=VF101::msg``).

    ``endColumn`` is inclusive here (GitHub's convention), unlike :class:`Span`.
    """
    out = []
    for d in sort_diagnostics(diagnostics):
        kind = {Severity.ERROR: "error", Severity.WARNING: "warning"}.get(d.severity, "notice")
        if d.span.end_line == d.span.line:
            end_col = max(d.span.col, d.span.end_col - 1)
        else:
            end_col = max(1, d.span.end_col - 1)
        props = ",".join(
            [
                f"file={_gh_escape_prop(d.file or '<input>')}",
                f"line={d.span.line}",
                f"col={d.span.col}",
                f"endLine={max(d.span.line, d.span.end_line)}",
                f"endColumn={end_col}",
                f"title={_gh_escape_prop(d.code)}",
            ]
        )
        message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
        out.append(f"::{kind} {props}::{_gh_escape_data(message)}")
    return "".join(line + "\n" for line in out)
