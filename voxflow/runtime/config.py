"""Settings for ``voxflow run``: CLI options > environment > ``voxflow.toml`` > defaults.

``voxflow.toml`` (all keys optional)::

    [ari]
    url = "http://127.0.0.1:8088/ari"  # cluster standby: a list of nodes' URLs (docs/deploy.md)
    user = "voxflow"
    password = "secret"
    app = "voxflow"
    mode = "classic"              # or Asterisk 22's outbound websockets: persistent, per_call
    listen = "127.0.0.1:8765"     # outbound modes: where Asterisk connects (its uri)
    listen_user = "asterisk"      # what Asterisk presents (default: user, password)
    listen_password = "secret"

    [run]
    default_flow = "main_ivr"     # flow name used when no flow declares the dialed number
    grace_period = 30             # seconds calls may finish after SIGINT/SIGTERM
    hangup_timeout = 60           # seconds a call's on hangup body may run after it ended
    away_ttl = 3600               # s a call that ended 'unknown' is kept for its return (0-86400)
    trace_dir = "traces"
    max_steps = 1000              # step budget between two waits, per call

    [webhooks]
    url = "https://example.com/hooks"
    secret = "..."
    retry_attempts = 5            # tries per delivery (1: none retried)
    retry_initial_delay = 1.0     # seconds before the second try; each wait x retry_factor
    retry_factor = 2.0
    retry_max_delay = 15.0        # the longest wait
    retry_within = 60.0           # no try later than this many seconds after the first

    [sandbox]                     # only for the embedded sandbox (no ARI URL)
    time = "2025-01-06T18:30:00"  # the call's start time, in the flow's timezone
    from = "+15550100"            # the caller's number (call.caller)
    to = "100"                    # the number dialled (call.called)
    [cluster]                     # cluster mode (docs/deploy.md); without redis_url: one process
    redis_url = "redis://10.0.0.9:6379/0"  # shared state: workers, calls, flows, checkpoints
    metrics_port = 9464           # Prometheus /metrics, /healthz, /readyz (default: none)
    metrics_host = "127.0.0.1"
    failover_ttl = 3.0            # seconds: a dead worker's calls move after this (heartbeat: /3)
    reconnect_window = 10.0       # outbound modes: s Asterisk may take to re-connect a call
    drain = "finish"              # on SIGTERM: finish (within grace_period) | handover
    [media]                       # where Asterisk sends a call's RTP (externalMedia)
    rtp_host = "127.0.0.1"        # address voxflow binds (0.0.0.0: all interfaces)
    rtp_advertise = "10.0.0.5"    # address Asterisk is told to send to (default: rtp_host)
    rtp_ports = "40000-40999"     # one UDP port per call with audio; not Asterisk's 10000-20000
    warm_prompts = true           # synthesize the flows' static prompts before the first call
    stt_decoders = 3              # offline recogniser's decoders (~95 MB each), built at start
    pacer = "thread"              # 20 ms RTP ticks on a thread of their own, or "loop" (asyncio)
    gc = "slack"                  # between ticks; "sized"; "freeze"; "sized-freeze"; "python"

Environment: ``VOXFLOW_ARI_URL``, ``VOXFLOW_ARI_USER``, ``VOXFLOW_ARI_PASSWORD``, ``VOXFLOW_APP``,
``VOXFLOW_ARI_MODE``, ``VOXFLOW_LISTEN``, ``VOXFLOW_LISTEN_USER``, ``VOXFLOW_LISTEN_PASSWORD``,
``VOXFLOW_WEBHOOK_URL``, ``VOXFLOW_WEBHOOK_SECRET``, ``VOXFLOW_RTP_HOST``,
``VOXFLOW_RTP_ADVERTISE``, ``VOXFLOW_RTP_PORTS``, ``VOXFLOW_REDIS_URL``. Every problem raises
:class:`ConfigError` with a one-line message naming where the bad value came from.

``voxflow test`` and ``voxflow replay`` read the same settings the same way (``--config``, else
``./voxflow.toml``, and the environment; the same errors) and use those of :data:`CALL_SETTINGS`.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from voxflow.errors import ConfigError
from voxflow.redact import url_for_log
from voxflow.runtime.away import DEFAULT_AWAY_TTL, MAX_AWAY_TTL
from voxflow.runtime.hangup_work import DEFAULT_HANGUP_TIMEOUT, check_hangup_timeout
from voxflow.runtime.webhook_retry import RetryPolicy

__all__ = [
    "CALL_SETTINGS",
    "DEFAULT_RTP_PORTS",
    "DRAIN_RULES",
    "ENV_VARS",
    "GC_MODES",
    "MODES",
    "PACERS",
    "Settings",
    "listen_host",
    "load_settings",
]

ENV_VARS: dict[str, str] = {
    "ari_url": "VOXFLOW_ARI_URL",
    "ari_user": "VOXFLOW_ARI_USER",
    "ari_password": "VOXFLOW_ARI_PASSWORD",
    "app": "VOXFLOW_APP",
    "ari_mode": "VOXFLOW_ARI_MODE",
    "listen": "VOXFLOW_LISTEN",
    "listen_user": "VOXFLOW_LISTEN_USER",
    "listen_password": "VOXFLOW_LISTEN_PASSWORD",
    "webhook_url": "VOXFLOW_WEBHOOK_URL",
    "webhook_secret": "VOXFLOW_WEBHOOK_SECRET",
    "rtp_host": "VOXFLOW_RTP_HOST",
    "rtp_advertise": "VOXFLOW_RTP_ADVERTISE",
    "rtp_ports": "VOXFLOW_RTP_PORTS",
    "redis_url": "VOXFLOW_REDIS_URL",
}

_TOML_KEYS: dict[tuple[str, str], str] = {
    ("ari", "url"): "ari_url",
    ("ari", "user"): "ari_user",
    ("ari", "password"): "ari_password",
    ("ari", "app"): "app",
    ("ari", "mode"): "ari_mode",
    ("ari", "listen"): "listen",
    ("ari", "listen_user"): "listen_user",
    ("ari", "listen_password"): "listen_password",
    ("run", "default_flow"): "default_flow",
    ("run", "grace_period"): "grace_period",
    ("run", "hangup_timeout"): "hangup_timeout",
    ("run", "away_ttl"): "away_ttl",
    ("run", "trace_dir"): "trace_dir",
    ("run", "max_steps"): "max_steps",
    ("webhooks", "url"): "webhook_url",
    ("webhooks", "secret"): "webhook_secret",
    ("webhooks", "retry_attempts"): "webhook_retry_attempts",
    ("webhooks", "retry_initial_delay"): "webhook_retry_initial",
    ("webhooks", "retry_factor"): "webhook_retry_factor",
    ("webhooks", "retry_max_delay"): "webhook_retry_max_delay",
    ("webhooks", "retry_within"): "webhook_retry_within",
    ("sandbox", "time"): "call_time",
    ("sandbox", "from"): "caller_number",
    ("sandbox", "to"): "dialed",
    ("media", "rtp_host"): "rtp_host",
    ("media", "rtp_advertise"): "rtp_advertise",
    ("media", "rtp_ports"): "rtp_ports",
    ("media", "warm_prompts"): "warm_prompts",
    ("media", "stt_decoders"): "stt_decoders",
    ("media", "pacer"): "pacer",
    ("media", "gc"): "media_gc",
    ("cluster", "redis_url"): "redis_url",
    ("cluster", "metrics_port"): "metrics_port",
    ("cluster", "metrics_host"): "metrics_host",
    ("cluster", "failover_ttl"): "failover_ttl",
    ("cluster", "reconnect_window"): "reconnect_window",
    ("cluster", "drain"): "drain",
}
_CLI_NAMES = {
    "call_time": "--time",
    "caller_number": "--from",
    "dialed": "--to",
    "grace_period": "--grace",
    "hangup_timeout": "--hangup-timeout",
    "redis_url": "--redis",
    "warm_prompts": "--no-warm-prompts",
    "stt_decoders": "--stt-decoders",
}
DEFAULT_RTP_PORTS = "40000-40999"
"""voxflow's RTP ports: outside Asterisk's rtp.conf default (rtpstart 10000 - rtpend 20000), so
both can run on one host."""
CALL_SETTINGS = ("hangup_timeout", "max_steps")
"""The settings that change what a call does as the interpreter runs it: the ``on hangup``
body's ceiling and the step budget between two waits. ``voxflow test`` and ``voxflow replay``
run scenarios with them (replay: the trace's values when its ``call.started`` has them). The
others do not reach the interpreter: telephony (ARI, RTP, media, cluster), the worker
(``grace_period``, ``trace_dir``, ``away_ttl``: a call back after ``unknown``, which a simulated
call never ends), routing (``default_flow``: a scenario names its flow), the
sandbox's call (``[sandbox]``: a scenario gives its own time and numbers) and webhooks (sent
after the fact: a call never waits for one)."""
PACERS = ("thread", "loop")
"""``[media] pacer``'s choices, the first the default: :data:`voxflow.media.pacing.PACERS`, written
out here so that reading the settings (``voxflow test``) loads no media path (numpy among it);
``tests/runtime/test_runtime_config.py`` keeps the two equal."""
GC_MODES = ("slack", "python", "freeze", "sized", "sized-freeze")
"""``[media] gc``'s choices, the first the default: :data:`voxflow.media.pacing.GC_MODES` (as
:data:`PACERS`)."""
_PORTS_RE = re.compile(r"^(\d{1,5})-(\d{1,5})$")
_APP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated settings. ``ari_url=None`` (and the classic mode) means: run on the embedded
    sandbox. ``ari_mode``: ``classic`` (voxflow connects to Asterisk), ``persistent`` or
    ``per_call`` (Asterisk 22's outbound ARI websockets connect to ``listen``)."""

    ari_url: str | None = None
    ari_user: str = "voxflow"
    ari_password: str = "voxflow"
    app: str = "voxflow"
    ari_mode: str = "classic"
    listen: str = "127.0.0.1:8765"
    listen_user: str | None = None
    listen_password: str | None = None
    default_flow: str | None = None
    grace_period: float = 30.0
    hangup_timeout: float = DEFAULT_HANGUP_TIMEOUT
    """Seconds a call's ``on hangup`` body may run after the call ended; a body still running
    then is cut, and its call's end says so (:mod:`voxflow.runtime.hangup_work`)."""
    away_ttl: float = DEFAULT_AWAY_TTL
    """Seconds a call that ended ``unknown`` (per-call websockets: out in the dialplan's queue
    or transfer, no word from Asterisk) is kept for its return: a caller back within it goes on
    with the flow (in this process's memory, or Redis in cluster mode); 0: none is kept."""
    trace_dir: str | None = None
    max_steps: int = 1000
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_retry_attempts: int = 5
    webhook_retry_initial: float = 1.0
    webhook_retry_factor: float = 2.0
    webhook_retry_max_delay: float = 15.0
    webhook_retry_within: float = 60.0
    call_time: str | None = None
    caller_number: str | None = None
    dialed: str | None = None
    rtp_host: str = "127.0.0.1"
    rtp_advertise: str | None = None
    rtp_ports: str = DEFAULT_RTP_PORTS
    redis_url: str | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    failover_ttl: float = 3.0
    reconnect_window: float = 10.0
    """Outbound-websocket modes: the seconds Asterisk may take to re-connect a live call's
    websocket after its worker died (``reconnect_attempts`` x (``reconnect_interval`` +
    ``connection_timeout``) in websocket_client.conf); a dead worker's call not adopted by
    then ended while no worker served it, and its end runs."""
    warm_prompts: bool = True
    """Synthesize the flows' static prompts into the prompt cache at start-up and on reload."""
    stt_decoders: int = 3
    """The offline recogniser's decoder pool (~92-96 MB each), all built before serving."""
    pacer: str = PACERS[0]
    """The RTP pacer: ``thread`` (its own thread) or ``loop`` (a task on the event loop)."""
    media_gc: str = GC_MODES[0]
    """Garbage collection: ``slack`` (after a tick's sends, in the time before the next) or
    ``python`` (Python's own timing)."""
    drain: str = "finish"
    """On SIGTERM: ``finish`` (calls have ``grace_period`` s, then are hung up) or ``handover``
    (cluster, classic mode: calls are checkpointed and left in Stasis for a standby)."""

    def nodes(self) -> list[str]:
        """The ARI URLs of ``ari_url``: one, or (comma-separated) the nodes a standby worker
        watches, serving the first whose worker dies (docs/deploy.md)."""
        return [u for u in (self.ari_url or "").split(",") if u]

    def media_options(self) -> dict[str, str]:
        """The ``VoxtraApp(media_options=...)`` for these settings."""
        out = {"rtp_host": self.rtp_host, "rtp_ports": self.rtp_ports}
        if self.rtp_advertise:
            out["rtp_advertise"] = self.rtp_advertise
        return out

    def webhook_retry(self) -> RetryPolicy:
        """The webhook deliveries' :class:`~voxflow.runtime.webhook_retry.RetryPolicy`."""
        return RetryPolicy(
            attempts=self.webhook_retry_attempts,
            initial=self.webhook_retry_initial,
            factor=self.webhook_retry_factor,
            max_delay=self.webhook_retry_max_delay,
            max_elapsed=self.webhook_retry_within,
        )

    def __repr__(self) -> str:  # never show secrets in logs or error messages
        shown = {
            f.name: ("***" if _secret(f.name, getattr(self, f.name)) else getattr(self, f.name))
            for f in fields(self)
        }
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


def _secret(name: str, value: Any) -> bool:
    """Settings never shown: passwords, secrets, a Redis URL with credentials."""
    return "password" in name or "secret" in name or (name == "redis_url" and "@" in str(value))


def _read_toml(path: Path) -> dict[str, tuple[Any, str]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        msg = f"cannot read {path}: not UTF-8 text (byte at offset {exc.start})"
        raise ConfigError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    out: dict[str, tuple[Any, str]] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: top-level key {section!r} must be a [section]")
        for key, value in table.items():
            name = _TOML_KEYS.get((section, key))
            if name is None:
                known = ", ".join(f"{s}.{k}" for s, k in _TOML_KEYS)
                raise ConfigError(f"{path}: unknown setting {section}.{key} (known: {known})")
            out[name] = (value, f"{path} [{section}] {key}")
    return out


def _coerce(name: str, value: Any, origin: str) -> Any:
    default = getattr(Settings(), name)
    if name in ("failover_ttl", "reconnect_window"):
        low, high = (0.3, 60) if name == "failover_ttl" else (0.5, 300)
        try:
            ttl = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{origin}: expected a number of seconds, got {value!r}") from None
        if not low <= ttl <= high:
            raise ConfigError(
                f"{origin}: must be between {low:g} and {high:g} seconds, got {value!r}"
            )
        return ttl
    if name in _RETRY_LIMITS:
        return _retry_value(name, value, origin)
    if name == "hangup_timeout":
        try:
            return check_hangup_timeout(value, origin)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if name == "away_ttl":
        return _away_ttl(value, origin)
    if name in ("grace_period",):
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{origin}: expected a number of seconds, got {value!r}") from None
        if not math.isfinite(v):
            raise ConfigError(f"{origin}: expected a number of seconds, got {value!r}")
        if v < 0:
            raise ConfigError(f"{origin}: must not be negative, got {value!r}")
        return v
    if name == "ari_url" and isinstance(value, list):  # [ari] url = [node, node]: a node list
        if not value or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{origin}: expected a URL or a list of URLs, got {value!r}")
        value = ",".join(value)
    if name == "ari_url" and isinstance(value, str):
        value = ",".join(u.strip() for u in value.split(","))
    if name == "warm_prompts":
        if not isinstance(value, bool):
            raise ConfigError(f"{origin}: expected true or false, got {value!r}")
        return value
    if name == "metrics_port":
        if isinstance(value, bool) or not str(value).isdigit() or not 0 <= int(value) < 65536:
            raise ConfigError(f"{origin}: expected a TCP port (0-65535), got {value!r}")
        return int(value)
    if name in ("max_steps", "stt_decoders"):
        if isinstance(value, bool):
            raise ConfigError(f"{origin}: expected an integer, got {value!r}")
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{origin}: expected an integer, got {value!r}") from None
        if n < 1:
            raise ConfigError(f"{origin}: must be at least 1, got {value!r}")
        return n
    if not isinstance(value, str):
        raise ConfigError(f"{origin}: expected a string, got {value!r}")
    if value == "" and default is None:
        return None
    return value


def _away_ttl(value: Any, origin: str) -> float:
    """``[run] away_ttl``: seconds, 0 to :data:`~voxflow.runtime.away.MAX_AWAY_TTL`."""
    try:
        ttl = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: expected a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not 0 <= ttl <= MAX_AWAY_TTL:
        raise ConfigError(
            f"{origin}: must be between 0 (keep none) and {MAX_AWAY_TTL:g} seconds, got {value!r}"
        )
    return ttl


_RETRY_LIMITS: dict[str, tuple[float, float, str]] = {
    "webhook_retry_attempts": (1, 100, "an integer number of tries"),
    "webhook_retry_initial": (0, 3600, "a number of seconds"),
    "webhook_retry_factor": (1, 10, "a number (each wait is the previous one times it)"),
    "webhook_retry_max_delay": (0, 3600, "a number of seconds"),
    "webhook_retry_within": (0, 86400, "a number of seconds"),
}
"""The ``[webhooks] retry_*`` settings: (least, most, what is expected)."""


def _retry_value(name: str, value: Any, origin: str) -> float | int:
    """A ``[webhooks] retry_*`` value, within its limits (:data:`_RETRY_LIMITS`)."""
    least, most, what = _RETRY_LIMITS[name]
    whole = name == "webhook_retry_attempts"
    if isinstance(value, bool) or (whole and not isinstance(value, int)):
        raise ConfigError(f"{origin}: expected {what}, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: expected {what}, got {value!r}") from None
    if not math.isfinite(v) or not least <= v <= most:
        raise ConfigError(f"{origin}: must be between {least:g} and {most:g}, got {value!r}")
    return int(v) if whole else v


def _check_retry(settings: Settings, values: Mapping[str, tuple[Any, str]]) -> None:
    """The retry settings together: the longest wait is not shorter than the first, and a
    retry can happen within ``retry_within`` when more than one try is allowed. The error
    names the setting given (of the two it is about)."""

    def origin(*names: str) -> str:
        given = [values[n][1] for n in names if n in values]
        return given[0] if given else "[webhooks]"

    initial, most = settings.webhook_retry_initial, settings.webhook_retry_max_delay
    if most < initial:
        raise ConfigError(
            f"{origin('webhook_retry_max_delay', 'webhook_retry_initial')}: retry_max_delay "
            f"({most:g} s) is shorter than retry_initial_delay ({initial:g} s)"
        )
    first_wait = initial * 0.5  # the shortest the jitter makes it
    within = settings.webhook_retry_within
    if settings.webhook_retry_attempts > 1 and within < first_wait:
        raise ConfigError(
            f"{origin('webhook_retry_within', 'webhook_retry_initial')}: retry_within "
            f"({within:g} s) leaves no time for a retry (the first wait is at least "
            f"{first_wait:g} s); to send each webhook once, set retry_attempts = 1"
        )


def _check_url(value: str, origin: str, schemes: tuple[str, ...], *, userinfo: bool = True) -> None:
    """ConfigError unless ``value`` is a ``scheme://host[:port]/...`` URL of ``schemes``; the
    message never shows a user:password or a query's token/key/signature in it.
    ``userinfo=False``: a user:password in it is refused too."""
    shown = url_for_log(_USERINFO.sub("<redacted>@", value))
    bad = ConfigError(
        f"{origin}: invalid URL {shown!r} (expected {' or '.join(schemes)}://host[:port]/...)"
    )
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # an unclosed '[' or a bad IPv6 address
        raise bad from None
    if parts.scheme not in schemes or not host:
        raise bad
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigError(f"{origin}: invalid port in URL {shown!r}") from None
    if not userinfo and "@" in parts.netloc:
        raise ConfigError(
            f"{origin}: the URL {shown!r} holds a user name or password, which is not how ARI "
            "takes them; give them with --ari-user and VOXFLOW_ARI_PASSWORD (or [ari] user "
            "and password in voxflow.toml)"
        )


_USERINFO = re.compile(r"(?<=://)[^/?#\s]*@")
"""The ``user:password@`` of a URL (what an error message shows as ``<redacted>@``)."""


def load_settings(
    cli: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config_path: str | Path | None = None,
    cwd: str | Path | None = None,
    require_credentials: bool = False,
) -> Settings:
    """Merge CLI options (``None`` values are ignored), environment and ``voxflow.toml``.

    ``config_path`` must exist when given; otherwise ``<cwd>/voxflow.toml`` is read if present.
    ``require_credentials``: with an ARI URL (a real Asterisk), the user and password must be
    given explicitly (option, environment or file); the defaults are only the sandbox's.
    """
    env = os.environ if env is None else env
    values = _file_values(config_path, cwd)
    for name, var in ENV_VARS.items():
        if env.get(var):
            values[name] = (env[var], f"environment variable {var}")
    values.update(_cli_values(cli or {}))
    settings = Settings()
    for name, (value, origin) in values.items():
        settings = replace(settings, **{name: _coerce(name, value, origin)})
    _check_settings(settings, values, require_credentials)
    return settings


def _file_values(
    config_path: str | Path | None, cwd: str | Path | None
) -> dict[str, tuple[Any, str]]:
    """(value, origin) by setting from ``config_path`` (which must exist), else from
    ``<cwd>/voxflow.toml`` when there is one."""
    if config_path is not None:
        path = Path(config_path)
        if not path.exists():
            raise ConfigError(f"config file not found: {path}")
        if not path.is_file():  # a directory, FIFO or device: never read
            raise ConfigError(f"config file {path} is not a regular file")
        return _read_toml(path)
    candidate = Path(cwd or Path.cwd()) / "voxflow.toml"
    return _read_toml(candidate) if candidate.is_file() else {}


def _cli_values(cli: Mapping[str, Any]) -> dict[str, tuple[Any, str]]:
    """(value, option name) by setting for the CLI options given (not None)."""
    valid = {f.name for f in fields(Settings)}
    out: dict[str, tuple[Any, str]] = {}
    for name, value in cli.items():
        if name not in valid:
            raise ConfigError(f"unknown setting {name!r}")
        if value is not None:
            out[name] = (value, _CLI_NAMES.get(name, "--" + name.replace("_", "-")))
    return out


def _check_settings(
    settings: Settings, values: Mapping[str, tuple[Any, str]], require_credentials: bool
) -> None:
    """ConfigError, naming where the value came from, for settings that are bad together or
    alone (URLs, app name, ports, credentials, mode, drain, retries, pacer, gc)."""
    if settings.ari_url is not None:
        for url in settings.nodes():
            _check_url(url, values["ari_url"][1], ("http", "https"), userinfo=False)
        _check_nodes(settings, values["ari_url"][1])
    if settings.webhook_url is not None:
        _check_url(settings.webhook_url, values["webhook_url"][1], ("http", "https"))
    if settings.redis_url is not None:
        _check_url(settings.redis_url, values["redis_url"][1], ("redis", "rediss"))
    if not _APP_RE.match(settings.app):
        raise ConfigError(
            f"{values.get('app', (None, 'app'))[1]}: invalid ARI application name "
            f"{settings.app!r} (letters, digits, '_', '-', '.')"
        )
    if not settings.ari_user:
        raise ConfigError("ARI user must not be empty")
    _check_ports(settings.rtp_ports, values.get("rtp_ports", (None, "rtp_ports"))[1])
    if require_credentials:
        _check_credentials(settings, values)
    _check_mode(settings, values)
    _check_drain(settings, values)
    _check_retry(settings, values)
    _check_choice(settings.pacer, PACERS, values.get("pacer", (None, "pacer"))[1])
    _check_choice(settings.media_gc, GC_MODES, values.get("media_gc", (None, "gc"))[1])


def _check_choice(value: str, choices: tuple[str, ...], origin: str) -> None:
    if value not in choices:
        raise ConfigError(f"{origin}: must be {' or '.join(choices)}, got {value!r}")


DRAIN_RULES = ("finish", "handover")


def _check_nodes(settings: Settings, origin: str) -> None:
    """Several ARI URLs (a node list): one standby for several nodes, cluster classic mode."""
    nodes = settings.nodes()
    if not nodes:
        raise ConfigError(f"{origin}: no ARI URL in {settings.ari_url!r}")
    if len(nodes) < 2:
        return
    if settings.redis_url is None or settings.ari_mode != "classic":
        raise ConfigError(
            f"{origin}: several ARI URLs (a standby for several nodes) need the cluster mode "
            "(--redis) and the classic ARI mode"
        )
    if len(set(nodes)) != len(nodes):
        raise ConfigError(f"{origin}: a node is listed twice in {settings.ari_url!r}")


def _check_drain(settings: Settings, values: Mapping[str, tuple[Any, str]]) -> None:
    origin = values.get("drain", (None, "drain"))[1]
    if settings.drain not in DRAIN_RULES:
        raise ConfigError(f"{origin}: must be finish or handover, got {settings.drain!r}")
    if settings.drain == "handover" and settings.redis_url is None:
        raise ConfigError(
            f"{origin}: handover needs the cluster mode (--redis): the next worker resumes "
            "the calls from their checkpoints"
        )


def _check_credentials(settings: Settings, values: Mapping[str, tuple[Any, str]]) -> None:
    """A real Asterisk (an ARI URL, or an outbound websocket mode) needs credentials given
    explicitly; the built-in voxflow/voxflow is only the sandbox's."""
    if settings.ari_url is None and settings.ari_mode != "classic":
        if "listen_password" not in values and "ari_password" not in values:
            raise ConfigError(
                f"ARI mode {settings.ari_mode} needs the password Asterisk presents: give "
                "--ari-password (or VOXFLOW_ARI_PASSWORD / VOXFLOW_LISTEN_PASSWORD, or [ari] "
                "password / listen_password in voxflow.toml); voxflow/voxflow is only the "
                "sandbox's"
            )
        return
    if settings.ari_url is not None:
        missing = [n for n in ("ari_user", "ari_password") if n not in values]
        if missing:
            flags = " and ".join("--" + n.replace("_", "-") for n in missing)
            envs = " and ".join(ENV_VARS[n] for n in missing)
            keys = " and ".join("[ari] " + n.removeprefix("ari_") for n in missing)
            raise ConfigError(
                f"ARI at {settings.ari_url} needs credentials: give {flags} "
                f"(or {envs}, or {keys} in voxflow.toml); "
                "the built-in voxflow/voxflow is only the sandbox's"
            )


MODES = ("classic", "persistent", "per_call")


def _check_mode(settings: Settings, values: Mapping[str, tuple[Any, str]]) -> None:
    if settings.ari_mode not in MODES:
        origin = values.get("ari_mode", (None, "mode"))[1]
        raise ConfigError(
            f"{origin}: ARI mode must be one of {', '.join(MODES)}, got {settings.ari_mode!r}"
        )
    listen_host(settings.listen, values.get("listen", (None, "listen"))[1])


def listen_host(value: str, origin: str = "listen") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{origin}: expected HOST:PORT, got {value!r}")
    return host, int(port)


def _check_ports(value: str, origin: str) -> None:
    m = _PORTS_RE.match(value.strip())
    lo, hi = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    if not m or not 1024 <= lo <= hi <= 65535:
        raise ConfigError(
            f"{origin}: RTP ports must look like '{DEFAULT_RTP_PORTS}' (1024-65535, low-high), "
            f"got {value!r}"
        )
