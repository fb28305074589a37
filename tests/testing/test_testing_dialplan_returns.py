"""voxflow test says what the shipped contexts would do with a transfer or a queue: a target no
extension of [voxflow-transfer] routes fails, a queue comes back with Asterisk's QUEUESTATUS
mapped by the run time's own table."""

from __future__ import annotations

import pytest

from voxflow.compiler import compile_flow
from voxflow.errors import ConfigError
from voxflow.testing import parse_scenario_text, run_scenario
from voxflow.testing.sim import SimResult

FLOW = """\
flow t:
    answers "100"
    timeout 5s

on error:
    say "That line cannot be reached."
    hangup "unreachable"

state start:
    answer
    transfer "{target}"
"""

QUEUE = """\
flow q:
    answers "100"
    timeout 5s

state start:
    answer
    queue "support" timeout 1m announce "Please hold.":
        on answered:
            hangup "answered"
        on timeout:
            hangup "timeout"
        on failed:
            hangup "failed"
"""


def _run(flow_text: str, scenario: str) -> SimResult:
    result = compile_flow(flow_text, "t.flow")
    assert result.flow is not None, result.diagnostics
    sf = parse_scenario_text("flow: t.flow\nscenarios:\n" + scenario)
    [sc] = sf.scenarios
    return run_scenario(result.flow, sc, sf.defaults)


def test_a_target_the_shipped_context_cannot_route_fails_without_a_mock() -> None:
    res = _run(FLOW.format(target="payments"), "  - name: x\n")
    assert res.ended == ("completed", "unreachable")
    assert "That line cannot be reached." in res.said


def test_endpoints_and_numbers_are_transferred() -> None:
    for target in ("PJSIP/payments", "+18005550111", "2001"):
        res = _run(FLOW.format(target=target), "  - name: x\n")
        assert res.ended is not None and res.ended[0] == "transferred", (target, res.ended)


def test_a_transfer_mock_sends_the_call_back_with_its_status() -> None:
    mock = "    mocks: {transfer: [{endpoint: payments, result: failed, status: BUSY}]}\n"
    res = _run(FLOW.format(target="PJSIP/payments"), "  - name: x\n" + mock)
    assert res.ended == ("completed", "unreachable")
    assert any("BUSY" in t.text for t in res.trace)


def test_queue_statuses_map_through_the_run_times_table() -> None:
    cases = {"CONTINUE": "answered", "TIMEOUT": "timeout", "LEAVEEMPTY": "failed"}
    for status, outcome in cases.items():
        mock = f"    mocks: {{queue: [{{status: {status}, after: 5s}}]}}\n"
        res = _run(QUEUE, "  - name: x\n    timeout: 5m\n" + mock)
        assert res.ended == ("completed", outcome), status
        assert "Please hold." in res.said


def test_an_unmocked_queue_times_out_as_with_the_shipped_queues() -> None:
    res = _run(QUEUE, "  - name: x\n    timeout: 5m\n")
    assert res.ended == ("completed", "timeout")
    assert res.ended_at is not None and res.ended_at >= 60.0


def test_a_queue_mock_status_must_be_one_asterisk_sets() -> None:
    # a typo (ANSWERED for CONTINUE) silently became the 'failed' outcome
    with pytest.raises(ConfigError, match="ANSWERED"):
        parse_scenario_text(
            "flow: t.flow\nscenarios:\n  - name: x\n    mocks: {queue: [{status: ANSWERED}]}\n"
        )


def test_a_transfer_mock_status_must_be_one_a_transfer_comes_back_with() -> None:
    for bad in ("ANSWER", "OK"):
        with pytest.raises(ConfigError, match=bad):
            parse_scenario_text(
                "flow: t.flow\nscenarios:\n  - name: x\n    mocks: {transfer: "
                f"[{{result: failed, status: {bad}}}]}}\n"
            )


def test_a_queue_mock_status_asterisk_never_sets_is_refused() -> None:
    """JOINUNAVAIL and LEAVEUNAVAIL are in app_queue.c's queue_results[] and the Queue()
    documentation, but no code path of join_queue, wait_our_turn or queue_exec sets them
    (iamtalhaasghar/asterisk@21a0427 apps/app_queue.c, Asterisk 21+)."""
    for bad in ("JOINUNAVAIL", "LEAVEUNAVAIL"):
        with pytest.raises(ConfigError, match=bad):
            parse_scenario_text(
                "flow: t.flow\nscenarios:\n  - name: x\n"
                f"    mocks: {{queue: [{{status: {bad}}}]}}\n"
            )


def test_a_queue_timeout_is_the_whole_seconds_asterisk_gets() -> None:
    """The shipped context gets ``max(1, round(timeout))`` seconds (telephony.dialplan's
    VOXFLOW_QUEUE_TIMEOUT) and app_queue.c's queue_exec takes whole seconds
    (``qe.expire = qe.start + atoi(...)``): a 2.6 s step times out after 3 s, a 0.2 s one
    after 1 s, not after 2.6 s / 0.2 s."""
    for timeout, at in (("2600ms", 3.0), ("200ms", 1.0)):
        flow = QUEUE.replace('timeout 1m announce "Please hold."', f"timeout {timeout}")
        res = _run(flow, "  - name: x\n")
        assert res.ended == ("completed", "timeout"), timeout
        assert res.ended_at is not None and at <= res.ended_at < at + 0.5, (timeout, res.ended_at)
