"""``voxflow test`` sets QUEUE_PRIO as voxflow does on Asterisk: a queue step's ``priority``,
and for a later step without one the value before voxflow first set it (unset: 0), not the
earlier step's."""

from __future__ import annotations

from pathlib import Path

from voxflow.testing.runner import run_paths

FLOW = """flow t:
    timeout 5s

state start:
    answer
    queue "sales" timeout 1s priority 10:
        on answered, failed:
            hangup
        on timeout -> support

state support:
    queue "support" timeout 1s:
        on answered, timeout, failed:
            hangup
"""

SCENARIO = """flow: t.flow
scenarios:
  - name: two queues
    expect:
      states: [start, support]
"""


def test_a_queue_step_without_priority_sets_back_the_queue_prio(tmp_path: Path) -> None:
    (tmp_path / "t.flow").write_text(FLOW)
    (tmp_path / "t.test.yaml").write_text(SCENARIO)
    run = run_paths([tmp_path])
    assert not run.errors
    assert [o.failures for o in run.outcomes] == [[]]
    res = run.outcomes[0].result
    assert res is not None
    prio = [line.text for line in res.trace if "QUEUE_PRIO" in line.text]
    assert prio == ["queue sales: QUEUE_PRIO 10", "queue support: QUEUE_PRIO 0 (unset)"]
