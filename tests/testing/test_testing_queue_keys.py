"""Keys pressed while the caller waits in a queue are not type-ahead for the flow's next menu.

On Asterisk the caller is in the dialplan's ``Queue()`` then (out of Stasis): ``Queue()`` reads
those keys itself. Kept as type-ahead they chose an option of the menu after the queue, minutes
later, before the caller had heard it.
"""

from __future__ import annotations

from pathlib import Path

from voxflow.testing.runner import run_paths

FLOW = """flow t:
    timeout 5s

state waiting:
    answer
    queue "sales" timeout 1m:
        on answered:
            hangup
        on timeout, failed -> announce

state announce:
    menu "Our agents are still busy. Press 1 to leave a number for a callback.":
        1 -> callback
        on noinput, nomatch -> retry
        on exhausted:
            hangup

state callback:
    say "Enter your number."
    hangup
"""

SCENARIO = """flow: t.flow
scenarios:
  - name: a key in the queue
    mocks:
      queue: [{status: TIMEOUT, after: 60s}]
    steps:
      - {press: 1, at: 10s}
      - {hangup: , at: 64s}
    expect:
      said: ["still busy"]
      not_visited: [callback]
      ended: caller_hangup
"""


def test_a_key_pressed_in_the_queue_does_not_answer_the_next_menu(tmp_path: Path) -> None:
    (tmp_path / "t.flow").write_text(FLOW)
    (tmp_path / "t.test.yaml").write_text(SCENARIO)
    run = run_paths([tmp_path])
    assert not run.errors
    assert [o.failures for o in run.outcomes] == [[]]
    res = run.outcomes[0].result
    assert res is not None
    assert any("keys 1 ignored (pressed in the queue)" in line.text for line in res.trace)


EXIT_FLOW = """flow t:
    timeout 5s

var q: map = {}

state waiting:
    answer
    queue "support" timeout 2m into q:
        1 -> message
        on answered -> bye
        on timeout, failed -> bye

state message:
    say "Leave a message."
    hangup "message"

state bye:
    hangup "bye"
"""

EXIT_SCENARIOS = """flow: t.flow
scenarios:
  - name: an exit key leaves the queue at once
    mocks:
      queue: [{status: TIMEOUT, position: 3}]
    steps:
      - {press: 1, at: 30s}
    expect:
      states: [waiting, message]
      variables: {q: {status: EXITWITHKEY, position: 3, wait: null, key: "1"}}
      ended: {reason: message, before: 32s}
  - name: another digit puts the caller back for the time left
    steps:
      - {press: 7, at: 30s}
    expect:
      not_visited: [message]
      variables: {q: {status: TIMEOUT, position: 1, wait: 90, key: null}}
      ended: {reason: bye, after: 119s, before: 121s}
  - name: an agent answers; QUEUEWAIT from the mock
    mocks:
      queue: [{status: CONTINUE, after: 3m, wait: 40s, position: 2}]
    expect:
      variables: {q: {status: CONTINUE, position: 2, wait: 40, key: null}}
      ended: {reason: bye}
  - name: a queue that never took the caller sets no position
    mocks:
      queue: [{status: FULL, after: 0s}]
    expect:
      variables: {q: {status: FULL, position: null, wait: null, key: null}}
"""


def test_exit_keys_position_and_wait_in_voxflow_test(tmp_path: Path) -> None:
    (tmp_path / "t.flow").write_text(EXIT_FLOW)
    (tmp_path / "t.test.yaml").write_text(EXIT_SCENARIOS)
    run = run_paths([tmp_path])
    assert not run.errors
    assert [o.failures for o in run.outcomes] == [[], [], [], []]


KEEP_SCENARIO = """flow: t.flow
scenarios:
  - name: another digit keeps the caller's place
    mocks:
      queue: [{status: TIMEOUT, position: 3, times: 1}]   # queued again: no mock
    steps:
      - {press: 7, at: 30s}
      - {press: 1, at: 40s}
    expect:
      variables: {q: {status: EXITWITHKEY, position: 3, wait: null, key: "1"}}
      ended: {reason: message}
"""


def test_another_digit_keeps_the_caller_s_place_in_voxflow_test(tmp_path: Path) -> None:
    """Queued again after a digit the step does not list, the caller is put back at its
    QUEUEPOSITION (Queue()'s position argument), as on Asterisk: not at the back (1 before)."""
    (tmp_path / "t.flow").write_text(EXIT_FLOW)
    (tmp_path / "t.test.yaml").write_text(KEEP_SCENARIO)
    run = run_paths([tmp_path])
    assert not run.errors
    assert [o.failures for o in run.outcomes] == [[]]


NOT_JOINED = """flow: t.flow
scenarios:
  - name: a queue that never took the caller returns at once, whatever the mock's after
    mocks:
      queue: [{status: FULL, after: 30s}]
    expect:
      not_visited: [message]
      variables: {q: {status: FULL, position: null, wait: null, key: null}}
      ended: {reason: bye, before: 2s}
"""


def test_full_joinempty_and_unknown_return_at_once(tmp_path: Path) -> None:
    """app_queue.c queue_exec: when join_queue fails (no such queue, JOINEMPTY, FULL) Queue()
    sets QUEUESTATUS and returns 0 at once; the caller never waited, so no key can leave it
    (iamtalhaasghar/asterisk@21a0427 apps/app_queue.c). voxflow test waited the mock's
    ``after`` (and a key pressed meanwhile took the step's exit)."""
    (tmp_path / "t.flow").write_text(EXIT_FLOW)
    (tmp_path / "t.test.yaml").write_text(NOT_JOINED)
    run = run_paths([tmp_path])
    assert not run.errors
    assert [o.failures for o in run.outcomes] == [[]]


TALKING = """flow: t.flow
scenarios:
  - name: a key pressed while the agent has the call does not leave the queue
    mocks:
      queue: [{status: CONTINUE, after: 3m, wait: 40s}]
    steps:
      - {press: 1, at: 60s}
    expect:
      not_visited: [message]
      variables: {q: {status: CONTINUE, position: 1, wait: 40, key: null}}
      ended: {reason: bye}
"""


def test_keys_leave_only_until_the_agent_answers(tmp_path: Path) -> None:
    """app_queue.c reads exit keys in wait_our_turn and wait_for_answer (members ringing), not
    once the caller is bridged to the member that answered (iamtalhaasghar/asterisk@21a0427):
    a CONTINUE mock's agent has the call from ``wait`` on."""
    (tmp_path / "t.flow").write_text(EXIT_FLOW)
    (tmp_path / "t.test.yaml").write_text(TALKING)
    run = run_paths([tmp_path])
    assert not run.errors
    assert [o.failures for o in run.outcomes] == [[]]
