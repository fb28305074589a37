"""``voxflow test`` (flow scenarios in virtual time, coverage, JUnit) and ``voxflow replay``.

Both read the settings that change what a call does (``voxflow.runtime.config.CALL_SETTINGS``:
``[run] hangup_timeout``, ``max_steps``) as ``voxflow run`` does: ``--config FILE``, else
``./voxflow.toml``, and the environment, with its validation and its errors (exit 2).

Exit codes: 0 every scenario passed (and coverage met ``--min-coverage``), 1 a scenario failed,
a file did not load, coverage was too low or a replay differs, 2 usage errors (a ``--junit``
file that cannot be written, bad settings among them).
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING

import click

from voxflow.cli.main import loading
from voxflow.cli.messages import EXIT_CONFIG, fail
from voxflow.errors import ConfigError, FlowCheckError

if TYPE_CHECKING:
    from voxflow.runtime.config import Settings

__all__ = ["replay_command", "test_command"]

_CONFIG_HELP = (
    "Settings file, as voxflow run's: its [run] hangup_timeout and max_steps apply "
    "[default: ./voxflow.toml if present]"
)


def _settings(config_path: Path | None, hangup_timeout: float | None = None) -> Settings:
    """The settings as ``voxflow run`` reads them (command line over environment over
    ``voxflow.toml``); ``error: ...`` and exit 2 for a bad one, as run's."""
    with loading():
        from voxflow.runtime.config import load_settings

    try:
        return load_settings({"hangup_timeout": hangup_timeout}, config_path=config_path)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)


@click.command("test")
@click.argument("paths", nargs=-1, required=True)
@click.option("--coverage", "show_coverage", is_flag=True, help="Report what no scenario took.")
@click.option(
    "--min-coverage",
    type=click.FloatRange(0, 100),
    default=None,
    metavar="PCT",
    help="Fail when a flow's transition coverage is below PCT percent.",
)
@click.option("--junit", type=click.Path(dir_okay=False), default=None, help="Write JUnit XML.")
@click.option("-v", "--verbose", is_flag=True, help="Print the trace of passing scenarios too.")
@click.option(
    "-k",
    "select",
    metavar="PATTERN",
    default=None,
    help="Run only the scenarios whose name contains PATTERN (case-insensitive).",
)
@click.option(
    "--hangup-timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Seconds an `on hangup` body may run (as voxflow run's --hangup-timeout); a scenario "
    "whose body is cut fails. [default: [run] hangup_timeout, else 60]",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help=_CONFIG_HELP,
)
def test_command(
    paths: tuple[str, ...],
    show_coverage: bool,
    min_coverage: float | None,
    junit: str | None,
    verbose: bool,
    select: str | None,
    hangup_timeout: float | None,
    config_path: Path | None,
) -> None:
    """Run the flow scenarios (*.test.yaml) under PATHS in virtual time.

    \b
    Examples:
      voxflow test flows
      voxflow test flows/main_ivr.flow -k "sales by key"
      voxflow test flows --coverage --min-coverage 90 --junit out.xml

    \b
    The calls run with voxflow run's settings [run] hangup_timeout and
    max_steps (--config FILE, else ./voxflow.toml, and the environment).

    \b
    Exit codes: 0 every scenario passed (and coverage met --min-coverage),
    1 a scenario failed, a file did not load or coverage is too low, 2 usage
    errors and bad settings.
    """
    settings = _settings(config_path, hangup_timeout)
    # the runner (compiler, runtime, simulator) loads here, so `test --help` does not load it
    with loading():
        from voxflow.testing.runner import format_report, junit_xml, run_paths

    # What is loaded by now (modules, the grammar, pydantic's validators) outlives the run: out
    # of the cyclic GC's sight while the scenarios run, its collections walk only what the
    # scenarios allocate (~10% of a scenario's CPU time, bench/flow_tests.py).
    gc.freeze()
    try:
        run = run_paths(
            paths, select, hangup_timeout=settings.hangup_timeout, max_steps=settings.max_steps
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        gc.unfreeze()  # back under the GC (a caller in the same process, e.g. a test)
    if not run.outcomes and not run.errors:
        for skipped in run.skipped:
            click.echo(f"warning: {skipped}", err=True)
        if select is not None:
            raise click.UsageError(f"no scenario name contains {select!r} in: {' '.join(paths)}")
        raise click.UsageError(f"no scenario files (*.test.yaml) found in: {' '.join(paths)}")
    text, ok = format_report(
        run, coverage=show_coverage, min_coverage=min_coverage, verbose=verbose
    )
    click.echo(text)
    if junit:
        try:
            Path(junit).parent.mkdir(parents=True, exist_ok=True)
            Path(junit).write_bytes(junit_xml(run))
        except FileExistsError:  # what mkdir says of a file where the directory goes
            where = Path(junit).parent
            raise click.UsageError(
                f"cannot write {junit}: {where} is a file, not a directory"
            ) from None
        except OSError as exc:
            raise click.UsageError(f"cannot write {junit}: {exc.strerror or exc}") from None
    raise SystemExit(0 if ok else 1)


@click.command("replay")
@click.argument("trace", type=click.Path(dir_okay=False))
@click.option(
    "--flow",
    "flow_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="The flow to replay against (default: the one the trace names).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Settings file, as voxflow run's: its [run] hangup_timeout and max_steps apply "
    "where the trace does not record the call's [default: ./voxflow.toml if present]",
)
def replay_command(trace: str, flow_path: str | None, config_path: Path | None) -> None:
    """Re-run a call trace (voxflow run --trace DIR) in the simulator and show what differs.

    The call replays with the trace's own start time, caller and called number,
    and the on hangup ceiling and step budget it ran with (a trace that does
    not record them: voxflow run's settings, --config FILE or ./voxflow.toml).
    Compared: the states entered, the prompts, the routing (dial/transfer
    targets, queues, HTTP requests with their headers and bodies, the requests
    an agent's actions sent, recordings) and how the call ended.

    \b
    Example:
      voxflow replay traces/1700000000.123.jsonl --flow flows/main_ivr.flow

    \b
    Exit codes: 0 the flow behaves as in the trace, 1 it differs or the trace
    or flow cannot be read, 2 bad settings.
    """
    settings = _settings(config_path)
    with loading():
        from voxflow.testing.replay import replay_trace

    try:
        report = replay_trace(trace, flow_path, settings=settings)
    except (ConfigError, FlowCheckError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(report.render())
    raise SystemExit(0 if report.same else 1)
