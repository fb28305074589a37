"""VF210: a record_start recording still running when the call leaves for a queue or a
transfer (it stops there, see capture record-leaving-stasis.json), through the front door."""

from __future__ import annotations

import pytest

from voxflow.compiler import compile_flow

H = "flow f:\n    timeout 5s\n\n"
Q = '    queue "support":\n        on timeout, failed -> b\n    goto b\n'
END = "\nstate b:\n    hangup\n"
REC = '    record_start "r-{{ call.id }}"\n'
STOP = '    record_stop "r-{{ call.id }}"\n'


def _vf210(source: str) -> list[tuple[int, str]]:
    return [
        (d.span.line, d.message)
        for d in compile_flow(source, "t.flow").diagnostics
        if d.code == "VF210"
    ]


@pytest.mark.parametrize(
    ("source", "line"),
    [
        (H + "state a:\n" + REC + Q + END, 6),  # same state
        (H + "state a:\n" + REC + "    goto c\nstate c:\n" + Q + END, 8),  # across a goto
        (H + "state a:\n" + REC + '    transfer "PJSIP/payments"\n', 6),
        # the first queue ends it: only that one is reported
        (H + "state a:\n" + REC + Q.replace("    goto b\n", "") + Q + END, 6),
        # one branch stops it, the other does not: it may still run
        (H + "state a:\n" + REC + "    if call.caller == \"1\":\n    " + STOP
         + "    goto c\nstate c:\n" + Q + END, 10),
    ],
)  # fmt: skip
def test_a_recording_running_at_a_queue_or_transfer_is_reported(source: str, line: int) -> None:
    found = _vf210(source)
    assert [ln for ln, _ in found] == [line]
    assert "the recording started on line 5 ends here" in found[0][1]


@pytest.mark.parametrize(
    "source",
    [
        H + "state a:\n" + REC + STOP + Q + END,
        H + "state a:\n" + Q.replace("    goto b\n", "") + REC + "    goto b\n" + END,
        H + "state a:\n" + Q + END,
    ],
)
def test_no_recording_running_is_not_reported(source: str) -> None:
    assert _vf210(source) == []


def test_vf210_is_a_warning_and_can_be_disabled() -> None:
    source = H + "state a:\n" + REC + "    # voxflow: disable-next-line=VF210\n" + Q + END
    assert _vf210(source) == []
    diags = compile_flow(H + "state a:\n" + REC + Q + END, "t.flow").diagnostics
    assert [d.severity.value for d in diags if d.code == "VF210"] == ["warning"]
