"""The ``voxflow`` command group. Each command lives in its own module and is registered here."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator

import click

__all__ = ["SHORT_HELP", "cli", "loading", "main"]


class _Group(click.Group):
    """A group whose commands load on first use (:data:`_COMMANDS`), and whose command list shows
    each command's whole first sentence (click cuts them at the terminal width minus the longest
    name, mid-sentence). ``voxflow --help`` lists the lazy commands from :data:`SHORT_HELP`
    without importing them (a test keeps it equal to each command's own first sentence)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in _COMMANDS:
            with loading():
                command = _COMMANDS[cmd_name]()
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in SHORT_HELP and name not in self.commands:
                rows.append((name, SHORT_HELP[name]))
                continue
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


def _validate() -> click.Command:
    from voxflow.cli.diag import validate

    return validate


def _lint() -> click.Command:
    from voxflow.cli.diag import lint

    return lint


def _run() -> click.Command:
    from voxflow.cli.run_command import run_command

    return run_command


def _sandbox() -> click.Command:
    from voxflow.cli.sandbox import sandbox_command

    return sandbox_command


def _compile() -> click.Command:
    from voxflow.cli.lang import compile_command

    return compile_command


def _test() -> click.Command:
    from voxflow.cli.testing import test_command

    return test_command


def _replay() -> click.Command:
    from voxflow.cli.testing import replay_command

    return replay_command


def _fmt() -> click.Command:
    from voxflow.cli.fmt import fmt_command

    return fmt_command


def _cluster() -> click.Command:
    from voxflow.cli.cluster import cluster_command

    return cluster_command


def _graph() -> click.Command:
    from voxflow.cli.graph import graph_command

    return graph_command


_COMMANDS: dict[str, Callable[[], click.Command]] = {
    "validate": _validate,
    "lint": _lint,
    "run": _run,
    "sandbox": _sandbox,
    "compile": _compile,
    "test": _test,
    "replay": _replay,
    "fmt": _fmt,
    "graph": _graph,
    "cluster": _cluster,
}
"""Each command's module is imported when that command runs (or for ``--help``), so
``voxflow lint`` does not load the telephony stack that ``voxflow run`` needs."""


SHORT_HELP: dict[str, str] = {
    "cluster": "Show a cluster's workers and calls; release flow versions.",
    "compile": "Compile FILE (a .flow) to its IR, as JSON.",
    "fmt": "Format .flow files (directories are searched recursively).",
    "graph": (
        "Draw FILE's states and transitions; unreachable states and unhandled outcomes in red."
    ),
    "lint": "Report errors, warnings and notes in flow files.",
    "replay": (
        "Re-run a call trace (voxflow run --trace DIR) in the simulator and show what differs."
    ),
    "run": "Run flows on Asterisk, or try one on the sandbox.",
    "sandbox": "Run the embedded PBX sandbox: Asterisk-like ARI (REST, events, RTP) on HOST:PORT.",
    "test": "Run the flow scenarios (*.test.yaml) under PATHS in virtual time.",
    "validate": "Check flow files for errors (directories: every *.flow inside, recursively).",
}
"""Each lazy command's line in ``voxflow --help`` (its docstring's first sentence), so the list
does not import every command's module (``voxflow.cluster`` alone loads Redis, the telephony
stack and numpy: ~2 s of CPU). ``tests/cli/test_cli_startup.py`` checks it against the commands."""


_PROCESS = {"own": False}
"""``own``: this process is the ``voxflow`` command (:func:`main`, ``python -m voxflow``), not a
caller of :data:`cli` such as a test, so what a command's import made may be frozen."""


@contextlib.contextmanager
def loading() -> Iterator[None]:
    """Import a command's modules without the cyclic garbage collector: an import makes
    hundreds of thousands of long-lived objects (pydantic schemas, classes) and no garbage,
    and collections during it rescan them all. In the ``voxflow`` process they are then frozen
    (``gc.freeze()``: never scanned again; they live as long as the process anyway): ~5 % of
    ``voxflow validate``'s instructions (callgrind). A caller of :data:`cli` keeps its GC.
    Used for each command's module here, and by the commands for what they import only when
    they run (the compiler, the scenario runner), so ``--help`` does not load it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if _PROCESS["own"]:
            gc.freeze()
        if was_enabled:
            gc.enable()


def main(prog_name: str | None = None) -> None:
    """Console-script entry point (and ``python -m voxflow``'s)."""
    _PROCESS["own"] = True
    cli(prog_name=prog_name)
