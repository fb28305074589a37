"""``voxflow validate`` and ``voxflow lint``.

Exit codes: 0 clean, 1 a file has errors (or, with ``lint --strict``, warnings), 2 usage errors
(no such path, a directory without ``.flow`` files, a bad option).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from voxflow.cli.main import loading
from voxflow.cli.messages import warn
from voxflow.diagnostics import (
    Severity,
    count_by_severity,
    render_github,
    render_json,
    render_sarif,
    render_text,
)
from voxflow.errors import ConfigError
from voxflow.sourcefile import PathError

if TYPE_CHECKING:
    from voxflow.compiler.project import FileReport, Notes

__all__ = ["lint", "validate", "warn"]

_FORMATS = ("text", "json", "sarif", "github")


def _version() -> str:
    from voxflow import __version__

    return __version__


def _run(paths: Sequence[str], notes: Notes | None = None) -> FileReport:
    # the compiler is imported here, so `validate --help` and usage errors do not load it
    with loading():
        from voxflow.compiler.project import analyze_paths

    try:
        return analyze_paths(paths, notes, warn)
    except PathError as exc:
        raise click.UsageError(str(exc)) from None


def configured_stt() -> str:
    """The speech-to-text ``voxflow run`` would use: the provider of ``VOXFLOW_STT_*`` (see
    :mod:`voxflow.ai.config`), else the offline pocketsphinx; ``"unknown"`` when that
    configuration is invalid (``voxflow run`` refuses it)."""
    from voxflow.ai.config import load_ai_config
    from voxflow.compiler.speech_notes import OFFLINE_STT

    try:
        cfg = load_ai_config().stt
    except ConfigError:
        return "unknown"
    return OFFLINE_STT if cfg is None else cfg.provider


def _color(stream_is_tty: bool) -> bool:
    return stream_is_tty and "NO_COLOR" not in os.environ


def _emit(report: FileReport, fmt: str) -> None:
    diags = report.diagnostics
    if fmt == "json":
        click.echo(render_json(diags, files=report.files), nl=False)
    elif fmt == "sarif":
        click.echo(render_sarif(diags, tool_version=_version(), files=report.files), nl=False)
    elif fmt == "github":
        click.echo(render_github(diags), nl=False)
    else:
        out = render_text(diags, report.load_sources(), color=_color(sys.stdout.isatty()))
        if out:
            click.echo(out, nl=False)


@click.command("validate")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
def validate(paths: tuple[str, ...]) -> None:
    """Check flow files for errors (directories: every *.flow inside, recursively).

    Exit 0 when clean, 1 when any file has errors, 2 on usage errors.
    """
    report = _run(paths)
    report.diagnostics = [d for d in report.diagnostics if d.severity is Severity.ERROR]
    _emit(report, "text")
    errors = len(report.diagnostics)
    files = len(report.files)
    if errors:
        bad = len({d.file for d in report.diagnostics})
        click.echo(f"{bad} of {files} file{'s' * (files != 1)} invalid", err=True)
        click.get_current_context().exit(1)
    click.echo(f"{files} file{'s' * (files != 1)} valid", err=True)


@click.command("lint")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_FORMATS),
    default="text",
    show_default=True,
    help="Output format: text for people, json, sarif (2.1.0) or github (Actions annotations).",
)
@click.option("--strict", is_flag=True, help="Fail (exit 1) on warnings too.")
@click.option(
    "--stt",
    type=click.Choice(["pocketsphinx", "openai", "deepgram"]),
    default=None,
    help="The speech-to-text the flows will run with (default: as voxflow run, from "
    "VOXFLOW_STT_PROVIDER/_BASE_URL/_MODEL, else the offline pocketsphinx).",
)
def lint(paths: tuple[str, ...], fmt: str, strict: bool, stt: str | None) -> None:
    """Report errors, warnings and notes in flow files.

    Exit 0 when clean, 1 on errors (or on warnings with --strict), 2 on usage errors.
    """
    with loading():  # the compiler, as in _run
        from voxflow.compiler.speech_notes import free_speech_notes

    engine = stt or configured_stt()
    report = _run(paths, lambda flow: free_speech_notes(flow, engine))
    _emit(report, fmt)
    counts = count_by_severity(report.diagnostics)
    failed = counts[Severity.ERROR] > 0 or (strict and counts[Severity.WARNING] > 0)
    if fmt == "text" and not report.diagnostics:
        n = len(report.files)
        click.echo(f"{n} file{'s' * (n != 1)} clean", err=True)
    if failed:
        click.get_current_context().exit(1)
