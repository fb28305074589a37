"""voxflow replay compares where the call was sent (``route`` records) with the flow now."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import forked
from test_testing_replay import FLOW, RECORDS

from voxflow.testing.replay import replay_trace

SALES = {"t": 9.9, "type": "route", "op": "dial", "target": "PJSIP/sales", "state": "sales"}
OPERATOR = {"t": 12.1, "type": "route", "op": "dial", "target": "PJSIP/operator",
            "state": "operator"}  # fmt: skip


def _trace(tmp_path: Path, routes: list[dict[str, object]], marked: bool = True) -> Path:
    records = [dict(r) for r in RECORDS]
    if marked:
        records[0]["routes"] = True
    records[8:8] = [routes[0]] if routes else []  # the sales dial, before its outcome
    if len(routes) > 1:
        records[12:12] = routes[1:]  # the operator's dial, before its outcome
    path = tmp_path / "call.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_the_same_targets_replay_the_same(tmp_path: Path) -> None:
    report = replay_trace(_trace(tmp_path, [SALES, OPERATOR]), str(FLOW))
    assert report.same, report.render()
    assert "routing and the end match" in report.render()
    assert report.result is not None
    assert [(r["op"], r["target"], r["state"]) for r in report.result.routes] == [
        ("dial", "PJSIP/sales", "sales"),
        ("dial", "PJSIP/operator", "operator"),
    ]


def test_a_changed_target_is_the_first_difference(tmp_path: Path) -> None:
    elsewhere = {**SALES, "target": "PJSIP/sales-old"}
    report = replay_trace(_trace(tmp_path, [elsewhere, OPERATOR]), str(FLOW))
    assert not report.same
    assert report.differences == [
        "dial target PJSIP/sales-old -> PJSIP/sales at state sales, routing step 1"
    ]


def test_a_changed_option_and_a_missing_route_are_differences(tmp_path: Path) -> None:
    with_cid = {**SALES, "caller_id": "+15550100"}
    report = replay_trace(_trace(tmp_path, [with_cid, OPERATOR]), str(FLOW))
    assert report.differences == [
        "dial caller id +15550100 -> (none) at state sales, routing step 1"
    ]
    report = replay_trace(_trace(tmp_path, [SALES]), str(FLOW))
    assert report.differences == [
        "dial PJSIP/operator at state operator, routing step 2: not in the trace"
    ]
    queued = {**SALES, "op": "queue", "target": "sales"}
    report = replay_trace(_trace(tmp_path, [queued, OPERATOR]), str(FLOW))
    assert report.differences == [
        "routing step 1 at state sales: the trace has queue sales, the flow now dial PJSIP/sales"
    ]


def test_a_redacted_part_of_a_target_matches_anything(tmp_path: Path) -> None:
    redacted = {**SALES, "target": "PJSIP/<redacted>"}
    report = replay_trace(_trace(tmp_path, [redacted, OPERATOR]), str(FLOW))
    assert report.same, report.render()


def test_a_trace_without_routing_records_replays_with_a_note(tmp_path: Path) -> None:
    report = replay_trace(_trace(tmp_path, [], marked=False), str(FLOW))
    assert report.same, report.render()
    assert not report.routes_compared
    out = report.render()
    assert "this trace records no routing" in out and "was not compared" in out
    assert "(routing not compared)" in out
    # a trace written with routing that has none: the flow now dialing is a difference
    report = replay_trace(_trace(tmp_path, [], marked=True), str(FLOW))
    assert report.differences == [
        "dial PJSIP/sales at state sales, routing step 1: not in the trace"
    ]


CARD = "4111111111111111"
PAY = """\
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
    http get "http://127.0.0.1:PORT/check?card={{ card }}":
        on ok, error, timeout -> ring

state ring:
    dial "PJSIP/{{ card }}" timeout 2s:
        on answered, busy, noanswer, failed -> bye

state bye:
    say "Bye."
    hangup
"""


def test_routes_with_secrets_are_traced_redacted_and_replay(tmp_path: Path) -> None:
    """A target with a sensitive variable in it is traced redacted (the card number is in no
    record), and its replay compares the same."""
    server = HTTPServer(("127.0.0.1", 0), _Ok)
    port = server.server_port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _secret_routes(tmp_path, port)
    finally:
        server.shutdown()
        server.server_close()


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _secret_routes(tmp_path: Path, port: int) -> None:
    (tmp_path / "pay.flow").write_text(PAY.replace("PORT", str(port)))
    (tmp_path / "caller.txt").write_text(
        f'wait for "Please enter" 20s\npress {CARD}#\nwait 3s\nhangup\n'
    )
    proc = forked.run(
        "run", "pay.flow", "--no-audio", "--caller", "caller.txt", "--trace", "traces",
        timeout=120, cwd=tmp_path, prog=str(Path(sys.executable).parent / "voxflow"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [trace] = list((tmp_path / "traces").glob("*.jsonl"))
    text = trace.read_text()
    assert CARD not in text and CARD[:6] not in text
    routes = [json.loads(line) for line in text.splitlines() if '"type":"route"' in line]
    assert [(r["op"], r["target"]) for r in routes] == [
        ("http", f"GET http://127.0.0.1:{port}/check?card=<redacted>"),
        ("dial", "PJSIP/<redacted>"),
    ], text
    report = replay_trace(trace, str(tmp_path / "pay.flow"))
    assert report.same, report.render()
    assert "routing and the end match" in report.render()


def test_a_request_retried_until_it_failed_replays_the_same(tmp_path: Path) -> None:
    """An HTTP GET that failed three times (nothing listens: two retries) replays as three
    failures, not one and then the replay's catch-all for unfinished requests."""
    (tmp_path / "pay.flow").write_text(PAY.replace("PORT", "9"))  # discard: connection refused
    (tmp_path / "caller.txt").write_text(
        f'wait for "Please enter" 20s\npress {CARD}#\nwait 3s\nhangup\n'
    )
    proc = forked.run(
        "run", "pay.flow", "--no-audio", "--caller", "caller.txt", "--trace", "traces",
        timeout=120, cwd=tmp_path, prog=str(Path(sys.executable).parent / "voxflow"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [trace] = list((tmp_path / "traces").glob("*.jsonl"))
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    [sent] = [r for r in records if r["type"] == "http" and "method" in r]
    assert (sent["outcome"], sent["attempts"]) == ("error", 3), sent
    report = replay_trace(trace, str(tmp_path / "pay.flow"))
    assert report.same, report.render()
