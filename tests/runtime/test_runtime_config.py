"""Settings precedence (CLI > env > voxflow.toml > defaults) and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxflow.errors import ConfigError
from voxflow.runtime.config import Settings, load_settings


def _toml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "voxflow.toml"
    p.write_text(text)
    return p


def test_defaults_without_anything(tmp_path: Path) -> None:
    s = load_settings({}, env={}, cwd=tmp_path)
    assert s == Settings()
    assert s.ari_url is None


def test_precedence_cli_over_env_over_file(tmp_path: Path) -> None:
    _toml(
        tmp_path,
        '[ari]\nurl = "http://file:1/ari"\nuser = "fileuser"\napp = "fileapp"\n'
        "[run]\ngrace_period = 7\n",
    )
    env = {"VOXFLOW_ARI_URL": "http://env:2/ari", "VOXFLOW_ARI_USER": "envuser"}
    s = load_settings({"ari_url": "http://cli:3/ari", "ari_user": None}, env=env, cwd=tmp_path)
    assert s.ari_url == "http://cli:3/ari"
    assert s.ari_user == "envuser"
    assert s.app == "fileapp"
    assert s.grace_period == 7.0


def test_explicit_config_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings({}, env={}, config_path=tmp_path / "nope.toml")


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    p = _toml(tmp_path, "[ari\nurl=")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings({}, env={}, config_path=p)


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    _toml(tmp_path, '[ari]\nhost = "x"\n')
    with pytest.raises(ConfigError, match=r"unknown setting ari\.host"):
        load_settings({}, env={}, cwd=tmp_path)


def test_bad_url_names_its_origin(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VOXFLOW_ARI_URL"):
        load_settings({}, env={"VOXFLOW_ARI_URL": "ftp://x"}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="--ari-url"):
        load_settings({"ari_url": "localhost:8088"}, env={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="port"):
        load_settings({"ari_url": "http://h:99999/ari"}, env={}, cwd=tmp_path)


def test_bad_types_are_rejected(tmp_path: Path) -> None:
    _toml(tmp_path, '[run]\ngrace_period = "soon"\n')
    with pytest.raises(ConfigError, match="grace_period"):
        load_settings({}, env={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="at least 1"):
        load_settings({"max_steps": 0}, env={}, cwd=tmp_path / "none")


def test_bad_app_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="application name"):
        load_settings({"app": "has space"}, env={}, cwd=tmp_path)


def test_repr_hides_secrets() -> None:
    s = Settings(ari_password="hunter2", webhook_secret="s3cret")
    assert "hunter2" not in repr(s) and "s3cret" not in repr(s)


def test_rtp_address_and_ports_from_file_env_and_cli(tmp_path: Path) -> None:
    _toml(tmp_path, '[media]\nrtp_host = "0.0.0.0"\nrtp_advertise = "10.0.0.5"\n')
    env = {"VOXFLOW_RTP_PORTS": "41000-41099"}
    s = load_settings({"rtp_host": None}, env=env, cwd=tmp_path)
    assert s.media_options() == {
        "rtp_host": "0.0.0.0", "rtp_advertise": "10.0.0.5", "rtp_ports": "41000-41099",
    }  # fmt: skip
    s = load_settings({"rtp_ports": "42000-42010"}, env=env, cwd=tmp_path)
    assert s.rtp_ports == "42000-42010"


def test_default_rtp_ports_stay_out_of_asterisks_range(tmp_path: Path) -> None:
    lo, hi = (int(p) for p in load_settings({}, env={}, cwd=tmp_path).rtp_ports.split("-"))
    assert hi < 10000 or lo > 20000  # rtp.conf's default rtpstart=10000, rtpend=20000
    assert "rtp_advertise" not in Settings().media_options()


@pytest.mark.parametrize("bad", ["40000", "a-b", "5000-4000", "80-90", "40000-70000"])
def test_bad_rtp_ports_name_their_origin(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="--rtp-ports: RTP ports must look like"):
        load_settings({"rtp_ports": bad}, env={}, cwd=tmp_path)


def test_a_config_path_that_is_not_a_regular_file_says_so(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pipe.toml")
    for path, why in (
        (tmp_path / "pipe.toml", "is not a regular file"),
        (tmp_path, "is not a regular file"),
        (tmp_path / "nosuch.toml", "config file not found"),
    ):
        with pytest.raises(ConfigError, match=why):
            load_settings(config_path=path, env={})


@pytest.mark.parametrize("url", ["http://[::1/ari", "http://[zz]:8088/ari", "redis://[::1"])
def test_a_malformed_url_is_a_config_error(tmp_path: Path, url: str) -> None:
    """``urlsplit`` raises ValueError on an unclosed or bad IPv6 host: it was a traceback."""
    key = "redis_url" if url.startswith("redis") else "ari_url"
    with pytest.raises(ConfigError, match="invalid URL"):
        load_settings({key: url}, env={}, cwd=tmp_path)


def test_a_bad_url_with_a_password_is_named_without_it(tmp_path: Path) -> None:
    for cli in (
        {"ari_url": "http://u:Hunter2pw@h:99999/ari"},
        {"redis_url": "http://:Hunter2pw@h:6379/0"},
        {"webhook_url": "ftp://u:Hunter2pw@h/x"},
        {"ari_url": "http://u:Hunter2pw@[::1/ari"},
    ):
        with pytest.raises(ConfigError) as err:
            load_settings(cli, env={}, cwd=tmp_path)
        assert "Hunter2pw" not in str(err.value) and "<redacted>" in str(err.value), err.value


def test_a_bad_url_with_a_token_in_its_query_is_named_without_it(tmp_path: Path) -> None:
    for cli in (
        {"webhook_url": "ftp://h/hooks?token=Tq1234567&x=1"},
        {"webhook_url": "http://h:xx/hooks?sig=Tq1234567"},
        {"ari_url": "ws://h/ari?api_key=u:Tq1234567"},
    ):
        with pytest.raises(ConfigError) as err:
            load_settings(cli, env={}, cwd=tmp_path)
        assert "Tq1234567" not in str(err.value) and "<redacted>" in str(err.value), err.value


def test_credentials_in_the_ari_url_are_refused_without_echoing_them(tmp_path: Path) -> None:
    """The ARI client drops a URL's user:password (they never authenticated), and ``voxflow
    run`` printed the URL as given ("serving ... on http://u:pw@host"): the URL is refused,
    pointing at the credential settings."""
    with pytest.raises(ConfigError) as err:
        load_settings({"ari_url": "http://asterisk:Hunter2pw@h:8088/ari"}, env={}, cwd=tmp_path)
    msg = str(err.value)
    assert msg.startswith("--ari-url: ") and "--ari-user" in msg, msg
    assert "Hunter2pw" not in msg and "asterisk:" not in msg


def test_media_choices_are_the_media_paths() -> None:
    """config.py writes the pacer and gc choices out (so reading settings loads no media path):
    they are media.pacing's, default first."""
    from voxflow.media import pacing
    from voxflow.runtime import config

    assert config.PACERS == pacing.PACERS
    assert config.GC_MODES == pacing.GC_MODES
