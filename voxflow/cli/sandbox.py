"""``voxflow sandbox``: run the embedded PBX standalone for any ARI client."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import signal
from urllib.parse import urlsplit

import click

from voxflow.errors import ConfigError

__all__ = ["parse_delay_ms", "sandbox_command"]


def parse_delay_ms(text: str) -> tuple[float, float]:
    """``"0.3-30"`` (a random delay in that range, milliseconds) or ``"5"`` -> seconds."""
    lo_s, sep, hi_s = text.partition("-")
    try:
        lo = float(lo_s)
        hi = float(hi_s) if sep else lo
    except ValueError:
        raise click.BadParameter(f"expected MS or MIN-MAX milliseconds, not {text!r}") from None
    if not 0 <= lo <= hi:
        raise click.BadParameter(f"expected 0 <= MIN <= MAX milliseconds, not {text!r}")
    return lo / 1000, hi / 1000


async def _serve(
    host: str,
    port: int,
    user: str,
    password: str,
    answer_delay: float,
    outbound: tuple[str, str, str] | None = None,
    *,
    stasis_delay: tuple[float, float] = (0.0, 0.0),
    caller_dtx: bool = False,
) -> None:
    from voxflow.sandbox import Sandbox
    from voxflow.sandbox.outbound import OutboundWebsocket

    sb = Sandbox(
        host,
        port,
        user=user,
        password=password,
        answer_delay=answer_delay,
        stasis_delay=stasis_delay,
        caller_dtx=caller_dtx,
        precise_rtp=True,
    )
    await sb.start()
    gc.collect()
    gc.freeze()  # what start() built lives as long as the server: keep it out of collections
    click.echo(f"voxflow sandbox: ARI at {sb.ari_url} (user {user!r})")
    click.echo(f"  events:  ws://{host}:{sb.port}/ari/events?app=voxflow&api_key={user}:***")
    click.echo(f"  control: {sb.base_url}/sandbox/calls  (Ctrl-C to stop)")
    if outbound is not None:
        uri, app, kind = outbound
        sb.add_outbound_websocket(OutboundWebsocket(app, uri, user, password, connection_type=kind))
        click.echo(f"  Stasis({app}) connects out to {uri} ({kind}, as user {user!r})")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sb.stop()


def _ws_uri(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--outbound-ws``: a ws:// or wss:// URL with a host, checked before the server starts."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise click.BadParameter(f"expected ws://HOST:PORT/PATH or wss://..., not {value!r}")
    return value


def _seconds(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """A finite number of seconds (click's FloatRange lets NaN through)."""
    if not math.isfinite(value):
        raise click.BadParameter(f"expected a number of seconds, got {value}")
    return value


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8088, show_default=True, type=click.IntRange(0, 65535),
              help="Port (0 = any).")  # fmt: skip
@click.option("--user", default="voxflow", show_default=True, help="ARI user.")
@click.option("--password", default="voxflow", show_default=True, help="ARI password.")
@click.option("--answer-delay", default=0.0, show_default=True,
              type=click.FloatRange(0, 3600), callback=_seconds,
              help="Seconds before simulated far ends answer originated calls.")  # fmt: skip
@click.option("--stasis-delay", "stasis_delay", default="0.3-30", show_default=True,
              metavar="MS|MIN-MAX", help="Milliseconds after its REST answer an externalMedia or "
              "snoop channel enters Stasis (Asterisk 22: 0.3-30 ms).")  # fmt: skip
@click.option(
    "--caller-dtx",
    is_flag=True,
    help="Scripted callers send no RTP while silent (DTX / silence suppression).",
)
@click.option("--outbound-ws", "outbound_uri", metavar="URI", callback=_ws_uri,
              help="Asterisk 22 outbound ARI websocket: connect out to ws://HOST:PORT/PATH "
              "(a worker run with voxflow run --ari-mode) with --user/--password.")  # fmt: skip
@click.option("--outbound-app", default="voxflow", show_default=True,
              help="The Stasis app served by --outbound-ws.")  # fmt: skip
@click.option("--outbound-type", type=click.Choice(["per_call_config", "persistent"]),
              default="per_call_config", show_default=True,
              help="websocket_client.conf connection_type.")  # fmt: skip
def sandbox_command(
    host: str,
    port: int,
    user: str,
    password: str,
    answer_delay: float,
    stasis_delay: str,
    caller_dtx: bool,
    outbound_uri: str | None,
    outbound_app: str,
    outbound_type: str,
) -> None:
    """Run the embedded PBX sandbox: Asterisk-like ARI (REST, events, RTP) on HOST:PORT."""
    outbound = (outbound_uri, outbound_app, outbound_type) if outbound_uri else None
    delay = parse_delay_ms(stasis_delay)
    try:
        serve = _serve(
            host, port, user, password, answer_delay, outbound,
            stasis_delay=delay, caller_dtx=caller_dtx,
        )  # fmt: skip
        asyncio.run(serve)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass
