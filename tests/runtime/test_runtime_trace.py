"""JSON Lines call traces."""

from __future__ import annotations

from pathlib import Path

from voxflow.runtime.trace import TraceWriter, read_trace


def test_trace_writes_one_record_per_line(tmp_path: Path) -> None:
    now = [100.0]
    tw = TraceWriter(tmp_path, "chan/1:2", clock=lambda: now[0])
    tw.write("call.started", flow="main", caller="+1555")
    now[0] = 101.25
    tw.write("input", kind="dtmf", value="1", waited_ms=1250)
    tw.close()
    tw.write("ignored")
    assert tw.path is not None and tw.path.name == "chan_1_2.jsonl"
    records = read_trace(tw.path)
    assert [r["type"] for r in records] == ["call.started", "input"]
    assert records[1]["t"] == 1.25 and records[1]["value"] == "1"
    assert records[1]["kind"] == "dtmf"


def test_unwritable_directory_disables_trace(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    tw = TraceWriter(blocker / "sub", "c1")
    tw.write("call.started")  # no exception
    tw.close()
