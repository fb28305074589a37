"""voxflow replay: a trace in the driver's JSON Lines format re-run in the simulator."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from voxflow.cli.main import cli
from voxflow.testing.replay import replay_trace

ROOT = Path(__file__).resolve().parents[2]
FLOW = ROOT / "flows" / "main_ivr.flow"

RECORDS = [
    {"t": 0, "type": "call.started", "flow": "main_ivr", "caller": "+15550100", "called": "100"},
    {"t": 0, "type": "state.entered", "state": "main_menu"},
    {"t": 0.1, "type": "prompt", "text": "Thank you for calling Acme."},
    {"t": 2.0, "type": "prompt", "text": "For sales, press 1 or say sales. For support, press 2 "
     "or say support. For billing, press 3.", "attempt": 1},
    {"t": 9.8, "type": "input", "kind": "dtmf", "digit": "1", "waited_ms": 400},
    {"t": 9.8, "type": "outcome", "step": "gather", "outcome": "choice:sales", "count": 1},
    {"t": 9.8, "type": "state.entered", "state": "sales"},
    {"t": 9.9, "type": "prompt", "text": "Connecting you to sales."},
    {"t": 12.0, "type": "outcome", "step": "dial", "outcome": "busy", "count": 1},
    {"t": 12.0, "type": "state.entered", "state": "operator"},
    {"t": 12.1, "type": "prompt", "text": "Please hold while I connect you to an operator."},
    {"t": 15.0, "type": "outcome", "step": "dial", "outcome": "answered", "count": 1},
    {"t": 15.0, "type": "state.entered", "state": "goodbye"},
    {"t": 15.1, "type": "prompt", "text": "Thank you for calling. Goodbye."},
    {"t": 17.0, "type": "call.ended", "outcome": "completed", "reason": "normal"},
]  # fmt: skip


def write(tmp_path: Path, records: list[dict[str, object]]) -> Path:
    path = tmp_path / "call.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_replay_of_an_unchanged_flow_is_the_same(tmp_path: Path) -> None:
    report = replay_trace(write(tmp_path, RECORDS), str(FLOW))
    first = report.render().splitlines()[0]
    assert first == f"replay of {tmp_path / 'call.jsonl'} on flow main_ivr ({FLOW})"
    assert report.same, report.render()
    assert report.result is not None
    assert report.result.states == ["main_menu", "sales", "operator", "goodbye"]


def test_replay_shows_where_behaviour_differs(tmp_path: Path) -> None:
    changed = [dict(r) for r in RECORDS]
    changed[8]["outcome"] = "answered"  # the sales dial was answered in the real call
    changed[9]["state"] = "support"
    report = replay_trace(write(tmp_path, changed), str(FLOW))
    assert not report.same
    assert "state #3: the trace has 'support', the flow now gives 'goodbye'" in report.render()


def test_cli_replay_finds_the_flow_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trace = write(tmp_path, RECORDS)
    runner = CliRunner()
    monkeypatch.chdir(ROOT)
    ok = runner.invoke(cli, ["replay", str(trace)])
    assert ok.exit_code == 0, ok.output
    assert "same behaviour" in ok.output
    # which file it found by the name is said (another flow of that name could be anywhere)
    assert "on flow main_ivr (flows/main_ivr.flow, found by its name under .)" in ok.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    result = runner.invoke(cli, ["replay", str(bad), "--flow", str(FLOW)])
    assert result.exit_code == 1 and "not a JSON Lines trace" in result.output


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["[1, 2]"], "record 1 is not a JSON object"),
        (['{"t": 0, "type": "call.started"}', "null"], "record 2 is not a JSON object"),
        (['{"type": "input", "kind": "dtmf", "digit": "xyz", "t": 1}'], "'xyz' is not DTMF"),
        (['{"type": "call.started", "started": 1e30}'], "timestamp out of range"),
        (['{"type": "op", "op": "dial", "cid": [1], "latency_ms": 5}'], "unhashable"),
        (['{"type": "http", "status": "x", "t": 1}'], "invalid literal"),
    ],
)
def test_a_damaged_trace_is_a_one_line_error(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["replay", str(bad), "--flow", str(FLOW)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "bad.jsonl" in result.output and message in result.output, result.output


def test_a_trace_that_never_ends_is_refused(tmp_path: Path) -> None:
    (tmp_path / "zero.jsonl").symlink_to("/dev/zero")  # was read (into memory) for ever
    result = CliRunner().invoke(cli, ["replay", str(tmp_path / "zero.jsonl"), "--flow", str(FLOW)])
    assert result.exit_code == 1, result.output
    assert "cannot read trace" in result.output and "not a regular file" in result.output
    os.mkfifo(tmp_path / "pipe.jsonl")  # would block opening it
    result = CliRunner().invoke(cli, ["replay", str(tmp_path / "pipe.jsonl"), "--flow", str(FLOW)])
    assert result.exit_code == 1 and "not a regular file" in result.output, result.output


def test_a_trace_cut_short_is_compared_up_to_where_it_ends(tmp_path: Path) -> None:
    """A trace with no ``call.ended`` (its worker was killed mid-call, the file was cut) replayed
    on as if the caller had gone silent and reported what came after its end as differences
    ("the flow now goes on with 'operator'", exit 1). It is compared up to its last record, and
    a last line cut mid-record is left out; both are said."""
    cut = write(tmp_path, RECORDS[:8])
    with cut.open("a") as fh:
        fh.write('{"t": 12.0, "type": "outcome", "step": "di')
    report = replay_trace(cut, str(FLOW))
    assert report.same, report.render()
    text = report.render()
    assert "note: the last line of the trace is cut short (not JSON): left out" in text
    assert "note: the trace has no call.ended record" in text and "up to 9.90 s" in text
    result = CliRunner().invoke(cli, ["replay", str(cut), "--flow", str(FLOW)])
    assert result.exit_code == 0, result.output
    # what the trace does have is still compared
    changed = [dict(r) for r in RECORDS[:8]]
    changed[6]["state"] = "support"
    report = replay_trace(write(tmp_path, changed), str(FLOW))
    assert "state #2: the trace has 'support', the flow now gives 'sales'" in report.render()
    # a line that is not JSON before the last one is still damage
    bad = write(tmp_path, RECORDS[:3])
    bad.write_text(bad.read_text().replace('"state.entered"', '"state.ent', 1))
    result = CliRunner().invoke(cli, ["replay", str(bad), "--flow", str(FLOW)])
    assert result.exit_code == 1 and "not a JSON Lines trace" in result.output, result.output


def test_an_empty_trace_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = CliRunner().invoke(cli, ["replay", str(empty)])
    assert result.exit_code == 1, result.output
    assert f"{empty} has no call.started record (empty, or not a voxflow run --trace file)" in (
        result.output
    )


QUEUE_FLOW = """flow q:
    answers "100"
    timeout 5s

state start:
    answer
    queue "support" timeout 4m:
        1 -> message
        on answered, timeout, failed -> message

state message:
    say "Leave a message."
    hangup "message"
"""


def test_a_queue_left_with_an_exit_key_replays(tmp_path: Path) -> None:
    """The key that left the queue is traced (an ``input`` record) and replayed as a press;
    the queue's mock waits for it instead of answering."""
    flow = tmp_path / "q.flow"
    flow.write_text(QUEUE_FLOW)
    records = [
        {"t": 0, "type": "call.started", "flow": "q", "caller": "+15550100", "called": "100"},
        {"t": 0, "type": "state.entered", "state": "start"},
        {"t": 30.0, "type": "input", "kind": "dtmf", "digit": "1"},
        {"t": 30.0, "type": "op", "op": "queue", "cid": 2, "latency_ms": 30000},
        {"t": 30.0, "type": "outcome", "step": "queue", "outcome": "choice:1", "count": 1},
        {"t": 30.0, "type": "state.entered", "state": "message"},
        {"t": 30.1, "type": "prompt", "text": "Leave a message."},
        {"t": 31.0, "type": "call.ended", "outcome": "completed", "reason": "message"},
    ]
    report = replay_trace(write(tmp_path, records), str(flow))
    assert report.same, report.render()
    assert report.result is not None and report.result.states == ["start", "message"]
