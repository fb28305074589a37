"""The webhook retry policy from ``voxflow.toml`` (``[webhooks] retry_*``): what a server's
sender does with it, and a clear one-line error for every bad value (issue 20)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from click.testing import CliRunner

from voxflow.cli.main import cli
from voxflow.errors import ConfigError
from voxflow.runtime.config import load_settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.runtime.webhook_retry import RetryPolicy
from voxflow.telephony.app import VoxtraApp

FLOWS = Path(__file__).resolve().parents[2] / "flows"


def _toml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "voxflow.toml"
    p.write_text(f"[webhooks]\n{text}\n")
    return p


def test_the_defaults_are_five_tries_within_a_minute(tmp_path: Path) -> None:
    assert load_settings({}, env={}, cwd=tmp_path).webhook_retry() == RetryPolicy()


async def test_a_server_retries_as_its_voxflow_toml_says(tmp_path: Path) -> None:
    """Three tries (waits of 10-20 ms) to a receiver that always answers 503."""
    tries: list[str] = []

    async def down(request: web.Request) -> web.Response:
        tries.append(request.headers.get("Idempotency-Key", ""))
        return web.Response(status=503)

    app = web.Application()
    app.router.add_post("/hooks", down)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
    _toml(
        tmp_path,
        f'url = "{url}"\nsecret = "s"\nretry_attempts = 3\nretry_initial_delay = 0.02\n'
        "retry_factor = 1.5\nretry_max_delay = 0.03\nretry_within = 10",
    )
    settings = load_settings({}, env={}, cwd=tmp_path)
    assert settings.webhook_retry() == RetryPolicy(3, 0.02, 1.5, 0.03, 10.0)
    server = FlowServer(VoxtraApp("http://127.0.0.1:9", "u", "p", "v"), FlowRegistry(), settings)
    try:
        assert server.webhooks.retry == settings.webhook_retry()
        assert not await server.webhooks.deliver("call.ended", "c1", b"{}", "c1:call.ended")
    finally:
        await server.webhooks.aclose()
        await server.http.aclose()
        await runner.cleanup()
    assert tries == ["c1:call.ended"] * 3
    assert (server.webhooks.retried, server.webhooks.failed) == (2, 1)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("retry_attempts = 0", "retry_attempts: must be between 1 and 100, got 0"),
        ("retry_attempts = 2.5", "retry_attempts: expected an integer number of tries, got 2.5"),
        ('retry_attempts = "3"', "retry_attempts: expected an integer number of tries, got '3'"),
        ("retry_attempts = true", "retry_attempts: expected an integer number of tries, got True"),
        ("retry_initial_delay = -1", "retry_initial_delay: must be between 0 and 3600, got -1"),
        ("retry_factor = 0.5", "retry_factor: must be between 1 and 10, got 0.5"),
        ("retry_max_delay = inf", "retry_max_delay: must be between 0 and 3600, got inf"),
        ("retry_within = nan", "retry_within: must be between 0 and 86400, got nan"),
        ('retry_within = "1m"', "retry_within: expected a number of seconds, got '1m'"),
        (
            "retry_initial_delay = 20",
            "retry_initial_delay: retry_max_delay (15 s) is shorter than retry_initial_delay"
            " (20 s)",
        ),
        (
            "retry_within = 0.2",
            "retry_within: retry_within (0.2 s) leaves no time for a retry (the first wait is at"
            " least 0.5 s); to send each webhook once, set retry_attempts = 1",
        ),
    ],
)
def test_a_bad_retry_setting_is_a_clear_error(tmp_path: Path, setting: str, message: str) -> None:
    path = _toml(tmp_path, setting)
    with pytest.raises(ConfigError) as err:
        load_settings({}, env={}, cwd=tmp_path)
    assert str(err.value) == f"{path} [webhooks] {message}"


def test_one_try_and_no_time_is_allowed(tmp_path: Path) -> None:
    _toml(tmp_path, "retry_attempts = 1\nretry_within = 0")
    assert load_settings({}, env={}, cwd=tmp_path).webhook_retry().attempts == 1


def test_voxflow_run_reports_a_bad_retry_setting_in_one_line(tmp_path: Path) -> None:
    config = _toml(tmp_path, "retry_factor = 0")
    result = CliRunner().invoke(
        cli, ["run", str(FLOWS / "main_ivr.flow"), "--no-audio", "--config", str(config)], env={}
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "[webhooks] retry_factor: must be between 1 and 10, got 0" in result.output
