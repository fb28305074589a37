"""Sensitive variables: never in clear in traces, logs, transcripts or webhooks; replay works."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import forked
import pytest
from click.testing import CliRunner

from voxflow.cli.main import cli
from voxflow.testing.replay import replay_trace

ROOT = Path(__file__).resolve().parents[2]
CARD = "4111111111111111"

FLOW = """\
flow pay:
    answers "100"

var card: string sensitive

state start:
    answer
    gather "Please enter your card number, then press pound." into card:
        capture digits
        min_digits 4
        terminator "#"
        on noinput, nomatch -> retry
        on exhausted -> bye
    meta card_used = card webhook
    log "card {{ card }} entered"
    say "You entered {{ card }}, ending in {{ card[-4:] }}."
    goto bye

state bye:
    say "Bye."
    hangup
"""


@pytest.fixture
def hooks() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks", bodies
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_card_number_is_redacted_everywhere_and_replay_still_works(
    tmp_path: Path, hooks: tuple[str, list[bytes]]
) -> None:
    url, bodies = hooks
    (tmp_path / "pay.flow").write_text(FLOW)
    (tmp_path / "caller.txt").write_text(
        f'wait for "Please enter" 20s\npress {CARD}#\nwait for "Bye" 10s\nhangup\n'
    )
    exe = Path(sys.executable).parent / "voxflow"
    proc = forked.run(
        "run",
        "pay.flow",
        "-v",
        "--no-audio",
        "--caller",
        "caller.txt",
        "--trace",
        "traces",
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "VOXFLOW_WEBHOOK_URL": url},
        prog=str(exe),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    [trace] = list((tmp_path / "traces").glob("*.jsonl"))
    text = trace.read_text()
    assert "You entered <redacted>, ending in 1111." in out  # transcript
    assert "card <redacted> entered" in out  # the flow's log line (-v)
    assert "[pressed *]" in out and "[pressed #]" in out
    assert any(b'"card_used":"<redacted>"' in b for b in bodies), bodies
    for where, content in (("output", out), ("trace", text), ("webhooks", repr(bodies))):
        assert CARD not in content, where
        assert CARD[:6] not in content, where
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["type"] for r in records].count("call.started") == 1
    ended = next(r for r in records if r["type"] == "call.ended")
    assert ended["variables"]["card"] == "<redacted>"
    os.chdir(tmp_path)
    try:
        report = replay_trace(trace, "pay.flow")
    finally:
        os.chdir(ROOT)
    assert report.same, report.render()
    assert any("replayed as '0'" in n for n in report.notes)


def test_replay_uses_the_traces_own_time_caller_and_number(tmp_path: Path) -> None:
    script = tmp_path / "caller.txt"
    script.write_text('wait for "Monday to Friday" 20s\nwait 1s\nhangup\n')
    result = CliRunner().invoke(
        cli,
        [
            "run",
            str(ROOT / "flows" / "support_line.flow"),
            "--time",
            "2025-01-04T10:00:00",
            "--from",
            "+15550199",
            "--no-audio",
            "--caller",
            str(script),
            "--trace",
            str(tmp_path / "tr"),
        ],
    )
    assert result.exit_code == 0, result.output
    [trace] = list((tmp_path / "tr").glob("*.jsonl"))
    started = json.loads(trace.read_text().splitlines()[0])
    assert started["type"] == "call.started" and started["caller"] == "+15550199"
    assert abs(started["started"] - 1736002800) < 60  # Sat 2025-01-04 10:00 America/New_York
    report = replay_trace(trace, str(ROOT / "flows" / "support_line.flow"))
    assert report.same, report.render()  # a Monday 10:00 default would take open_hours
    assert report.result is not None and "after_hours" in report.result.states


class _Trace:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, object]]] = []

    def write(self, type_: str, /, **fields: object) -> None:
        self.records.append((type_, fields))

    def close(self) -> None:
        pass


def test_what_the_caller_says_into_a_sensitive_gather_is_redacted() -> None:
    from types import MappingProxyType

    from voxflow.compiler import compile_flow
    from voxflow.ir import models as ir
    from voxflow.runtime import events as ev
    from voxflow.runtime.expressions import UNSET
    from voxflow.runtime.redaction import RedactingTrace, Redactor, taken
    from voxflow.runtime.runstate import Frame, RunState, Wait

    flow = compile_flow(FLOW, "pay.flow").flow
    assert flow is not None
    gather = next(s for s in flow.states["start"].steps if isinstance(s, ir.GatherStep))
    frame = Frame(None, "start", MappingProxyType({"card": UNSET}))
    waiting = RunState(ev.CallInfo("c1"), (frame,), wait=Wait("gather", gather, frozenset()))
    current = [waiting]
    redactor = Redactor(flow, lambda: current[0])
    trace = _Trace()
    wrapped = RedactingTrace(trace, redactor)
    wrapped.write("prompt", text="Please enter your card number, then press pound.")
    assert redactor.transcript("four one one one", "caller") == "<redacted>"
    assert redactor.transcript("[pressed 4]", "caller") == "[pressed *]"
    assert redactor.transcript("[pressed #]", "caller") == "[pressed #]"  # the terminator
    card = MappingProxyType({"card": "4111"})
    current[0] = RunState(ev.CallInfo("c1"), (Frame(None, "start", card),))  # gather over
    # the interpreter masks the sentence as the gather takes it, with a stand-in to replay
    said = taken({"kind": "speech", "text": "four one one one"}, flow, None, gather)
    assert said == {"kind": "speech", "text": "<redacted>", "stand_in": "0000"}
    wrapped.write("input", **said)
    wrapped.write("outcome", step="gather", outcome="match")
    wrapped.write("prompt", text="You entered 4111.")
    wrapped.write("input", kind="speech", text="yes")  # not into a sensitive variable
    assert [f.get("text") for _, f in trace.records] == [
        "Please enter your card number, then press pound.",
        "<redacted>",
        None,
        "You entered <redacted>.",
        "yes",
    ]
