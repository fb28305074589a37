"""`voxflow test` retries an http step's request as the run time's HttpClient does: an idempotent
method (get, put, delete) that times out, cannot connect or gets 429/5xx is sent again, twice;
post and patch are sent once."""

from __future__ import annotations

from pathlib import Path

from voxflow.testing.runner import run_paths

FLOW = """flow t:
    timeout 5s
    http_timeout 2s

var order: map

state s:
    answer
    http METHOD "https://orders.example.com/v1/orders/42" into order:
        on ok:
            say "Your order is {{ order.state }}."
            hangup
        on error, timeout:
            say "The order system is down."
            hangup
"""

SCENARIO = """flow: t.flow
scenarios:
  - name: s
    mocks:
      http:
        - {url: orders, status: 503, times: 1}
        - {url: orders, outcome: timeout, times: 1}
        - {url: orders, status: 200, json: {state: shipped}}
    expect:
      said: [SAID]
      http: HTTP
"""


def _run(tmp_path: Path, method: str, said: str, http: str) -> list[list[str]]:
    (tmp_path / "t.flow").write_text(FLOW.replace("METHOD", method))
    scenario = SCENARIO.replace("SAID", said).replace("HTTP", http)
    (tmp_path / "t.test.yaml").write_text(scenario)
    run = run_paths([tmp_path])
    assert not run.errors
    return [o.failures for o in run.outcomes]


def test_a_get_is_retried_after_a_503_and_a_timeout(tmp_path: Path) -> None:
    url = "^GET https://orders.example.com/v1/orders/42$"
    assert _run(tmp_path, "get", "shipped", f"['{url}', '{url}', '{url}']") == [[]]


def test_a_post_is_sent_once(tmp_path: Path) -> None:
    url = "^POST https://orders.example.com/v1/orders/42$"
    got = _run(tmp_path, "post", "is down", f"[{{match: '{url}', times: 1}}]")
    assert got == [[]]


BACKOFF_FLOW = """flow t:
    timeout 5s

var order: map = {}

state s:
    answer
    http get "https://orders.example.com/v1/orders/42" into order retries 3 backoff 1s:
        on ok:
            hangup "ok"
        on error, timeout:
            hangup "down"
"""

BACKOFF_SCENARIO = """flow: t.flow
scenarios:
  - name: down
    mocks:
      http: [{url: orders, status: 503}]
    expect:
      http: [{match: orders, times: 4}]
      ended: {reason: down, after: 3.5s, before: 7.1s}
"""


def test_backoff_doubles_with_jitter_in_virtual_time(tmp_path: Path) -> None:
    """Three retries 1 s apart, doubling: 0.5-1 s, 1-2 s, 2-4 s (equal jitter) of the call's
    virtual time pass before the step's error outcome."""
    (tmp_path / "t.flow").write_text(BACKOFF_FLOW)
    (tmp_path / "t.test.yaml").write_text(BACKOFF_SCENARIO)
    run = run_paths([tmp_path])
    assert not run.errors
    assert [o.failures for o in run.outcomes] == [[]]


RETRY_AFTER_FLOW = BACKOFF_FLOW.replace("retries 3 backoff 1s", "retries 2 backoff 50ms")

RETRY_AFTER_SCENARIO = """flow: t.flow
scenarios:
  - name: waits
    mocks:
      http:
        - {url: orders, status: 429, retry_after: 3, times: 1}
        - {url: orders, status: 200, json: {}}
    expect:
      http: [{match: orders, times: 2}]
      ended: {reason: ok, after: 3s, before: 3.5s}
  - name: date
    time: "2025-01-06T10:00:00"
    mocks:
      http:
        - {url: orders, status: 503, retry_after: "Mon, 06 Jan 2025 10:00:05 GMT", times: 1}
        - {url: orders, status: 200, json: {}}
    expect:
      ended: {reason: ok, after: 4s, before: 5.5s}
  - name: too long
    mocks:
      http: [{url: orders, status: 429, retry_after: 60}]
    expect:
      http: [{match: orders, times: 1}]
      ended: {reason: down, before: 1s}
"""


def test_retry_after_is_honoured_in_virtual_time(tmp_path: Path) -> None:
    """A 429/503 mock's Retry-After is waited as at run time (one policy: ``with_retries``);
    one past BACKOFF_CAP ends the step at once."""
    (tmp_path / "t.flow").write_text(RETRY_AFTER_FLOW)
    (tmp_path / "t.test.yaml").write_text(RETRY_AFTER_SCENARIO)
    run = run_paths([tmp_path])
    assert not run.errors
    assert [o.failures for o in run.outcomes] == [[], [], []]
