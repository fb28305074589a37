"""`voxflow run` says what happened: one-line errors, exit codes, sandbox-only options, help."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from voxflow.cli.main import cli
from voxflow.errors import ConfigError
from voxflow.runtime.caller_script import parse_script
from voxflow.runtime.config import load_settings
from voxflow.runtime.registry import FlowRegistry, Router

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "flows"

BAD = """\
flow bad:
    answers "100"

var n: number = 0

state start:
    answer
    set n = number(call.caller + "x")
    say "Number {{ n }}."
    hangup
"""


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["run", *args], env=env or {})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def _script(tmp_path: Path, text: str) -> str:
    p = tmp_path / "caller.txt"
    p.write_text(text)
    return str(p)


def test_empty_and_subflow_only_files_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.flow").write_text("")
    code, out = _run(str(tmp_path / "empty.flow"), "--no-audio")
    assert code == 1 and "empty.flow: empty, or only subflows" in out
    code, out = _run(str(FLOWS / "shared" / "confirm.flow"), "--no-audio")
    assert code == 1 and "confirm.flow: empty, or only subflows" in out


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01binary", "file looks binary"),
        (b"flow caf\xe9:\n", "not UTF-8 text (byte 0xe9 at offset 8)"),
    ],
)
def test_binary_or_wrongly_encoded_file(tmp_path: Path, data: bytes, message: str) -> None:
    (tmp_path / "odd.flow").write_bytes(data)
    code, out = _run(str(tmp_path / "odd.flow"), "--no-audio")
    assert code == 1
    assert re.search(r"odd\.flow: " + re.escape(message), out), out


def test_fifo_or_device_named_flow_says_what_it_is(tmp_path: Path) -> None:
    """`run` and `test` on a FIFO or a device named *.flow say "not a regular file" (as `fmt`
    and `lint` do), not "no such file", and never block reading it."""
    os.mkfifo(tmp_path / "pipe.flow")
    (tmp_path / "zero.flow").symlink_to("/dev/zero")
    for name in ("pipe.flow", "zero.flow"):
        path = str(tmp_path / name)
        code, out = _run(path, "--no-audio")
        assert code == 2 and f"error: not a regular file: {path} (a device, pipe" in out, out
        assert "no such" not in out
        result = CliRunner().invoke(cli, ["test", path])
        assert result.exit_code == 2 and "no such" not in result.output, result.output
        assert f"Error: not a regular file: {path} (a device, pipe" in result.output


def test_unknown_default_flow_is_a_usage_error() -> None:
    code, out = _run(str(FLOWS / "main_ivr.flow"), "--default-flow", "nosuch")
    assert code == 2 and "default flow 'nosuch' is not loaded (loaded: main_ivr)" in out


def test_no_flow_takes_the_dialled_number() -> None:
    code, out = _run(str(FLOWS / "main_ivr.flow"), "--to", "12345", "--no-audio")
    assert code == 1 and "no flow takes calls to 12345 (main_ivr answers +18005550100, 100)" in out


def test_outbound_only_flow_never_takes_an_inbound_call() -> None:
    code, out = _run(str(FLOWS / "appointment_reminder.flow"), "--no-audio")
    assert code == 1 and "no flow takes inbound calls" in out
    registry = FlowRegistry()
    registry.load([FLOWS / "appointment_reminder.flow"])
    assert Router(registry).route("") is None
    assert Router(registry, "appointment_reminder").route("100") is None  # not even as default
    code, out = _run(str(FLOWS), "--default-flow", "appointment_reminder", "--no-audio")
    assert code == 1 and "'appointment_reminder' is outbound only" in out


def test_sandbox_only_options_with_an_ari_url(tmp_path: Path) -> None:
    creds = ["--ari-user", "u", "--ari-password", "p"]
    url = ["--ari-url", "http://127.0.0.1:9/ari"]
    flow = str(FLOWS / "main_ivr.flow")
    code, out = _run(flow, *url, *creds, "--caller", _script(tmp_path, "hangup\n"))
    assert code == 2 and "--caller: sandbox only, not with Asterisk" in out
    code, out = _run(flow, *url, *creds, "--time", "18:30", "--from", "+1555")
    assert code == 2 and "--from, --time: sandbox only" in out


def test_a_real_asterisk_needs_explicit_credentials(tmp_path: Path) -> None:
    flow = str(FLOWS / "main_ivr.flow")
    code, out = _run(flow, "--ari-url", "http://127.0.0.1:9/ari")
    assert code == 2
    assert "needs credentials: give --ari-user and --ari-password" in out
    env = {"VOXFLOW_ARI_USER": "u", "VOXFLOW_ARI_PASSWORD": "p"}
    code, out = _run(flow, "--ari-url", "http://127.0.0.1:9/ari", env=env)
    assert code == 3 and "cannot reach ARI" in out  # credentials given: it tried
    (tmp_path / "voxflow.toml").write_text('[ari]\nuser = "u"\npassword = "p"\n')
    s = load_settings({"ari_url": "http://h:1/ari"}, env={}, cwd=tmp_path, require_credentials=True)
    assert (s.ari_user, s.ari_password) == ("u", "p")
    assert load_settings({}, env={}, cwd=tmp_path / "x", require_credentials=True).ari_url is None


def test_help_shows_defaults_examples_and_exit_codes() -> None:
    out = " ".join(CliRunner().invoke(cli, ["run", "--help"]).output.split())
    for text in ("[default: 30]", "default: voxflow", "Examples:", "Exit codes:", "--trace DIR",
                 "--time WHEN", "--from NUMBER", "sandbox: voxflow"):  # fmt: skip
        assert text in out, text
    top = " ".join(CliRunner().invoke(cli, ["--help"]).output.split())
    assert "..." not in top.split("Commands:")[1]
    group = " ".join(CliRunner().invoke(cli, ["cluster", "--help"]).output.split())
    assert "..." not in group.split("Commands:")[1], group  # subcommands were cut off too
    assert "unhandled outcomes in red" in top


def test_press_hash_is_a_key_not_a_comment() -> None:
    actions = parse_script('press #\npress 1 # sales\npress "#"\npress 12#\n')
    assert [a.text for a in actions] == ["#", "1", "#", "12#"]


def test_error_outcome_exits_1(tmp_path: Path) -> None:
    (tmp_path / "bad.flow").write_text(BAD)
    code, out = _run(str(tmp_path / "bad.flow"), "--no-audio", "--caller",
                     _script(tmp_path, "wait 1s\nhangup\n"))  # fmt: skip
    assert code == 1 and "outcome: error" in out


def test_time_and_from_on_the_sandbox(tmp_path: Path) -> None:
    script = _script(tmp_path, 'wait for "Monday to Friday" 20s\nhangup\n')
    flow = str(FLOWS / "support_line.flow")
    code, out = _run(flow, "--time", "2025-01-04T10:00:00", "--from", "+15550199",
                     "--no-audio", "--caller", script)  # fmt: skip
    assert code == 0, out
    assert "sandbox call from +15550199 to +18005550199" in out
    assert "-> after_hours" in out  # a Saturday
    script = _script(tmp_path, 'wait for "Welcome to Acme support" 20s\nhangup\n')
    code, out = _run(flow, "--time", "2025-01-06T10:00:00", "--no-audio", "--caller", script)
    assert code == 0 and "-> open_hours" in out, out


def test_a_failed_expect_ends_the_run_at_once(tmp_path: Path) -> None:
    script = _script(tmp_path, 'wait for "For sales"\nexpect "never said"\nwait 60s\nhangup\n')
    t0 = time.monotonic()
    code, out = _run(str(FLOWS / "main_ivr.flow"), "--no-audio", "--caller", script)
    assert code == 1 and "line 2: did not hear 'never said'" in out
    assert time.monotonic() - t0 < 15


CLOSED = """\
flow closed:
    answers "100"

state start:
    answer
    say "We are closed."
    hangup
"""


def test_script_lines_the_call_did_not_live_to_reach_still_count(tmp_path: Path) -> None:
    (tmp_path / "closed.flow").write_text(CLOSED)
    flow = str(tmp_path / "closed.flow")
    script = _script(tmp_path, 'wait for "Press 1" 20s\npress 1\nexpect "sales"\n')
    code, out = _run(flow, "--no-audio", "--caller", script)  # the flow hangs up first
    assert code == 1, out
    assert "line 1: did not hear 'Press 1'" in out
    script = _script(tmp_path, 'wait 5s\nexpect "closed"\npress 1\n')
    code, out = _run(flow, "--no-audio", "--caller", script)  # heard: the rest is moot
    assert code == 0, out


@pytest.mark.parametrize("virtual", [[], ["--virtual-time"]])
def test_expect_right_after_a_key_sees_the_flow_s_answer(
    tmp_path: Path, virtual: list[str]
) -> None:
    script = _script(tmp_path, 'wait for "For sales"\npress 1\nexpect "Connecting you to sales"\n')
    code, out = _run(str(FLOWS / "main_ivr.flow"), "--no-audio", "--caller", script, *virtual)
    assert code == 0, out


def test_the_no_input_escalation_example_in_running_md_passes(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "running.md").read_text()
    block = doc.split("No-input escalation", 1)[1].split("```", 2)[1]
    script = _script(tmp_path, block.strip("\n"))
    code, out = _run(str(FLOWS / "main_ivr.flow"), "--no-audio", "--caller", script)
    assert code == 0, out
    assert "You can also press 0" in out


def test_sandbox_settings_in_voxflow_toml(tmp_path: Path) -> None:
    (tmp_path / "voxflow.toml").write_text(
        '[sandbox]\ntime = "2025-01-04T10:00:00"\nfrom = "+15550199"\nto = "200"\n'
    )
    s = load_settings({}, env={}, cwd=tmp_path)
    assert (s.call_time, s.caller_number, s.dialed) == ("2025-01-04T10:00:00", "+15550199", "200")
    s = load_settings({"caller_number": "+1999"}, env={}, cwd=tmp_path)
    assert s.caller_number == "+1999"  # the option wins


def test_undecodable_script_and_config_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe")
    (tmp_path / "bad.toml").write_bytes(b"\xff\xfe")
    flow = str(FLOWS / "main_ivr.flow")
    code, out = _run(flow, "--no-audio", "--caller", str(tmp_path / "bad.txt"))
    assert code == 2 and "bad.txt: not UTF-8 text" in out
    code, out = _run(flow, "--no-audio", "--config", str(tmp_path / "bad.toml"))
    assert code == 2 and "bad.toml: not UTF-8 text" in out
    code, out = _run(flow, "--no-audio", "--caller", "/dev/zero")  # was read for ever
    assert code == 2 and "caller script /dev/zero is larger than 1000000 bytes" in out
    code, out = _run(flow, "--grace", "-1")
    assert code == 2 and "--grace: must not be negative" in out


def test_options_that_would_be_ignored_or_lose_the_traces_are_errors(tmp_path: Path) -> None:
    flow = str(FLOWS / "main_ivr.flow")
    code, out = _run(flow, "--no-audio", "--meta", "a=b", "--caller-id", "Acme <100>")
    assert code == 2 and "--meta, --caller-id: only with --call ENDPOINT" in out
    (tmp_path / "afile").write_text("")
    code, out = _run(flow, "--no-audio", "--trace", str(tmp_path / "afile" / "traces"))
    assert code == 2 and "--trace: cannot create" in out, out
    for grace in ("nan", "inf"):
        code, out = _run(flow, "--grace", grace)
        assert code == 2 and f"--grace: expected a number of seconds, got {grace}" in out


def test_outbound_websocket_modes_are_a_real_asterisk_too(tmp_path: Path) -> None:
    flow = str(FLOWS / "main_ivr.flow")
    code, out = _run(flow, "--ari-mode", "persistent")
    assert code == 2 and "needs the password Asterisk presents" in out
    code, out = _run(flow, "--ari-mode", "per_call", "--ari-password", "p", "--to", "100")
    assert code == 2 and "--to: sandbox only" in out


@pytest.mark.parametrize("line", ['wait for ""', 'wait for "  " 5s'])
def test_wait_for_empty_text_is_refused_as_expect_is(line: str) -> None:
    """``wait for ""`` matched the first prompt whatever it said (a check that cannot fail);
    ``expect ""`` was already refused."""
    with pytest.raises(ConfigError, match=r'^s\.txt:2: expected: wait for "TEXT" \[TIMEOUT\]'):
        parse_script(f"press 1\n{line}\n", name="s.txt")


def test_a_worker_s_options_on_the_sandbox_are_refused_not_ignored(tmp_path: Path) -> None:
    """--redis on the sandbox's one call was silently ignored (exit 0): a user believing the
    call checkpointed in Redis was told nothing."""
    flow = str(FLOWS / "main_ivr.flow")
    script = _script(tmp_path, "hangup\n")
    code, out = _run(flow, "--no-audio", "--caller", script, "--redis", "redis://127.0.0.1:9/0")
    assert code == 2 and "--redis: only for a worker serving Asterisk" in out
    code, out = _run(flow, "--no-audio", "--caller", script, "--metrics-port", "0", "--drain",
                     "finish")  # fmt: skip
    assert code == 2 and "--metrics-port, --drain: only for a worker serving Asterisk" in out
    env = {"VOXFLOW_REDIS_URL": "redis://127.0.0.1:9/0"}
    code, out = _run(flow, "--no-audio", "--caller", script, env=env)
    assert code == 0 and "not used on the embedded sandbox: redis_url" in out
