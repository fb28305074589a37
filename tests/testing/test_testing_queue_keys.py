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
