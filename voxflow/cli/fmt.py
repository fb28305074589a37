"""``voxflow fmt PATH... [--check]``: format flow files in place, or check that they are.

Exit codes: 0 nothing to do (or everything reformatted), 1 with ``--check`` when a file is not
formatted (its diff is printed) or when a file does not parse, 2 usage errors.
"""

from __future__ import annotations

from pathlib import Path

import click

from voxflow.cli.messages import warn
from voxflow.diagnostics import Diagnostic
from voxflow.errors import VoxflowSyntaxError
from voxflow.fmt import format_file_text, unified_diff
from voxflow.sourcefile import PathError, collect_flow_files, read_source

__all__ = ["fmt_command"]


@click.command("fmt")
@click.argument("paths", nargs=-1, required=True)
@click.option("--check", is_flag=True, help="Change nothing; exit 1 and show a diff if needed.")
def fmt_command(paths: tuple[str, ...], check: bool) -> None:
    """Format .flow files (directories are searched recursively)."""
    try:
        files = collect_flow_files(paths, warn)
    except PathError as exc:
        raise click.UsageError(str(exc)) from None
    changed = unchanged = broken = 0
    for path in files:
        name = str(path)
        checked = read_source(path)  # a regular file within the size cap, UTF-8 text
        if isinstance(checked, Diagnostic):
            click.echo(f"error: cannot read {name}: {checked.message}", err=True)
            broken += 1
            continue
        try:  # as it is on disk (a BOM or CRLF line ends are reformatted away)
            original = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            click.echo(f"error: cannot read {name}: {exc}", err=True)
            broken += 1
            continue
        try:
            result = format_file_text(original, name)
        except VoxflowSyntaxError as exc:
            click.echo(f"error: cannot format {exc}", err=True)
            broken += 1
            continue
        if not result.changed:
            unchanged += 1
            continue
        changed += 1
        if check:
            click.echo(unified_diff(result), nl=False)
            click.echo(f"would reformat {name}", err=True)
        else:
            try:
                Path(path).write_text(result.formatted, encoding="utf-8")
            except OSError as exc:
                click.echo(f"error: cannot write {name}: {exc.strerror or exc}", err=True)
                broken += 1
                continue
            click.echo(f"reformatted {name}", err=True)
    verb = "would be reformatted" if check else "reformatted"
    summary = f"{changed} file(s) {verb}, {unchanged} already formatted"
    if broken:
        summary += f", {broken} could not be formatted"
    click.echo(summary, err=True)
    if broken or (check and changed):
        raise SystemExit(1)
