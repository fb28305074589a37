"""``voxflow run``'s command line: its options and help. The work is in :mod:`voxflow.cli.run`,
imported when the command runs, so ``voxflow run --help`` (and a usage error) loads neither the
runtime, the telephony stack nor the compiler (``tests/cli/test_cli_startup.py``).
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["run_command"]


_EPILOG = """\b
Examples:
  voxflow run flows/main_ivr.flow                      # you are the caller (terminal)
  voxflow run flows/main_ivr.flow --caller caller.txt  # a scripted caller (CI)
  voxflow run flows/hours.flow --time 2025-01-06T18:30:00 --from +15550199 --no-audio
  VOXFLOW_ARI_PASSWORD="$PW" voxflow run flows --ari-url http://127.0.0.1:8088/ari \\
      --ari-user voxflow --trace traces   # the password stays out of the process list

\b
Exit codes:
  0  done (on the sandbox: the call did not end in error)
  1  invalid flows; no flow takes the dialled number; the call's outcome was
     'error' or 'failed' (--call not answered); the caller script failed
     (expect, wait for)
  2  bad options or settings (voxflow.toml, environment)
  3  cannot use ARI (unreachable, wrong credentials, app name taken)
  4  the call's outcome is unknown (no word from Asterisk: it may or may
     not have happened)
"""


@click.command(
    "run", epilog=_EPILOG, short_help="Run flows on Asterisk, or try one on the sandbox."
)
@click.argument("flows", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--ari-url",
    metavar="URL",
    help="ARI base URL of a real Asterisk, e.g. http://127.0.0.1:8088/ari [VOXFLOW_ARI_URL]. "
    "Without one, voxflow runs one call on the embedded sandbox. With --redis, several "
    "comma-separated URLs: a standby for those nodes, serving the first whose worker dies.",
)
@click.option(
    "--ari-user",
    metavar="USER",
    help="ARI user [VOXFLOW_ARI_USER]; required with --ari-url (sandbox: voxflow)",
)
@click.option(
    "--ari-password",
    metavar="PASSWORD",
    help="ARI password; visible to every user in the process list: prefer "
    "VOXFLOW_ARI_PASSWORD or [ari] password in voxflow.toml; required with --ari-url "
    "(sandbox: voxflow)",
)
@click.option(
    "--app",
    "app_name",
    metavar="NAME",
    help="Stasis application name [VOXFLOW_APP; default: voxflow]",
)
@click.option(
    "--ari-mode",
    type=click.Choice(["classic", "persistent", "per_call"]),
    help="classic: connect to Asterisk's events websocket (default); persistent/per_call: "
    "Asterisk 22's outbound ARI websockets connect to --listen [VOXFLOW_ARI_MODE]",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="outbound modes: where Asterisk connects [VOXFLOW_LISTEN; default: 127.0.0.1:8765]",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="settings file [default: ./voxflow.toml if present]",
)
@click.option(
    "--default-flow", metavar="NAME", help="flow for numbers no flow answers [voxflow.toml: run]"
)
@click.option(
    "--caller",
    "caller_script",
    type=click.Path(path_type=Path),
    metavar="SCRIPT",
    help="sandbox only: script of caller actions (wait, wait for, press, say, silence, "
    "expect, hangup); default on a terminal: you are the caller",
)
@click.option(
    "--to",
    "dialed",
    metavar="NUMBER",
    help="sandbox only: the number dialled (call.called) [default: the flow's first answers]",
)
@click.option(
    "--from",
    "caller_number",
    metavar="NUMBER",
    help="sandbox only: the caller's number (call.caller) [default: +15550100]",
)
@click.option(
    "--time",
    "call_time",
    metavar="WHEN",
    help="sandbox only: the call's start time, 2025-01-06T18:30:00 or 18:30 (today), "
    "in the flow's timezone [default: now]",
)
@click.option("--watch", is_flag=True, help="reload edited flows (new calls get new versions)")
@click.option(
    "--trace",
    "trace_dir",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="write one JSON Lines trace per call into DIR (voxflow replay reads them)",
)
@click.option(
    "--grace",
    "grace_period",
    type=float,
    metavar="SECONDS",
    help="seconds calls in progress may finish when stopping [default: 30]",
)
@click.option(
    "--hangup-timeout",
    "hangup_timeout",
    type=float,
    metavar="SECONDS",
    help="seconds a call's `on hangup` body may run after the call ended; one still running "
    "is cut and the call's end says so ([run] hangup_timeout) [default: 60]",
)
@click.option(
    "--drain",
    type=click.Choice(["finish", "handover"]),
    help="on SIGTERM: let calls finish within --grace, or (with --redis) hand them over to a "
    "standby worker without hanging up [default: finish]",
)
@click.option(
    "--no-audio",
    is_flag=True,
    help="no speech: prompts only in the transcript, DTMF only (no espeak/pocketsphinx)",
)
@click.option(
    "--no-warm-prompts",
    is_flag=True,
    help="do not synthesize the flows' static prompts before the first call ([media] warm_prompts)",
)
@click.option(
    "--stt-decoders",
    type=click.IntRange(min=1),
    help="offline recogniser's decoders, built before serving, ~95 MB each ([media] stt_decoders)",
)
@click.option(
    "--virtual-time",
    is_flag=True,
    help="sandbox, with --caller SCRIPT: the clock jumps whenever every side waits, so prompts, "
    "silences and waits take no wall time (CI)",
)
@click.option(
    "--call",
    "call_endpoint",
    metavar="ENDPOINT",
    help="originate one call to ENDPOINT (PJSIP/alice) into the outbound flow, then exit",
)
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="with --call: call.metadata")
@click.option("--caller-id", help='with --call: caller ID shown to the callee ("Acme <100>")')
@click.option("--rtp-host", help="address voxflow binds for RTP [VOXFLOW_RTP_HOST]")
@click.option("--rtp-advertise", help="address Asterisk sends RTP to (NAT) [VOXFLOW_RTP_ADVERTISE]")
@click.option("--rtp-ports", help="UDP port range for RTP, e.g. 40000-40999 [VOXFLOW_RTP_PORTS]")
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    help="cluster mode: shared state in Redis, e.g. redis://10.0.0.9:6379/0: calls resume on "
    "another worker when this one dies (docs/deploy.md) [VOXFLOW_REDIS_URL]",
)
@click.option(
    "--metrics-port",
    type=int,
    metavar="PORT",
    help="serve Prometheus /metrics, /healthz and /readyz on 127.0.0.1:PORT "
    "([cluster] metrics_host to change the address)",
)
@click.option(
    "-v", "--verbose", is_flag=True, help="log interpreter details (credentials redacted)"
)
def run_command(
    flows: tuple[Path, ...],
    ari_url: str | None,
    ari_user: str | None,
    ari_password: str | None,
    app_name: str | None,
    ari_mode: str | None,
    listen: str | None,
    config_path: Path | None,
    default_flow: str | None,
    caller_script: Path | None,
    dialed: str | None,
    caller_number: str | None,
    call_time: str | None,
    watch: bool,
    trace_dir: Path | None,
    grace_period: float | None,
    hangup_timeout: float | None,
    drain: str | None,
    no_audio: bool,
    no_warm_prompts: bool,
    stt_decoders: int | None,
    virtual_time: bool,
    call_endpoint: str | None,
    meta: tuple[str, ...],
    caller_id: str | None,
    rtp_host: str | None,
    rtp_advertise: str | None,
    rtp_ports: str | None,
    redis_url: str | None,
    metrics_port: int | None,
    verbose: bool,
) -> None:
    """Run FLOWS (files or directories) on Asterisk (with an ARI URL), else on the embedded
    sandbox.

    On the sandbox one call is placed into the flow that answers the number dialled: on a
    terminal you are the caller (type digits or sentences); otherwise, or with --caller SCRIPT,
    a script of caller actions plays (docs/running.md).
    """
    from voxflow.cli.run import run_flows

    run_flows(
        flows,
        caller_script=caller_script,
        watch=watch,
        no_audio=no_audio,
        virtual_time=virtual_time,
        call_endpoint=call_endpoint,
        caller_id=caller_id,
        verbose=verbose,
    )
