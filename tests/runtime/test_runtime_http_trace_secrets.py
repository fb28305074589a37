"""An http step's URL is traced without the credentials its query string or userinfo carry
(docs/language.md: request headers and query strings are never logged)."""

from __future__ import annotations

import logging

import pytest

from voxflow.compiler import compile_flow
from voxflow.redact import RedactingFilter, url_for_log
from voxflow.testing import parse_scenario_text, run_scenario

TOKEN = "tok-9f8e7d6c5b4a"

FLOW = """\
flow t:
    answers "100"
    timeout 5s

on error, timeout:
    hangup "failed"

state start:
    answer
    http get "https://api.example.com/v1/slots?day=mon&key={{ call.metadata.token }}" into _r
    http get "https://bot:{{ call.metadata.token }}@api.example.com/v1/me" into _r
    hangup
"""


def test_the_trace_of_an_http_step_has_no_credential_from_its_url() -> None:
    result = compile_flow(FLOW, "t.flow")
    assert result.flow is not None, result.diagnostics
    sf = parse_scenario_text(
        "flow: t.flow\nscenarios:\n  - name: x\n"
        f"    metadata: {{token: {TOKEN}}}\n"
        "    mocks: {http: [{url: slots, json: {}}, {url: me, json: {}}]}\n"
    )
    [sc] = sf.scenarios
    res = run_scenario(result.flow, sc, sf.defaults)
    lines = [t.text for t in res.trace if "HTTP GET" in t.text]
    assert len(lines) == 2, [t.text for t in res.trace]
    assert all(TOKEN not in line for line in lines), lines
    assert "day=mon&key=<redacted>" in lines[0], lines  # what it asked stays readable
    assert "https://bot:<redacted>@api.example.com/v1/me" in lines[1], lines


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h/p?key=abc&q=1", "https://h/p?key=<redacted>&q=1"),
        ("https://h/p?sig=abc#frag", "https://h/p?sig=<redacted>#frag"),
        (
            "https://h/p?Signature=abc&access_token=x",
            "https://h/p?Signature=<redacted>&access_token=<redacted>",
        ),
        ("https://u:pw@h/p", "https://u:<redacted>@h/p"),
        ("https://h/p?q=key", "https://h/p?q=key"),
        ("https://h/p?monkey=1", "https://h/p?monkey=1"),
    ],
)
def test_url_for_log(url: str, shown: str) -> None:
    assert url_for_log(url) == shown


def test_the_log_filter_redacts_a_key_query_parameter() -> None:
    record = logging.LogRecord(
        "x",
        logging.DEBUG,
        "f",
        1,
        "HTTP GET %s failed",
        (f"https://h/p?key={TOKEN}&sig={TOKEN}x",),
        None,
    )
    RedactingFilter().filter(record)
    assert TOKEN not in record.getMessage(), record.getMessage()
