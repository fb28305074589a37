"""Diagnostics met while porting PBX flows (business hours, queues, webhooks, agents)."""

from __future__ import annotations

from pathlib import Path

from voxflow.compiler import compile_flow
from voxflow.testing.runner import run_paths

VOICEMAIL = """include "voxflow:voicemail.flow"

flow t:
    timeout 5s

state closed:
    answer
    call voicemail(box = "frontdesk", review = false) returns (message, saved):
        on returned:
            say "{{ message }}"
            hangup
        on error:
            hangup
"""


def _diags(text: str, code: str) -> list[tuple[int, int, str, str | None]]:
    result = compile_flow(text, "t.flow")
    return [
        (d.span.line, d.span.col, d.message, d.hint) for d in result.diagnostics if d.code == code
    ]


def test_an_unused_call_return_points_at_it_and_says_to_leave_it_out() -> None:
    got = _diags(VOICEMAIL, "VF302")
    assert len(got) == 1
    line, col, message, hint = got[0]
    assert (line, message) == (8, "variable 'saved' is never used")
    assert col == VOICEMAIL.splitlines()[7].index("saved") + 1
    assert hint is not None and "leave it out of 'returns (...)'" in hint
    assert "leading '_'" not in hint  # 'returns (_saved)' is VF106: no such return value


HTTP_STATUS = """flow t:
    timeout 5s

var account: string = "1"
var code: number
var lookup: map

state lookup_state:
    http post "https://accounts.example.com/v1/verify" into lookup status code:
        body {"account": account}
        on ok:
            say "{{ lookup.balance }}"
            hangup
        on error, timeout:
            if code == 401:
                say "Wrong PIN."
            hangup
"""


def test_an_http_status_is_set_on_error_and_timeout_too() -> None:
    # the run time assigns 'status' (null without a response) and 'into' on every outcome:
    # 'on error' telling a 401 from a 503 is the natural way to write a lookup
    assert _diags(HTTP_STATUS, "VF301") == []


def test_a_failing_http_step_still_sets_its_status_to_null(tmp_path: Path) -> None:
    # an http step whose request cannot even start (here: an injected failure) ends 'error'
    # with 'status' null, as a connection failure does, so its handler can read it
    flow = HTTP_STATUS.replace('say "Wrong PIN."', 'say "Wrong PIN."\n            say "checked"')
    (tmp_path / "t.flow").write_text(flow)
    (tmp_path / "t.test.yaml").write_text(
        "flow: t.flow\nscenarios:\n  - name: fails\n    mocks:\n      fail: [{op: http}]\n"
        "    expect:\n      said: [checked]\n      ended: {outcome: completed, reason: normal}\n"
    )
    run = run_paths([tmp_path])
    assert [o.failures for o in run.outcomes] == [[]]


RETRY_LOOP = """flow t:
    timeout 5s

var attempts: number = 0

state verify:
    set attempts = attempts + 1
    http post "https://accounts.example.com/v1/verify":
        on ok:
            hangup
        on error, timeout -> try_again

state try_again:
    if attempts < 3:
        pause 1s
        goto verify
    hangup
"""


def test_a_loop_counted_in_one_state_and_tested_in_another_is_bounded() -> None:
    assert _diags(RETRY_LOOP, "VF204") == []
    # not counted: the test reads a variable nothing on the loop sets
    uncounted = RETRY_LOOP.replace("    set attempts = attempts + 1\n", "")
    assert [m for _, _, m, _ in _diags(uncounted, "VF204")] == [
        "'error' of http in state 'verify' loops back through 'try_again' with no bound: "
        "verify --error--> try_again --> verify",
    ]


DIGITS_MATCH = """flow t:
    timeout 5s

var choice: string

state start:
    gather "Enter 1 to 3." into choice:
        capture digits
        max_digits 1
        on noinput, nomatch -> retry
        on exhausted -> bye
    match choice:
        case 1 -> bye
        case "2", "3" -> bye
        default -> bye

state bye:
    hangup
"""


def test_a_number_case_never_matches_a_string_variable() -> None:
    # keys are text: 'case 1' never matched "1", and lint said nothing
    got = _diags(DIGITS_MATCH, "VF303")
    assert [(line, col) for line, col, _, _ in got] == [(13, 14)]
    assert "a string is never equal to a number" in got[0][2]
    assert got[0][3] is not None and '"1"' in got[0][3]
    assert _diags(DIGITS_MATCH.replace("case 1 ->", 'case "1" ->'), "VF303") == []


def test_comparing_a_string_variable_with_a_number_is_reported() -> None:
    test = "    if choice == 1:\n        goto bye\n    match choice:"
    text = DIGITS_MATCH.replace("    match choice:", test)
    got = _diags(text.replace("case 1 ->", 'case "1" ->'), "VF303")
    assert [(line, m) for line, _, m, _ in got] == [
        (12, "a string is never equal to a number ('==' is always false)")
    ]
    text = text.replace("choice == 1", "int(choice) == 1")
    assert _diags(text.replace("case 1 ->", 'case "1" ->'), "VF303") == []
