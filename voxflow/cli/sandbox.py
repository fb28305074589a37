"""``voxflow sandbox``: run the embedded PBX standalone for any ARI client."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal

import click

from voxflow.errors import ConfigError

__all__ = ["sandbox_command"]


async def _serve(host: str, port: int, user: str, password: str, answer_delay: float) -> None:
    from voxflow.sandbox import Sandbox

    sb = Sandbox(
        host, port, user=user, password=password, answer_delay=answer_delay, precise_rtp=True
    )
    await sb.start()
    gc.collect()
    gc.freeze()  # what start() built lives as long as the server: keep it out of collections
    click.echo(f"voxflow sandbox: ARI at {sb.ari_url} (user {user!r})")
    click.echo(f"  events:  ws://{host}:{sb.port}/ari/events?app=voxflow&api_key={user}:***")
    click.echo(f"  control: {sb.base_url}/sandbox/calls  (Ctrl-C to stop)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sb.stop()


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8088, show_default=True, type=int, help="Port (0 = any).")
@click.option("--user", default="voxflow", show_default=True, help="ARI user.")
@click.option("--password", default="voxflow", show_default=True, help="ARI password.")
@click.option("--answer-delay", default=0.0, show_default=True, type=float,
              help="Seconds before simulated far ends answer originated calls.")  # fmt: skip
def sandbox_command(host: str, port: int, user: str, password: str, answer_delay: float) -> None:
    """Run the embedded PBX sandbox: Asterisk-like ARI (REST, events, RTP) on HOST:PORT."""
    try:
        asyncio.run(_serve(host, port, user, password, answer_delay))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass
