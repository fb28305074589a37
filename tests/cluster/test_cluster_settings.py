"""Cluster settings: --redis / VOXFLOW_REDIS_URL / [cluster] redis_url, --metrics-port."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from voxflow.cli.main import cli
from voxflow.errors import ConfigError
from voxflow.runtime.config import Settings, load_settings


def test_redis_url_from_file_env_and_option(tmp_path: Path) -> None:
    toml = tmp_path / "voxflow.toml"
    toml.write_text(
        '[cluster]\nredis_url = "redis://10.0.0.9:6379/0"\nmetrics_port = 9464\n'
        'metrics_host = "0.0.0.0"\nfailover_ttl = 1\n'
    )
    s = load_settings(env={}, cwd=tmp_path)
    assert (s.redis_url, s.metrics_port, s.metrics_host) == (
        "redis://10.0.0.9:6379/0",
        9464,
        "0.0.0.0",
    )
    s = load_settings(env={"VOXFLOW_REDIS_URL": "redis://r:6379"}, cwd=tmp_path)
    assert s.redis_url == "redis://r:6379"
    s = load_settings({"redis_url": "rediss://x:1/2"}, env={"VOXFLOW_REDIS_URL": "redis://r"})
    assert s.redis_url == "rediss://x:1/2"
    assert load_settings(env={}, cwd=tmp_path / "none").redis_url is None  # one process


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"redis_url": "http://r:6379"}, "--redis: invalid URL 'http://r:6379'"),
        ({"redis_url": "redis://r:99999"}, "invalid port"),
        ({"metrics_port": 70000}, "expected a TCP port"),
        ({"failover_ttl": 0.1}, "between 0.3 and 60 seconds"),
        ({"failover_ttl": "soon"}, "expected a number of seconds"),
        ({"drain": "later"}, "--drain: must be finish or handover, got 'later'"),
        ({"drain": "handover"}, "--drain: handover needs the cluster mode"),
        (
            {"drain": "handover", "ari_mode": "per_call"},
            "handover needs the cluster mode .--redis.: the next worker resumes",
        ),
    ],
)
def test_bad_cluster_settings_are_named(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_settings(values, env={})


def test_the_drain_rule_from_file_and_option(tmp_path: Path) -> None:
    (tmp_path / "voxflow.toml").write_text(
        '[cluster]\nredis_url = "redis://r:6379/0"\ndrain = "handover"\n'
    )
    assert load_settings(env={}, cwd=tmp_path).drain == "handover"
    assert load_settings({"drain": "finish"}, env={}, cwd=tmp_path).drain == "finish"
    assert load_settings(env={}).drain == "finish"  # the default
    for mode in ("persistent", "per_call"):  # the outbound-websocket modes hand over too
        values = {"ari_mode": mode, "listen": "127.0.0.1:8765"}
        assert load_settings(values, env={}, cwd=tmp_path).drain == "handover"


def test_a_redis_password_is_never_shown() -> None:
    assert "hunter2" not in repr(Settings(redis_url="redis://:hunter2@r:6379/0"))


def test_run_with_a_bad_redis_url_is_a_config_error(tmp_path: Path) -> None:
    flow = tmp_path / "f.flow"
    flow.write_text('flow f "f":\n    answers "100"\n\nstate start:\n    hangup "done"\n')
    args = ["run", str(flow), "--ari-url", "http://127.0.0.1:1/ari", "--ari-user", "u",
            "--ari-password", "p", "--redis", "memcache://x"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "--redis: invalid URL 'memcache://x'" in result.output
    assert "Traceback" not in result.output


def test_a_node_list_for_one_standby(tmp_path: Path) -> None:
    (tmp_path / "voxflow.toml").write_text(
        '[ari]\nurl = ["http://10.0.0.11:8088/ari", "http://10.0.0.12:8088/ari"]\n'
        '[cluster]\nredis_url = "redis://r:6379/0"\n'
    )
    s = load_settings(env={}, cwd=tmp_path)
    assert s.nodes() == ["http://10.0.0.11:8088/ari", "http://10.0.0.12:8088/ari"]
    s = load_settings({"ari_url": "http://a:8088/ari, http://b:8088/ari"}, env={}, cwd=tmp_path)
    assert s.nodes() == ["http://a:8088/ari", "http://b:8088/ari"]
    assert load_settings({"ari_url": "http://a:8088/ari"}, env={}).nodes() == ["http://a:8088/ari"]
    assert load_settings(env={}).nodes() == []  # the sandbox


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ari_url": "http://a/ari,http://b/ari"}, "--ari-url: several ARI URLs .* need the"),
        (
            {
                "ari_url": "http://a/ari,http://b/ari",
                "redis_url": "redis://r",
                "ari_mode": "per_call",
            },
            "classic ARI mode",
        ),
        ({"ari_url": "http://a/ari,http://a/ari", "redis_url": "redis://r"}, "listed twice"),
        ({"ari_url": "http://a/ari,ftp://b", "redis_url": "redis://r"}, "invalid URL 'ftp://b'"),
        ({"ari_url": ",", "redis_url": "redis://r"}, "no ARI URL in ','"),
    ],
)
def test_bad_node_lists_are_named(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(values, env={})
