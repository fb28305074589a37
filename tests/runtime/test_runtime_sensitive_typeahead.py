"""Keys typed ahead (before a sensitive ``gather`` starts) are masked wherever they are seen."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from voxflow.cli.main import cli
from voxflow.testing.replay import replay_trace

CARD = "4111111111111111"

FLOW = """\
flow pay:
    answers "100"

var card: string sensitive

state start:
    answer
    say "Welcome to the payment line."
    pause 5s
    gather "Please enter your card number, then press pound." into card:
        capture digits
        min_digits 4
        terminator "#"
        on noinput, nomatch -> retry
        on exhausted -> bye
    say "Thank you."
    goto bye

state bye:
    say "Bye."
    hangup
"""


def test_keys_typed_before_a_sensitive_gather_are_masked_in_trace_and_transcript(
    tmp_path: Path,
) -> None:
    (tmp_path / "pay.flow").write_text(FLOW)
    # the whole card number and its terminator are typed during the pause, before the
    # gather starts: the gather takes them from the type-ahead buffer all at once
    (tmp_path / "caller.txt").write_text(
        f'wait for "Welcome" 20s\npress {CARD}#\nwait for "Bye" 20s\nhangup\n'
    )
    result = CliRunner().invoke(
        cli,
        [
            "run",
            str(tmp_path / "pay.flow"),
            "--no-audio",
            "--caller",
            str(tmp_path / "caller.txt"),
            "--trace",
            str(tmp_path / "traces"),
        ],
    )
    out = result.output
    assert result.exit_code == 0, out
    assert "Thank you." in out
    [trace] = list((tmp_path / "traces").glob("*.jsonl"))
    text = trace.read_text()
    records = [json.loads(line) for line in text.splitlines()]
    keys = [r["digit"] for r in records if r["type"] == "input" and r.get("kind") == "dtmf"]
    assert keys == ["<redacted>"] * len(CARD) + ["#"], keys
    for where, content in (("transcript", out), ("trace", text)):
        for digit in "41":
            assert f"[pressed {digit}]" not in content, where
            assert f'"digit": "{digit}"' not in content, where
        assert CARD[:4] not in content, where
    report = replay_trace(trace, str(tmp_path / "pay.flow"))
    assert report.same, report.render()
