"""``voxflow graph FILE [--format mermaid|dot|svg|png] [-o OUT]``: draw a flow.

Exit codes: 0 drawn, 1 the flow does not compile or Graphviz failed, 2 usage errors (an output
that cannot be written is one, as for every command).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from voxflow.cli.main import loading
from voxflow.errors import ConfigError, FlowCheckError
from voxflow.viz import FORMATS

__all__ = ["graph_command"]


@click.command("graph")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format (default: from -o's extension, else mermaid).")  # fmt: skip
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write here instead of standard output.")  # fmt: skip
def graph_command(file: str, fmt: str | None, output: str | None) -> None:
    """Draw FILE's states and transitions; unreachable states and unhandled outcomes in red."""
    if fmt is None:
        ext = Path(output).suffix.lstrip(".").lower() if output else ""
        fmt = {"mmd": "mermaid", "gv": "dot"}.get(ext, ext) if ext else "mermaid"
        if fmt not in FORMATS:
            raise click.UsageError(f"cannot tell the format from '{output}'; pass --format")
    if not Path(file).exists():
        raise click.UsageError(f"no such file: '{file}'")
    # the compiler and the drawing load here, so `graph --help` and usage errors do not load them
    with loading():
        from voxflow.compiler.frontdoor import load_flow
        from voxflow.viz.render import render_graph

    try:
        data = render_graph(load_flow(file), fmt)
    except (FlowCheckError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    if output:
        try:
            Path(output).write_bytes(data)
        except OSError as exc:
            raise click.UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
        click.echo(f"wrote {output}", err=True)
    elif fmt == "png" and sys.stdout.isatty():
        raise click.UsageError("PNG is binary: use -o FILE.png")
    else:
        click.echo(data, nl=False)
