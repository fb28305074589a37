"""``voxflow run FLOW --call ENDPOINT``: originate one call into an outbound flow and run it.

On Asterisk (an ARI URL is set) the app connects, ``POST /channels`` dials ``ENDPOINT``
(``PJSIP/alice``, ``Local/100@voxflow-test-caller``...) and, once it answers, the flow runs on
it with ``--meta key=value`` in ``call.metadata``. On the sandbox the far end is a scripted
callee that answers, follows the caller script (``--caller``, or the demo caller) and hangs up
when the script ends. Exit codes (:data:`CALL_EXIT`): 0 the flow ran (``completed``,
``caller_hangup``, ``transferred``), 1 the call was not answered (``failed``: busy, no answer),
the flow ended in ``error``, its ``on hangup`` body was cut (``--hangup-timeout``) or the
callee's script failed (``wait for``, ``expect``), 4 nobody
knows what became of the call (``unknown``, or it went on on another worker).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import click

from voxflow.cli.run_caller import EXIT_FLOW, ScriptedCaller
from voxflow.errors import ConfigError
from voxflow.runtime.config import Settings
from voxflow.runtime.driver import TranscriptLine
from voxflow.runtime.events import End
from voxflow.runtime.registry import FlowRegistry, FlowVersion

__all__ = [
    "CALL_EXIT",
    "EXIT_UNKNOWN",
    "cut_code",
    "exit_code",
    "outbound_flow",
    "parse_meta",
    "run_call",
]

EXIT_UNKNOWN = 4
"""Exit code when the call's outcome is not known (``unknown``: no word from Asterisk)."""
CALL_EXIT = {
    "completed": 0,
    "caller_hangup": 0,
    "transferred": 0,
    "failed": EXIT_FLOW,
    "error": EXIT_FLOW,
    "unknown": EXIT_UNKNOWN,
}
"""Exit code per outcome; any other (``handed_over``, ``ended_elsewhere``) is EXIT_UNKNOWN."""

AppFactory = Callable[[str, str, str], Any]
"""(ari_url, user, password) -> VoxtraApp."""


def parse_meta(items: tuple[str, ...]) -> dict[str, str]:
    """``("patient_name=Ann", ...)`` -> ``{"patient_name": "Ann"}`` (``ConfigError`` if bad)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"--meta must look like key=value with key an identifier: {item!r}")
        out[key.strip()] = value
    return out


def outbound_flow(registry: FlowRegistry, settings: Settings) -> FlowVersion:
    """The flow ``--call`` runs: ``--default-flow``, else the only ``direction outbound`` flow,
    else the only flow loaded."""
    versions = registry.versions()
    if settings.default_flow:
        fv = registry.get(settings.default_flow)
        if fv is None:
            raise ConfigError(f"no flow '{settings.default_flow}' is loaded")
        return fv
    outbound = [v for v in versions if v.flow.direction == "outbound"]
    if len(outbound) == 1:
        return outbound[0]
    if len(versions) == 1:
        return versions[0]
    names = ", ".join(v.flow.name for v in versions)
    raise ConfigError(f"--call: several flows are loaded ({names}); name one with --default-flow")


def _print(call_id: str, line: TranscriptLine) -> None:
    t, who, text = line
    label = {"flow": "FLOW  ", "caller": "CALLEE", "system": "      "}.get(who, who)
    click.echo(f"{t:7.2f}  {label}  {text}")


async def run_call(
    settings: Settings,
    registry: FlowRegistry,
    endpoint: str,
    *,
    make_app: AppFactory,
    metadata: Mapping[str, str],
    caller_id: str | None,
    callee: ScriptedCaller,
    heard: list[str] | None = None,
) -> int:
    """Originate ``endpoint`` into the outbound flow; on the sandbox when no ARI URL is set."""
    fv = outbound_flow(registry, settings)
    if "/" not in endpoint:
        raise ConfigError(f"--call wants TECH/resource (e.g. PJSIP/alice), got {endpoint!r}")
    if settings.ari_url is not None:
        app = make_app(settings.ari_url, settings.ari_user, settings.ari_password)
        end, _ = await _originate(
            app, registry, settings, fv, endpoint, (metadata, caller_id), heard
        )
        return _report(end)
    from voxflow.sandbox.server import Sandbox

    async with Sandbox(port=0) as sb:
        app = make_app(sb.ari_url, sb.user, sb.password)

        async def far_end() -> int:
            call = await sb.next_outbound(timeout=30.0)
            code = await callee.play(call)
            if not call.ended:  # the script is over (or failed): the callee hangs up
                with contextlib.suppress(Exception):
                    await call.hangup()
            return code

        end, script_failed = await _originate(
            app, registry, settings, fv, endpoint, (metadata, caller_id), heard, (far_end, callee)
        )
    return max(_report(end), EXIT_FLOW if script_failed else 0)


async def _originate(
    app: Any,
    registry: FlowRegistry,
    settings: Settings,
    fv: FlowVersion,
    endpoint: str,
    how: tuple[Mapping[str, str], str | None],
    heard: list[str] | None,
    far: tuple[Callable[[], Awaitable[int]], ScriptedCaller] | None = None,
) -> tuple[End, bool]:
    """The call's end, and whether the sandbox callee's script failed."""
    from voxflow.runtime.server import FlowServer

    metadata, caller_id = how

    def show(call_id: str, line: TranscriptLine) -> None:
        if heard is not None:
            heard.append(line[2])
        _print(call_id, line)

    server = FlowServer(app, registry, settings, on_transcript=show)
    stop = asyncio.Event()
    serving = asyncio.ensure_future(server.serve(stop))
    callee: asyncio.Future[int] | None = None
    try:
        async with asyncio.timeout(15.0):
            while not app.connected:  # serve() starts the app: wait until it can originate
                if serving.done():
                    serving.result()  # ARI unreachable, 401...: raise it
                await asyncio.sleep(0.02)
        click.echo(f"calling {endpoint} -> flow {fv.flow.name}")
        if far is not None:
            callee = asyncio.ensure_future(far[0]())
        end = await server.call_out(
            fv.flow.name, endpoint, caller_id=caller_id, metadata=dict(metadata)
        )
        if callee is None:
            return end, False
        if callee.done() and not callee.cancelled() and callee.exception() is None:
            return end, callee.result() != 0
        callee.cancel()  # the flow ended first: the script lines left still count
        await asyncio.gather(callee, return_exceptions=True)
        return end, far is not None and far[1].after_end() != 0
    finally:
        if callee is not None and not callee.done():
            callee.cancel()
            await asyncio.gather(callee, return_exceptions=True)
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


def exit_code(outcome: str) -> int:
    """The exit code for a call that ended with ``outcome`` (:data:`CALL_EXIT`)."""
    return CALL_EXIT.get(outcome, EXIT_UNKNOWN)


def cut_code(end: End) -> int:
    """EXIT_FLOW, said on stderr, when the call's ``on hangup`` body was cut; else 0."""
    if end.on_hangup_cut is None:
        return 0
    click.echo(
        f"error: the flow's on hangup body was cut after {end.on_hangup_cut:g} s "
        "(--hangup-timeout): the steps after it did not run",
        err=True,
    )
    return EXIT_FLOW


def _report(end: End) -> int:
    click.echo(f"outcome: {end.outcome}" + (f" ({end.reason})" if end.reason else ""))
    code = exit_code(end.outcome) or cut_code(end)
    if code == EXIT_UNKNOWN:
        click.echo(
            f"error: it is not known whether the call happened as the flow meant "
            f"({end.reason or end.outcome}); check Asterisk's CDRs (exit {code})",
            err=True,
        )
    return code
