"""``voxflow run``'s settings and options, checked before anything starts, and its exit codes.

:func:`load_run` reads the settings (command line over environment over voxflow.toml), installs
the redaction of every credential they hold, rejects options the run would ignore (sandbox-only
ones on Asterisk and the reverse, ``--meta`` without ``--call``, a trace directory it cannot
write, an RTP address it cannot bind) and loads the flows. Exit codes: 1 invalid flows
(``EXIT_FLOW``), 2 bad options or settings, 3 cannot use ARI.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from voxflow.cli.diag import warn
from voxflow.cli.messages import EXIT_CONFIG, fail
from voxflow.cli.run_call import parse_meta
from voxflow.cli.run_caller import EXIT_FLOW
from voxflow.errors import (
    ApplicationReplacedError,
    AriConnectionError,
    AriError,
    AriUnauthorized,
    ConfigError,
    FlowError,
)
from voxflow.runtime.config import Settings, load_settings
from voxflow.runtime.registry import FlowRegistry

__all__ = [
    "EXIT_ARI",
    "EXIT_CONFIG",
    "fail",
    "load_run",
    "redact_credentials",
    "run_failure",
    "settings_dict",
]

EXIT_ARI = 3


_SANDBOX_ONLY = {"caller_script": "--caller", "dialed": "--to", "caller_number": "--from",
                 "call_time": "--time", "virtual_time": "--virtual-time"}  # fmt: skip
# what a worker serving Asterisk does, and the one call on the embedded sandbox does not
_ASTERISK_ONLY = {"redis_url": "--redis", "metrics_port": "--metrics-port", "drain": "--drain"}


# run_command's options that are settings of the same name (None: not given)
_SETTING_OPTIONS = (
    "ari_url", "ari_user", "ari_password", "ari_mode", "listen", "default_flow", "grace_period",
    "hangup_timeout", "drain", "dialed", "caller_number", "call_time", "rtp_host",
    "rtp_advertise", "rtp_ports", "redis_url", "metrics_port", "stt_decoders",
)  # fmt: skip


def _setting_overrides(params: dict[str, Any]) -> dict[str, Any]:
    """The command line's overrides of the settings, by setting name."""
    out = {name: params[name] for name in _SETTING_OPTIONS}
    out["app"] = params["app_name"]
    out["trace_dir"] = str(params["trace_dir"]) if params["trace_dir"] else None
    out["warm_prompts"] = False if params["no_warm_prompts"] else None
    return out


def load_run(
    flows: tuple[Path, ...], params: dict[str, Any]
) -> tuple[Settings, FlowRegistry, dict[str, str]]:
    """run_command's settings (credentials redacted from logs from now on), loaded flows and
    ``--meta``; exits 2 on bad settings or options, 1 on invalid flows."""
    try:
        settings = load_settings(
            _setting_overrides(params),
            config_path=params["config_path"],
            require_credentials=True,
        )
        redact_credentials(settings.ari_user, settings.ari_password, *_more_secrets(settings))
        script, endpoint = params["caller_script"], params["call_endpoint"]
        _check_sandbox_only(settings, script, params["virtual_time"], endpoint)
        _check_asterisk_only(settings, params)
        _check_call_and_trace(settings, endpoint, params["meta"], params["caller_id"])
        if not params["no_audio"]:
            _check_rtp_host(settings.rtp_host, "--rtp-host" if params["rtp_host"] else "rtp_host")
        metadata = parse_meta(params["meta"])
        registry = FlowRegistry()
        registry.load(flows, warn)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    except FlowError as exc:
        fail(f"invalid flow(s):\n{exc}", EXIT_FLOW)
    return settings, registry, metadata


def _check_asterisk_only(settings: Settings, params: dict[str, Any]) -> None:
    """On the embedded sandbox (no ARI URL, classic mode): ConfigError for a worker's options
    given on the command line; the same settings from the environment or voxflow.toml are
    noted as unused (a production config may hold them)."""
    if settings.ari_url is not None or settings.ari_mode != "classic":
        return
    given = [flag for name, flag in _ASTERISK_ONLY.items() if params.get(name) is not None]
    if given:
        raise ConfigError(
            f"{', '.join(given)}: only for a worker serving Asterisk (--ari-url or an "
            "outbound-websocket --ari-mode), not for the embedded sandbox's call"
        )
    unused = [n for n in ("redis_url", "metrics_port") if getattr(settings, n) is not None]
    if unused:
        warn(f"not used on the embedded sandbox: {', '.join(unused)} (environment or config)")


def run_failure(exc: ConfigError | FlowError | AriError, settings: Settings) -> tuple[str, int]:
    """The message and exit code for an error that ended the run."""
    if isinstance(exc, ConfigError):
        return str(exc), EXIT_CONFIG
    if isinstance(exc, FlowError):
        return str(exc), EXIT_FLOW
    if isinstance(exc, AriUnauthorized):
        user = settings.ari_user
        return f"ARI rejected user '{user}' (401): check --ari-user/--ari-password", EXIT_ARI
    if isinstance(exc, ApplicationReplacedError):
        return f"another client took the ARI application name '{settings.app}'", EXIT_ARI
    if isinstance(exc, AriConnectionError):
        return f"cannot reach ARI at {settings.ari_url}: {exc}", EXIT_ARI
    return f"ARI error: {exc}", EXIT_ARI


def _check_sandbox_only(
    settings: Settings, caller_script: Path | None, virtual_time: bool, call_endpoint: str | None
) -> None:
    """ConfigError for the options that only make sense on the embedded sandbox when the run
    is on Asterisk (an ARI URL, or an outbound-websocket mode)."""
    if settings.ari_url is not None or settings.ari_mode != "classic":
        given = {
            "caller_script": caller_script,
            "virtual_time": virtual_time or None,
            **settings_dict(settings),
        }
        bad = [flag for name, flag in _SANDBOX_ONLY.items() if given.get(name) is not None]
        if bad:
            where = settings.ari_url or f"ARI mode {settings.ari_mode}"
            raise ConfigError(f"{', '.join(bad)}: sandbox only, not with Asterisk ({where})")
    if virtual_time and (caller_script is None or call_endpoint is not None):
        raise ConfigError("--virtual-time: only for a sandbox call with --caller SCRIPT")


def _check_call_and_trace(
    settings: Settings, call_endpoint: str | None, meta: tuple[str, ...], caller_id: str | None
) -> None:
    """ConfigError for ``--meta``/``--caller-id`` without ``--call`` (they would be ignored),
    and for a trace directory that cannot be created or written (no trace would be kept)."""
    if call_endpoint is None and (meta or caller_id is not None):
        given = [flag for flag, v in (("--meta", meta), ("--caller-id", caller_id)) if v]
        raise ConfigError(f"{', '.join(given)}: only with --call ENDPOINT")
    if settings.trace_dir:
        where = Path(settings.trace_dir)
        try:
            where.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # what mkdir says of a file there
            raise ConfigError(f"--trace: {where} is a file, not a directory") from None
        except OSError as exc:
            raise ConfigError(f"--trace: cannot create {where}: {exc.strerror or exc}") from None
        if not os.access(where, os.W_OK | os.X_OK):
            raise ConfigError(f"--trace: cannot write into {where}")


def _check_rtp_host(host: str, origin: str) -> None:
    """ConfigError when ``host`` cannot be bound for RTP (not an address of this machine, a
    name that does not resolve): every call's media would fail."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, 0))
        except OSError as exc:
            raise ConfigError(
                f"{origin}: cannot bind RTP on {host}: {exc.strerror or exc} (give an address "
                "of this machine, or 0.0.0.0; --rtp-advertise for the one Asterisk sends to)"
            ) from None


def redact_credentials(user: str, password: str, *more: str | None) -> None:
    """Logs never show these (nor ``user:password`` in base64, as in a Basic header)."""
    from voxflow.redact import install_redaction

    install_redaction([password, f"{user}:{password}", *(m for m in more if m)])


def _more_secrets(settings: Settings) -> list[str]:
    """The settings' other credentials: the webhook secret, the Redis URL's password, and the
    password (and ``user:password``, as in its Basic header) Asterisk's outbound websockets
    present to ``listen``."""
    out = [settings.webhook_secret or ""]
    out.append(urlsplit(settings.redis_url).password or "" if settings.redis_url else "")
    if settings.listen_password:
        user = settings.listen_user or settings.ari_user
        out += [settings.listen_password, f"{user}:{settings.listen_password}"]
    return [s for s in out if s]


def settings_dict(s: Settings) -> dict[str, Any]:
    """Every field of ``s`` by name."""
    from dataclasses import fields

    return {f.name: getattr(s, f.name) for f in fields(s)}
