"""``retries N backoff D`` on an http step: lowered to the IR and the request command; misuse
(a retried POST, too many retries, a backoff nothing waits for or out of range) is VF408."""

from __future__ import annotations

from voxflow.compiler import compile_flow
from voxflow.ir import HttpStep

FLOW = """flow h:
    timeout 5s

var order: map = {}

state s:
    answer
    http METHOD "https://orders.example.com/v1/orders/42" into order OPTIONS:
        on ok:
            say "{{ order.state }}"
            hangup
        on error, timeout:
            hangup
"""


def _compile(method: str, options: str) -> tuple[HttpStep | None, list[str]]:
    result = compile_flow(FLOW.replace("METHOD", method).replace("OPTIONS", options), "h.flow")
    errors = [f"{d.code} {d.message}" for d in result.diagnostics]
    if result.flow is None:
        return None, errors
    step = result.flow.states["s"].steps[1]
    assert isinstance(step, HttpStep)
    return step, errors


def test_retries_and_backoff_reach_the_ir() -> None:
    step, errors = _compile("get", "retries 3 backoff 1s")
    assert errors == [] and step is not None
    assert (step.retries, step.backoff_ms) == (3, 1000)
    step, _ = _compile("delete", "retries 0")
    assert step is not None and step.retries == 0


def test_defaults_two_retries_for_idempotent_methods_none_for_post() -> None:
    step, _ = _compile("put", "")
    assert step is not None and (step.retries, step.backoff_ms) == (2, 200)
    step, _ = _compile("post", "")
    assert step is not None and step.retries == 0


def test_misuse_is_a_clear_error() -> None:
    assert _compile("post", "retries 2")[1] == [
        "VF408 a POST is sent once: only GET, PUT and DELETE are retried"
    ]
    assert _compile("get", "retries 9")[1] == ["VF408 'retries' is 0 to 5, not 9"]
    assert _compile("get", "retries 0 backoff 1s")[1] == [
        "VF408 'backoff' with no retries ('retries 0'): nothing waits for it"
    ]
    assert _compile("patch", "backoff 1s")[1] == [
        "VF408 'backoff' with no retries (a PATCH is sent once): nothing waits for it"
    ]
    assert _compile("get", "backoff 20ms")[1] == ["VF408 'backoff' is 50ms to 10s, not 20ms"]
    assert _compile("get", 'retries "2"')[1] == ["VF408 'retries' takes a whole number"]
