"""Disable comments for warnings.

Three forms, written in an ordinary ``#`` comment::

    say "hi {{ nme }}"   # voxflow: disable=VF302          this line only
    # voxflow: disable-next-line=VF201,VF205               the following line
    # voxflow: disable-file=VF201                          the whole file

``all`` disables every warning code. Errors can never be disabled: a disable comment that names an
error code is ignored. Codes are matched case-insensitively. The lexer drops comments, so this
module scans the source text itself (and ignores ``#`` inside double- or single-quoted strings).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from voxflow.diagnostics import Diagnostic, Severity
from voxflow.source import Source

__all__ = ["Suppressions", "apply_suppressions", "parse_suppressions"]

_DIRECTIVE = re.compile(
    r"voxflow:\s*(disable|disable-next-line|disable-file)\s*=\s*([A-Za-z0-9_,\s]+)",
    re.IGNORECASE,
)
_ALL = "ALL"


@dataclass
class Suppressions:
    """Which warning codes are disabled per line and for the whole file."""

    file_codes: set[str] = field(default_factory=set)
    line_codes: dict[int, set[str]] = field(default_factory=dict)

    def disables(self, diag: Diagnostic) -> bool:
        """True when ``diag`` is a warning (or note) silenced by a comment."""
        if diag.severity is Severity.ERROR:
            return False
        code = diag.code.upper()
        if code in self.file_codes or _ALL in self.file_codes:
            return True
        on_line = self.line_codes.get(diag.span.line, set())
        return code in on_line or _ALL in on_line


def _comment_start(line: str) -> int:
    """Index of the comment on ``line`` (``#`` outside quotes), or -1."""
    quote = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return i
        i += 1
    return -1


def parse_suppressions(source: Source) -> Suppressions:
    """Read every ``voxflow: disable...`` comment in ``source``."""
    sup = Suppressions()
    if "voxflow" not in source.text:
        return sup
    for lineno, line in enumerate(source.text.split("\n"), start=1):
        if "voxflow" not in line:
            continue
        start = _comment_start(line)
        if start < 0:
            continue
        for match in _DIRECTIVE.finditer(line, start):
            kind = match.group(1).lower()
            codes = {c.strip().upper() for c in match.group(2).split(",") if c.strip()}
            if kind == "disable-file":
                sup.file_codes |= codes
            else:
                target = lineno + 1 if kind == "disable-next-line" else lineno
                sup.line_codes.setdefault(target, set()).update(codes)
    return sup


def apply_suppressions(
    diagnostics: Iterable[Diagnostic], sources: Mapping[str, Source]
) -> list[Diagnostic]:
    """``diagnostics`` without the warnings that a disable comment in their file silences."""
    cache: dict[str, Suppressions] = {}
    kept = []
    for d in diagnostics:
        src = sources.get(d.file)
        if src is None or d.severity is Severity.ERROR:
            kept.append(d)
            continue
        sup = cache.get(d.file)
        if sup is None:
            sup = cache[d.file] = parse_suppressions(src)
        if not sup.disables(d):
            kept.append(d)
    return kept
