"""Logs never carry credentials: the redacting filter, and a real `voxflow run -v`."""

from __future__ import annotations

import base64
import logging
import os
import sys
from pathlib import Path

import forked

from voxflow.redact import RedactingFilter, redact_text, secrets_from_env

ROOT = Path(__file__).resolve().parents[2]


def test_patterns_redact_headers_keys_and_url_passwords() -> None:
    text = (
        "> Authorization: Basic dXNlcjpwYXNz\n"
        "headers={'Authorization': 'Bearer abc.def', 'X-Api-Key': 'k123'} "
        "url=https://u:hunter2@h/x?api_key=zzz&token=ttt password=pw1 sk-abcdefghijklmnop"
    )
    out = redact_text(text)
    for secret in ("dXNlcjpwYXNz", "abc.def", "k123", "hunter2", "zzz", "ttt", "pw1", "abcdefghij"):
        assert secret not in out, secret
    assert "Authorization: Basic <redacted>" in out


def test_filter_redacts_exact_values_their_basic_form_and_exception_text() -> None:
    flt = RedactingFilter(["longsecretvalue", "ari:s3cret-pass"])
    b64 = base64.b64encode(b"ari:s3cret-pass").decode()
    record = logging.LogRecord(
        "x", logging.DEBUG, __file__, 1, "sent %s and %s", ("longsecretvalue", b64), None
    )
    try:
        raise RuntimeError("failed with longsecretvalue")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    assert flt.filter(record)
    assert record.getMessage() == "sent <redacted> and <redacted>"
    assert record.exc_text is not None and "longsecretvalue" not in record.exc_text
    assert secrets_from_env({"OPENAI_API_KEY": "sk-1234567890", "HOME": "/root/home"}) == [
        "sk-1234567890"
    ]


def test_a_real_verbose_run_logs_no_credentials(tmp_path: Path) -> None:
    script = tmp_path / "caller.txt"
    script.write_text("wait 1s\nhangup\n")
    env = {**os.environ, "OPENAI_API_KEY": "sk-never-in-a-log-0123456789"}
    exe = Path(sys.executable).parent / "voxflow"
    proc = forked.run(
        "run",
        str(ROOT / "flows" / "main_ivr.flow"),
        "-v",
        "--no-audio",
        "--caller",
        str(script),
        timeout=120,
        env=env,
        cwd=tmp_path,
        prog=str(exe),
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert "DEBUG" in log and "Authorization: Basic <redacted>" in log  # the header was logged
    assert base64.b64encode(b"voxflow:voxflow").decode() not in log
    assert "sk-never-in-a-log" not in log


def test_headers_logged_as_name_value_pairs_are_redacted() -> None:
    # websockets' Headers and a dict's items() print (name, value) tuples, not 'name: value'
    text = (
        "Headers([('Host', 'h'), ('Authorization', 'Basic YXN0ZXJpc2s6c2VjcmV0'), "
        "('X-Api-Key', 'k1234567'), (\"api_key\", \"zzz12345\")])"
    )
    out = redact_text(text)
    for secret in ("YXN0ZXJpc2s6c2VjcmV0", "k1234567", "zzz12345"):
        assert secret not in out, out
    assert "('Host', 'h')" in out
    assert redact_text("the token, as said") == "the token, as said"  # prose is left alone


def test_the_outbound_websocket_listen_password_is_redacted_from_logs() -> None:
    from voxflow.cli.run_options import _more_secrets
    from voxflow.runtime.config import Settings

    settings = Settings(
        ari_mode="persistent", listen_user="asterisk", listen_password="listen-pw-0042",
        webhook_secret="whsec-00000042", redis_url="redis://:redis-pw-0042@10.0.0.9:6379/0",
    )  # fmt: skip
    flt = RedactingFilter(_more_secrets(settings))
    basic = base64.b64encode(b"asterisk:listen-pw-0042").decode()
    message = f"got listen-pw-0042 ({basic}), whsec-00000042 and redis-pw-0042"
    record = logging.LogRecord("x", logging.DEBUG, __file__, 1, message, None, None)
    assert flt.filter(record)
    for secret in ("listen-pw-0042", basic, "whsec-00000042", "redis-pw-0042"):
        assert secret not in record.getMessage(), record.getMessage()
