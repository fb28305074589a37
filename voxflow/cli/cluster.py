"""``voxflow cluster status|publish``: the cluster's live workers and calls, as Redis holds
them; releasing a flow version to every worker."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from voxflow.errors import ConfigError
from voxflow.runtime.config import load_settings

if TYPE_CHECKING:
    from voxflow.cluster.state import ClusterState
    from voxflow.runtime.registry import FlowRegistry

__all__ = ["cluster_command"]

EXIT_CONFIG, EXIT_REDIS = 2, 3


_REDIS = click.option("--redis", "redis_url", metavar="URL", help="Redis URL [VOXFLOW_REDIS_URL]")
_CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="settings file [default: ./voxflow.toml if present]",
)


@click.group("cluster", short_help="Show a cluster's workers and calls; release flow versions.")
def cluster_command() -> None:
    """The cluster whose shared state is in Redis (docs/deploy.md)."""


def _redis_url(redis_url: str | None, config_path: Path | None) -> str:
    try:
        settings = load_settings({"redis_url": redis_url}, config_path=config_path)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    if settings.redis_url is None:
        click.echo("error: no Redis URL: give --redis URL (or VOXFLOW_REDIS_URL)", err=True)
        sys.exit(EXIT_CONFIG)
    return settings.redis_url


@cluster_command.command("status", short_help="Show the live workers and the calls in progress.")
@_REDIS
@_CONFIG
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def status_command(redis_url: str | None, config_path: Path | None, as_json: bool) -> None:
    """Show the live workers (id, calls, heartbeat) and the calls in progress (worker, flow
    version, state)."""
    sys.exit(asyncio.run(_show(_redis_url(redis_url, config_path), as_json)))


@cluster_command.command("publish", short_help="Make FLOWS the current versions on every worker.")
@click.argument("flows", nargs=-1, required=True, type=click.Path(path_type=Path))
@_REDIS
@_CONFIG
def publish_command(
    flows: tuple[Path, ...], redis_url: str | None, config_path: Path | None
) -> None:
    """Compile FLOWS and make them the current versions on every worker: new calls take them,
    calls in progress finish on theirs."""
    from voxflow.cli.diag import warn
    from voxflow.errors import FlowError
    from voxflow.runtime.registry import FlowRegistry

    url = _redis_url(redis_url, config_path)
    registry = FlowRegistry()
    try:
        registry.load(flows, warn)
    except (ConfigError, FlowError) as exc:
        click.echo(f"error: invalid flow(s):\n{exc}", err=True)
        sys.exit(1)
    sys.exit(asyncio.run(_publish(url, registry)))


async def _publish(url: str, registry: FlowRegistry) -> int:
    from voxflow.cluster.state import ClusterState

    state = ClusterState(url, worker_id="voxflow-cluster-cli")
    try:
        if not await _reachable(state, url):
            return EXIT_REDIS
        for fv in registry.versions():
            h = await state.release(fv.flow)
            click.echo(f"released {fv.flow.name} {h[:12]} ({fv.path})")
        return EXIT_REDIS if state.errors else 0
    finally:
        await state.redis.aclose()


async def _reachable(state: ClusterState, url: str) -> bool:
    from redis.exceptions import RedisError

    try:
        await state.redis.ping()
    except (RedisError, OSError) as exc:
        where = f"{urlsplit(url).hostname}:{urlsplit(url).port or 6379}"
        click.echo(f"error: cannot reach Redis at {where}: {exc}", err=True)
        return False
    return True


async def _show(url: str, as_json: bool) -> int:
    from voxflow.cluster.state import ClusterState

    state = ClusterState(url, worker_id="voxflow-cluster-cli")
    try:
        if not await _reachable(state, url):
            return EXIT_REDIS
        workers = await state.workers()
        calls = await state.call_entries()
    finally:
        await state.redis.aclose()
    if as_json:
        out = {"workers": [asdict(w) for w in workers], "calls": [asdict(c) for c in calls]}
        click.echo(json.dumps(out, indent=2))
        return 0
    now = time.time()
    click.echo(f"{len(workers)} worker(s)")
    for w in workers:
        click.echo(f"  {w.id}  {w.calls} call(s)  heartbeat {now - w.heartbeat:.1f} s ago")
    click.echo(f"{len(calls)} call(s)")
    for c in calls:
        click.echo(
            f"  {c.id}  on {c.worker}  {c.flow}@{c.flow_hash[:12]}  state {c.state or '-'}"
            f"  {now - c.started:.0f} s"
        )
    return 0
