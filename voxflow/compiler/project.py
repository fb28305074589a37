"""Checking files and directories: what ``voxflow validate`` and ``voxflow lint`` run.

:func:`collect_flow_files` (from :mod:`voxflow.sourcefile`, where ``voxflow fmt`` reads it
without the compiler) expands paths (directories recursively over ``*.flow``);
:func:`analyze_file` reads one file, runs the front door (parse, check, lower) and applies
disable comments. Nothing here raises for bad input: every problem is a diagnostic.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from voxflow.check.suppress import apply_suppressions
from voxflow.compiler.frontdoor import compile_flow
from voxflow.diagnostics import Diagnostic, Severity, sort_diagnostics
from voxflow.ir.models import Flow
from voxflow.source import Source, Span
from voxflow.sourcefile import PathError, collect_flow_files, read_source

__all__ = [
    "FileReport",
    "Notes",
    "PathError",
    "analyze_file",
    "analyze_paths",
    "collect_flow_files",
]

log = logging.getLogger(__name__)


@dataclass
class FileReport:
    """The diagnostics of the files checked and the sources they point into."""

    files: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)

    def load_sources(self) -> dict[str, Source]:
        """Sources for every file a diagnostic names (included files are read on demand)."""
        for d in self.diagnostics:
            if d.file and d.file not in self.sources:
                src = read_source(d.file)
                if isinstance(src, Source):
                    self.sources[d.file] = src
        return self.sources


def _display_path(path: Path) -> str:
    text = os.fspath(path)
    return text.removeprefix("./") if text != "./" else text


Notes = Callable[[Flow], Iterable[Diagnostic]]
"""More diagnostics from a compiled flow (``voxflow lint``'s VF501, which depends on the
configured speech-to-text)."""


def _front_door(source: Source, notes: Notes | None = None) -> list[Diagnostic]:
    """parse -> check -> lower through :func:`voxflow.compiler.compile_flow`, then ``notes``."""
    result = compile_flow(source.text, source.name)
    extra = notes(result.flow) if notes is not None and result.flow is not None else ()
    return [*result.diagnostics, *extra]


def analyze_file(path: str | os.PathLike[str], notes: Notes | None = None) -> FileReport:
    """Every diagnostic for one flow file (and the files it includes; ``notes`` adds more from
    the compiled flow), warnings filtered by disable comments. Never raises: an internal
    failure becomes a VF000 error."""
    name = _display_path(Path(path))
    report = FileReport(files=[name])
    src = read_source(name)
    if isinstance(src, Diagnostic):
        report.diagnostics = [src]
        return report
    report.sources[name] = src
    try:
        diags = _front_door(src, notes)
    except RecursionError:
        diags = [
            Diagnostic(
                Severity.ERROR,
                "VF001",
                src.whole(),
                "the flow is nested too deeply to analyse",
                "flatten deeply nested blocks or expressions",
                name,
            )
        ]
    except Exception as exc:  # the safety net: a bug in voxflow must not look like a crash
        log.debug("internal error while checking %s", name, exc_info=True)
        diags = [
            Diagnostic(
                Severity.ERROR,
                "VF000",
                Span(1, 1, 1, 2),
                f"internal error while checking this file: {type(exc).__name__}: {exc}",
                "please report this as a voxflow bug",
                name,
            )
        ]
    fixed = [d if d.file else _with_file(d, name) for d in diags]
    report.diagnostics = sort_diagnostics(apply_suppressions(fixed, report.load_sources()))
    return report


def _with_file(d: Diagnostic, name: str) -> Diagnostic:
    return Diagnostic(d.severity, d.code, d.span, d.message, d.hint, name)


def analyze_paths(
    paths: Iterable[str | os.PathLike[str]],
    notes: Notes | None = None,
    on_skip: Callable[[str], None] | None = None,
) -> FileReport:
    """:func:`analyze_file` over :func:`collect_flow_files`. Raises :class:`PathError`."""
    total = FileReport()
    for path in collect_flow_files(paths, on_skip):
        one = analyze_file(path, notes)
        total.files.extend(one.files)
        total.diagnostics.extend(one.diagnostics)
        total.sources.update(one.sources)
    total.diagnostics = sort_diagnostics(total.diagnostics)
    return total
