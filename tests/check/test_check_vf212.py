"""VF212: a queue's `announce_position true` changes nothing on Asterisk (Queue() has no per-call
option for position announcements; queues.conf's announce-position does it), so the checker
says so instead of letting the flow promise announcements no caller will hear."""

from __future__ import annotations

from voxflow.compiler import compile_flow

H = "flow f:\n    timeout 5s\n\nstate a:\n    answer\n"
Q = '    queue "support" timeout 4m{opts}:\n        on answered, timeout, failed -> hangup\n'


def _vf212(source: str) -> list[tuple[int, int, str, str]]:
    diags = compile_flow(source, "t.flow").diagnostics
    return [
        (d.span.line, d.span.col, d.severity.value, d.message) for d in diags if d.code == "VF212"
    ]


def test_announce_position_is_a_warning_at_the_option() -> None:
    found = _vf212(H + Q.format(opts=" announce_position true"))
    assert [(ln, col, sev) for ln, col, sev, _ in found] == [(6, 32, "warning")]
    assert "'announce_position' changes nothing on a call" in found[0][3]
    assert "announce-position" in found[0][3]


def test_a_queue_without_it_and_other_options_are_not_reported() -> None:
    assert _vf212(H + Q.format(opts="")) == []
    assert _vf212(H + Q.format(opts=' music "jazz" priority 5')) == []


def test_vf212_can_be_disabled() -> None:
    quiet = (
        H + "    # voxflow: disable-next-line=VF212\n" + Q.format(opts=" announce_position true")
    )
    assert _vf212(quiet) == []
