"""``--hangup-timeout`` / ``[run] hangup_timeout``: the ceiling of a call's ``on hangup`` body.
A call whose body was cut is not reported as done: ``voxflow run`` says so and exits 1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from voxflow.cli.main import cli
from voxflow.errors import ConfigError
from voxflow.runtime.config import load_settings
from voxflow.runtime.hangup_work import DEFAULT_HANGUP_TIMEOUT

FLOW = """flow bye:
    answers "300"

var _a: map

on hangup:
    http post "{base}/crm" timeout 30s into _a

state start:
    answer
    hangup "done"
"""


@contextmanager
def _slow_crm(seconds: float) -> Iterator[str]:
    """A CRM on 127.0.0.1 (its own thread) that answers after ``seconds`` or the block's end."""
    released = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            released.wait(seconds)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        released.set()
        server.shutdown()
        server.server_close()


def _run(tmp_path: Path, base: str, *args: str) -> tuple[int, str, str]:
    flow = tmp_path / "bye.flow"
    flow.write_text(FLOW.format(base=base))
    script = tmp_path / "caller.txt"
    script.write_text("wait 1s\nhangup\n")
    argv = ["run", str(flow), "--no-audio", "--no-warm-prompts", "--caller", str(script), *args]
    result = CliRunner().invoke(cli, argv, env={})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout, result.stderr


def test_a_cut_on_hangup_body_is_not_success(tmp_path: Path) -> None:
    with _slow_crm(10) as base:
        code, out, err = _run(tmp_path, base, "--hangup-timeout", "0.3")
    assert "outcome: completed (done)" in out
    assert code == 1, out + err
    assert "on hangup body was cut after 0.3 s (--hangup-timeout)" in err


def test_a_slow_crm_within_the_ceiling_is_success(tmp_path: Path) -> None:
    with _slow_crm(0.5) as base:
        code, out, err = _run(tmp_path, base, "--hangup-timeout", "20")
    assert code == 0 and "outcome: completed (done)" in out, out + err
    assert "cut" not in err


def test_the_setting_s_default_and_limits(tmp_path: Path) -> None:
    assert load_settings({}, cwd=tmp_path, env={}).hangup_timeout == DEFAULT_HANGUP_TIMEOUT
    (tmp_path / "voxflow.toml").write_text("[run]\nhangup_timeout = 120\n")
    assert load_settings({}, cwd=tmp_path, env={}).hangup_timeout == 120.0
    for bad in ("0", "-1", '"soon"', "1e9", "true"):
        (tmp_path / "voxflow.toml").write_text(f"[run]\nhangup_timeout = {bad}\n")
        with pytest.raises(ConfigError, match=r"\[run\] hangup_timeout"):
            load_settings({}, cwd=tmp_path, env={})
