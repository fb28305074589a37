"""``voxflow compile FILE [-o OUT]``: the compiled IR as JSON.

Exit codes: 0 compiled (warnings go to stderr), 1 the flow has errors (diagnostics on stderr,
nothing written), 2 usage errors (click), an output that cannot be written among them.
"""

from __future__ import annotations

import os
import sys

import click

from voxflow.cli.main import loading
from voxflow.diagnostics import render_text
from voxflow.source import Source
from voxflow.sourcefile import read_source

__all__ = ["compile_command"]


@click.command("compile")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=str),
    help="Write the IR JSON here instead of standard output.",
)
@click.option("--indent", type=click.IntRange(0, 8), default=2, show_default=True)
def compile_command(file: str, output: str | None, indent: int) -> None:
    """Compile FILE (a .flow) to its IR, as JSON."""
    # the compiler loads here, so `compile --help` and usage errors do not load it
    with loading():
        from voxflow.compiler.frontdoor import compile_file

    result = compile_file(file)
    if result.diagnostics:
        sources: dict[str, Source] = {}
        for d in result.diagnostics:
            if d.file and d.file not in sources:
                loaded = read_source(d.file)
                if isinstance(loaded, Source):
                    sources[d.file] = loaded
        click.echo(render_text(result.diagnostics, sources), err=True)
    if result.flow is None or not result.ok:
        click.get_current_context().exit(1)
        return
    assert result.flow is not None
    text = result.flow.model_dump_json(indent=indent or None) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    tmp = f"{output}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, output)
    except OSError as exc:
        raise click.UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
