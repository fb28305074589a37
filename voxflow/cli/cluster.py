"""``voxflow cluster``: the cluster's live workers and calls, as Redis holds them."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

import click

from voxflow.errors import ConfigError
from voxflow.runtime.config import load_settings

__all__ = ["cluster_command"]

EXIT_CONFIG, EXIT_REDIS = 2, 3


@click.command("cluster", short_help="Show the cluster's workers and calls (Redis).")
@click.option("--redis", "redis_url", metavar="URL", help="Redis URL [VOXFLOW_REDIS_URL]")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="settings file [default: ./voxflow.toml if present]",
)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def cluster_command(redis_url: str | None, config_path: Path | None, as_json: bool) -> None:
    """Show the live workers (id, calls, heartbeat) and the calls in progress (worker, flow
    version, state) of the cluster whose shared state is in Redis (docs/deploy.md)."""
    try:
        settings = load_settings({"redis_url": redis_url}, config_path=config_path)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    if settings.redis_url is None:
        click.echo("error: no Redis URL: give --redis URL (or VOXFLOW_REDIS_URL)", err=True)
        sys.exit(EXIT_CONFIG)
    sys.exit(asyncio.run(_show(settings.redis_url, as_json)))


async def _show(url: str, as_json: bool) -> int:
    from redis.exceptions import RedisError

    from voxflow.cluster.state import ClusterState

    state = ClusterState(url, worker_id="voxflow-cluster-cli")
    try:
        try:
            await state.redis.ping()
        except (RedisError, OSError) as exc:
            parts = urlsplit(url)
            click.echo(
                f"error: cannot reach Redis at {parts.hostname}:{parts.port or 6379}: {exc}",
                err=True,
            )
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
