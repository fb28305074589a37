"""``voxflow run --call``: the exit code tells what became of the call, never 0 for a call whose
outcome nobody knows (``unknown``: no word from Asterisk)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from voxflow.cli import run_app
from voxflow.cli.main import cli
from voxflow.runtime import server as server_mod
from voxflow.runtime.events import UNKNOWN_WHY, End

ROOT = Path(__file__).resolve().parents[2]
FLOW = str(ROOT / "flows" / "appointment_reminder.flow")


class _App:
    connected = True


class _Server:
    """Stands in for FlowServer: the call ends with ``END``."""

    END = End("completed")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def serve(self, stop: asyncio.Event) -> None:
        await stop.wait()

    async def call_out(self, *args: Any, **kwargs: Any) -> End:
        return self.END


def _call(monkeypatch: pytest.MonkeyPatch, end: End) -> tuple[int, str, str]:
    monkeypatch.setattr(server_mod, "FlowServer", _Server)
    monkeypatch.setattr(_Server, "END", end)
    monkeypatch.setattr(run_app, "make_app", lambda *a, **k: _App())
    args = ["run", FLOW, "--call", "PJSIP/alice", "--ari-url", "http://127.0.0.1:9/ari",
            "--ari-user", "u", "--ari-password", "p", "--no-audio"]  # fmt: skip
    result = CliRunner().invoke(cli, args, env={})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout, result.stderr


def test_an_unknown_outcome_is_not_success(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = _call(monkeypatch, End("unknown", f"PJSIP/bob: {UNKNOWN_WHY}"))
    assert code == 4, out  # was 0: success for a call nobody knows happened
    assert "outcome: unknown" in out
    assert "not known whether the call" in err and "PJSIP/bob" in err


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        ("completed", 0),
        ("caller_hangup", 0),
        ("transferred", 0),
        ("failed", 1),
        ("error", 1),
        ("unknown", 4),
        ("handed_over", 4),
        ("ended_elsewhere", 4),
    ],
)
def test_each_outcome_s_exit_code(monkeypatch: pytest.MonkeyPatch, outcome: str, code: int) -> None:
    assert _call(monkeypatch, End(outcome, "why"))[0] == code


def test_help_lists_the_unknown_exit_code() -> None:
    out = " ".join(CliRunner().invoke(cli, ["run", "--help"]).output.split())
    assert "4 the call's outcome is unknown" in out
