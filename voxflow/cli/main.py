"""The ``voxflow`` command group. Each command lives in its own module and is registered here."""

from __future__ import annotations

import click

__all__ = ["cli", "main"]


class _Group(click.Group):
    """A group whose command list shows each command's whole first sentence (click cuts
    them at the terminal width minus the longest name, mid-sentence)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="voxflow")
def cli() -> None:
    """voxflow: write, check, test and run phone-call flows."""


from voxflow.cli.diag import lint, validate  # noqa: E402  (commands register after the group)

cli.add_command(validate)
cli.add_command(lint)

from voxflow.cli.run import run_command  # noqa: E402

cli.add_command(run_command)

from voxflow.cli.sandbox import sandbox_command  # noqa: E402

cli.add_command(sandbox_command)

from voxflow.cli.lang import compile_command  # noqa: E402

cli.add_command(compile_command)

from voxflow.cli.testing import replay_command, test_command  # noqa: E402

cli.add_command(test_command)
cli.add_command(replay_command)

from voxflow.cli.fmt import fmt_command  # noqa: E402

cli.add_command(fmt_command)

from voxflow.cli.graph import graph_command  # noqa: E402

cli.add_command(graph_command)


def main() -> None:
    """Console-script entry point."""
    cli()
