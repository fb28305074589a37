"""``voxflow run``: serve flows on Asterisk, or try one on the embedded sandbox.

Exit codes: 0 done; 1 invalid flows, no flow takes the dialled number, the call's outcome was
``error`` (or ``failed``: ``--call`` not answered), or the caller script failed (``expect``,
``wait for``); 2 bad options or settings; 3 cannot use ARI (unreachable, 401, application name
taken); 4 the call's outcome is unknown (``run_call.CALL_EXIT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from voxflow.cli import run_app
from voxflow.cli.run_call import cut_code, exit_code, outbound_flow, run_call
from voxflow.cli.run_caller import EXIT_FLOW, ScriptedCaller, default_script
from voxflow.cli.run_options import (
    EXIT_CONFIG,
    fail,
    load_run,
    redact_credentials,
    run_failure,
    settings_dict,
)
from voxflow.cli.run_target import SandboxCall, parse_call_time, pick_call, shifted_clock
from voxflow.errors import AriError, ConfigError, FlowError
from voxflow.media.pacing import worker_pacing
from voxflow.runtime.caller_script import CallerAction, load_script
from voxflow.runtime.config import Settings
from voxflow.runtime.driver import TranscriptLine
from voxflow.runtime.registry import FlowRegistry
from voxflow.testing.violoop import run_virtual

if TYPE_CHECKING:
    from voxflow.cluster.state import ClusterState
    from voxflow.runtime.server import FlowServer
    from voxflow.sandbox.caller import SimCall

__all__ = ["default_script", "run_flows"]


def run_flows(
    flows: tuple[Path, ...],
    *,
    caller_script: Path | None,
    watch: bool,
    no_audio: bool,
    virtual_time: bool,
    call_endpoint: str | None,
    caller_id: str | None,
    verbose: bool,
) -> None:
    """``voxflow run`` (:mod:`voxflow.cli.run_command` has its options; those not passed here
    are read from the click context by ``load_run``); exits with the command's exit code."""
    _configure_logging(verbose)
    settings, registry, metadata = load_run(flows, click.get_current_context().params)
    audio = not no_audio
    try:
        if call_endpoint is not None:
            call = _call(settings, registry, call_endpoint, metadata, caller_id, caller_script,
                         audio=audio)  # fmt: skip
            sys.exit(asyncio.run(call))
        if settings.ari_url is not None or settings.ari_mode != "classic":
            asyncio.run(_serve(settings, registry, watch, audio=audio))
            return
        code = _sandbox_call(
            settings, registry, caller_script, watch, audio=audio, virtual=virtual_time
        )
    except (ConfigError, FlowError, AriError) as exc:
        fail(*run_failure(exc, settings))
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code)


def _sandbox_call(
    settings: Settings,
    registry: FlowRegistry,
    caller_script: Path | None,
    watch: bool,
    *,
    audio: bool,
    virtual: bool,
) -> int:
    """One call on the embedded sandbox, into the flow that answers the number dialled: the
    script's caller, else you on a terminal; its exit code."""
    target = pick_call(registry, settings)
    start = (
        parse_call_time(settings.call_time, target.flow.flow.config.timezone)
        if settings.call_time
        else None
    )
    script = load_script(caller_script) if caller_script else None
    interactive = script is None and sys.stdin.isatty() and sys.stdout.isatty()
    return (run_virtual if virtual else asyncio.run)(
        _sandbox(
            settings,
            registry,
            script,
            target,
            watch,
            audio=audio,
            interactive=interactive,
            start=start,
        )
    )


def _configure_logging(verbose: bool) -> None:
    from voxflow.redact import install_redaction

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_redaction()


async def _call(
    settings: Settings,
    registry: FlowRegistry,
    endpoint: str,
    metadata: dict[str, str],
    caller_id: str | None,
    caller_script: Path | None,
    *,
    audio: bool,
) -> int:
    """``--call``: originate one call into the outbound flow (Asterisk or the sandbox)."""
    fv = outbound_flow(registry, settings)
    script = load_script(caller_script) if caller_script else default_script(fv.flow)
    heard: list[str] = []

    callee = ScriptedCaller(script, lambda: " ".join(heard))

    def make(url: str, user: str, password: str) -> Any:
        return run_app.make_app(settings, url, user, password, audio=audio)

    return await run_call(
        settings,
        registry,
        endpoint,
        make_app=make,
        metadata=metadata,
        caller_id=caller_id,
        callee=callee,
        heard=heard,
    )


def _reload_printer(
    registry: FlowRegistry, cluster: ClusterState | None = None
) -> Callable[[FlowRegistry], None]:
    """An ``on_reload`` callback printing what changed: new versions, and diagnostics of files
    that no longer compile (their previous version keeps serving). In cluster mode a new
    version is released to every worker."""
    shown = {fv.path: fv.version for fv in registry.versions()}
    releasing: set[asyncio.Future[str]] = set()
    problems: dict[Path, str] = {}

    def show(reg: FlowRegistry) -> None:
        for path, problem in reg.problems.items():
            if problems.get(path) != problem:
                click.echo(f"not reloaded (the previous version keeps serving): {path}", err=True)
                click.echo(problem, err=True)
        problems.clear()
        problems.update(reg.problems)
        for fv in reg.versions():
            if shown.get(fv.path) != fv.version:
                shown[fv.path] = fv.version
                click.echo(f"reloaded {fv.path}: flow {fv.flow.name} version {fv.version}")
                if cluster is not None:
                    task = asyncio.ensure_future(cluster.release(fv.flow))
                    releasing.add(task)
                    task.add_done_callback(releasing.discard)

    return show


def _on_signals(callback: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, callback)


async def _serve(
    settings: Settings, registry: FlowRegistry, watch: bool, *, audio: bool = True
) -> None:
    from voxflow.runtime.server import FlowServer

    nodes = settings.nodes()  # several: a standby for those nodes (cluster, classic mode)
    app = run_app.make_app(
        settings, nodes[0] if nodes else "", settings.ari_user, settings.ari_password, audio=audio
    )
    async with contextlib.AsyncExitStack() as stack:
        cluster = await _cluster(settings, registry, stack)
        server = FlowServer(
            app,
            registry,
            settings,
            watch_interval=1.0 if watch else None,
            on_reload=_reload_printer(registry, cluster),
            store=cluster,
        )
        server.warm_registry()  # prompts and decoders warm while a standby waits
        await run_app.warm_up_providers(app)
        if cluster is not None and settings.ari_mode == "classic":
            from voxflow.cluster.takeover import take_node  # one events socket per app name

            url, timeline = await take_node(cluster, app, nodes)
            settings = replace(settings, ari_url=url)
            if timeline is not None:
                stack.callback(timeline.cancel)
        if settings.metrics_port is not None:
            await _metrics(settings, server, cluster, stack)
        if cluster is not None:  # calls that ended while no worker served them: their end runs
            cluster.start_reaping(lambda: _channel_ids(app), end=server.end_unserved)
        await _serve_until_stopped(settings, registry, server, cluster, app)


async def _channel_ids(app: Any) -> set[str]:
    return {c.id for c in await app.rest.list_channels()}


async def _cluster(
    settings: Settings, registry: FlowRegistry, stack: contextlib.AsyncExitStack
) -> ClusterState | None:
    """``--redis``: this worker's ClusterState (its flows published), else None."""
    if settings.redis_url is None:
        return None
    from voxflow.cluster.state import ClusterState

    cluster = ClusterState(
        settings.redis_url,
        worker_id=f"{socket.gethostname()}-{os.getpid()}",
        heartbeat=settings.failover_ttl / 3,
        worker_ttl=settings.failover_ttl,
        unadopted_grace=settings.reconnect_window,
        away_ttl=settings.away_ttl,
    )
    refused = await _redis_refuses(cluster)
    if refused:
        await cluster.redis.aclose()
        fail(f"--redis: Redis refused this worker's credentials: {refused}", EXIT_CONFIG)
    await stack.enter_async_context(cluster)
    for fv in registry.versions():  # the cluster's current versions stay unless there are none
        await cluster.release(fv.flow, only_if_new=True)
    click.echo(f"cluster mode: worker {cluster.worker_id}")
    return cluster


async def _redis_refuses(cluster: ClusterState) -> str | None:
    """Why Redis refuses the URL's password or user (a setting no retry fixes); None when it
    answers, or cannot be reached now (the worker then waits for it, as documented)."""
    from redis.exceptions import AuthenticationError, RedisError

    try:
        await cluster.redis.ping()
    except AuthenticationError as exc:
        return str(exc)
    except (RedisError, OSError):
        return None
    return None


async def _metrics(
    settings: Settings,
    server: FlowServer,
    cluster: ClusterState | None,
    stack: contextlib.AsyncExitStack,
) -> None:
    from voxflow.cluster.metrics import MetricsServer, WorkerCollector

    metrics = MetricsServer(
        WorkerCollector(server, cluster), settings.metrics_host, settings.metrics_port or 0
    )
    port = await metrics.start()
    stack.push_async_callback(metrics.close)
    click.echo(f"metrics on http://{settings.metrics_host}:{port}/metrics (/healthz, /readyz)")


async def _serve_until_stopped(
    settings: Settings,
    registry: FlowRegistry,
    server: FlowServer,
    cluster: ClusterState | None,
    app: Any,
) -> None:
    stop = asyncio.Event()
    leaving: list[asyncio.Future[None]] = []

    def stopping() -> None:
        if cluster is not None and not cluster.draining:  # leave the registry first
            leaving.append(asyncio.ensure_future(cluster.leave()))
        if not stop.is_set():
            n = len(server.drivers)
            if settings.drain == "handover":
                click.echo(f"stopping: no new calls; {n} call(s) in progress handed over")
            else:
                click.echo(
                    f"stopping: no new calls; {n} call(s) in progress may finish within "
                    f"{settings.grace_period:g} s"
                )
        stop.set()

    _on_signals(stopping)
    names = ", ".join(fv.flow.name for fv in registry.versions())
    if settings.ari_mode == "classic":
        where = f"on {settings.ari_url}"
    else:
        where = f"for Asterisk's {settings.ari_mode} websockets on ws://{settings.listen}"
    click.echo(f"serving {names} {where} as app '{settings.app}' (Ctrl-C stops)")
    # gc.freeze(), then the [media] pacer and gc until the worker stops (docs/media-performance.md)
    async with worker_pacing(settings.pacer, settings.media_gc):
        try:
            await server.serve(stop)
        finally:
            await run_app.close_providers(app)
    click.echo(f"stopped after {server.results.total} call(s)")


def _print_line(call_id: str, line: TranscriptLine) -> None:
    t, who, text = line
    label = {"flow": "FLOW  ", "caller": "CALLER", "system": "      "}.get(who, who)
    click.echo(f"{t:7.2f}  {label}  {text}")


async def _sandbox(
    settings: Settings,
    registry: FlowRegistry,
    script: list[CallerAction] | None,
    call_to: SandboxCall,
    watch: bool,
    *,
    audio: bool = True,
    interactive: bool = False,
    start: float | None = None,
) -> int:
    from voxflow.runtime.server import FlowServer
    from voxflow.sandbox.server import Sandbox

    target, to = call_to.flow, call_to.to
    if script is None:
        script = default_script(target.flow)
    async with Sandbox(port=0) as sb:
        redact_credentials(sb.user, sb.password)
        app = run_app.make_app(settings, sb.ari_url, sb.user, sb.password, audio=audio)
        if settings.default_flow is None and not target.flow.answers:
            settings = Settings(**{**settings_dict(settings), "default_flow": target.flow.name})
        lines: list[str] = []

        def show(call_id: str, line: TranscriptLine) -> None:
            lines.append(line[2])
            _print_line(call_id, line)

        server = FlowServer(
            app,
            registry,
            settings,
            on_transcript=show,
            watch_interval=1.0 if watch else None,
            on_reload=_reload_printer(registry),
            clock=shifted_clock(start),
        )
        stop = asyncio.Event()
        interrupted = asyncio.Event()
        _on_signals(interrupted.set)
        serving = asyncio.ensure_future(server.serve(stop))
        try:
            click.echo(f"sandbox call from {call_to.caller} to {to} -> flow {target.flow.name}")
            call = await sb.place_call(from_=call_to.caller, to=to, app=settings.app)
            scripted = None if interactive else ScriptedCaller(script, lambda: " ".join(lines))
            code = await _play_call(server, call, scripted, interrupted)
        finally:
            stop.set()
            await serving
            await run_app.close_providers(app)
    return _outcome_code(server, code, to)


async def _play_call(
    server: FlowServer, call: SimCall, scripted: ScriptedCaller | None, interrupted: asyncio.Event
) -> int:
    """Play the caller (``scripted``, else you at the terminal) until its script is over, the
    flow ends or Ctrl-C; then hang up what is left. The caller script's exit code."""
    code = 0
    caller: asyncio.Future[Any]
    if scripted is None:
        from voxflow.cli.run_interactive import HELP, interactive_caller

        click.echo(HELP)
        caller = asyncio.ensure_future(interactive_caller(call, echo=click.echo))
    else:
        caller = asyncio.ensure_future(scripted.play(call))
    stopper = asyncio.ensure_future(interrupted.wait())
    flow_done = asyncio.ensure_future(_flow_ended(server, call))
    await asyncio.wait({caller, stopper, flow_done}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if caller.done() and isinstance(caller.result(), int):
        code = int(caller.result())
        if not call.ended:  # the script is over (or failed): the caller hangs up
            await _hang_up(call)
    elif not caller.done():  # the flow ended (or Ctrl-C): the caller stops too
        caller.cancel()
        await asyncio.gather(caller, return_exceptions=True)
        if interrupted.is_set():
            click.echo("interrupted: hanging up")
            await _hang_up(call)
        elif scripted is not None:  # the lines the call did not live to reach still count
            code = scripted.after_end()
    await asyncio.wait({flow_done}, timeout=30)
    flow_done.cancel()
    await asyncio.gather(stopper, flow_done, return_exceptions=True)
    if not call.ended:  # transferred/queued: the call went on in the dialplan
        await _hang_up(call)
    return code


async def _hang_up(call: SimCall) -> None:
    """The sandbox caller hangs up; a call already gone is no error."""
    with contextlib.suppress(Exception):
        await call.hangup()


def _outcome_code(server: FlowServer, code: int, to: str) -> int:
    """Print each flow's outcome; the exit code: ``code``, else the outcome's (1 for ``error``,
    4 for ``unknown``: ``run_call.CALL_EXIT``), else 1 when no flow took the call."""
    for result in server.results.values():
        click.echo(f"outcome: {result.outcome}" + (f" ({result.reason})" if result.reason else ""))
        if code == 0:
            code = exit_code(result.outcome) or cut_code(result)
    if not server.results and code == 0:
        click.echo(f"error: no flow took the call to {to}", err=True)
        code = EXIT_FLOW
    return code


async def _flow_ended(server: Any, call: Any) -> None:
    """Wait until the flow running ``call`` has finished (its result is in)."""
    while call.id not in server.results:
        if call.ended and not server.drivers:
            return
        await asyncio.sleep(0.05)
