"""Templates have an iteration budget: loops (nested, recursive) and calls (a macro that calls
itself twice) are counted per rendering, so a template that builds nothing still cannot burn the
worker's CPU; going over is a template error the flow's ``on error`` handles."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from voxflow.errors import TemplateError
from voxflow.runtime.templating import TemplateRenderer
from voxflow.spec.template_limits import MAX_STEPS
from voxflow.testing.runner import run_paths

NESTED = "{% for i in range(n) %}{% for j in range(n) %}{% endfor %}{% endfor %}"
BURNERS = [
    NESTED,
    "{% for i in items %}{% for j in items %}{% for k in items %}{% endfor %}{% endfor %}"
    "{% endfor %}",
    "{% for c in text %}{% for i in range(n) %}{% endfor %}{% endfor %}",
    # a recursive loop re-enters itself through loop(...): each level is counted too
    "{% for x in items recursive %}{% if loop.depth < 6 %}{{ loop(items) }}{% endif %}{% endfor %}",
    # no loop at all: 2 ** 40 macro calls
    "{% macro f(k) %}{% if k %}{{ f(k - 1) }}{{ f(k - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
]
VALUES = {"n": 10_000, "items": list(range(1000)), "text": "x" * 50_000}


@pytest.mark.parametrize("source", BURNERS)
def test_a_template_that_loops_too_long_fails_fast(source: str) -> None:
    t0 = time.thread_time()  # CPU time of this thread, whatever else the machine runs
    with pytest.raises(TemplateError, match="too expensive"):
        TemplateRenderer().render(source, VALUES)
    assert time.thread_time() - t0 < 1.0


def test_lipsum_which_builds_text_in_one_call_is_not_offered() -> None:
    with pytest.raises(TemplateError, match="'lipsum' is undefined"):
        TemplateRenderer().render("{{ lipsum(100000) }}", {})


def test_the_budget_is_per_rendering_and_ordinary_loops_render() -> None:
    r = TemplateRenderer()
    src = "{% for i in range(n) %}{% for j in range(n) %}{% endfor %}{% endfor %}{{ n }}"
    n = int((MAX_STEPS // 2) ** 0.5)  # about half the budget each time
    for _ in range(3):
        assert r.render(src, {"n": n}) == str(n)
    out = r.render(
        "{% for x in items %}{{ x }}{% if not loop.last %}, {% endif %}{% endfor %}"
        "{% for x in items recursive %}{% if x is mapping %}{{ loop(x.values()) }}"
        "{% else %}{{ x }}{% endif %}{% endfor %}",
        {"items": [1, 2, 3]},
    )
    assert out == "1, 2, 3123"


FLOW = """\
flow burn:
    answers "200"

on error -> sorry

state start:
    answer
    set n = 10000
    say "{% for i in range(n) %}{% for j in range(n) %}{% endfor %}{% endfor %}Hello."
    hangup

state sorry:
    say "Sorry, something went wrong."
    hangup
"""

SCENARIO = """\
flow: burn.flow
scenarios:
  - name: the expensive prompt ends the step through on error
    expect:
      said: ["Sorry, something went wrong."]
      states: [start, sorry]
"""


def test_the_flow_goes_to_its_error_handler_and_the_call_ends(tmp_path: Path) -> None:
    (tmp_path / "burn.flow").write_text(FLOW)
    (tmp_path / "burn.test.yaml").write_text(SCENARIO)
    t0 = time.thread_time()
    run = run_paths([tmp_path])
    assert not run.errors, run.errors
    [outcome] = run.outcomes
    assert not outcome.failures, outcome.failures
    assert time.thread_time() - t0 < 5.0


def test_the_checker_flags_constant_nested_loops_past_the_budget() -> None:
    from voxflow.check.templates import analyze_template

    loops = "{% for i in range(1000) %}\n{% for c in 'abcdefghij' %}{% for j in range(20) %}"
    info = analyze_template(loops + "{% endfor %}{% endfor %}{% endfor %}")
    assert info.error == (
        "template too expensive: a template may make at most 100000 loop iterations and calls, "
        "these loops make 200000"
    )
    assert info.error_line == 2
    fine = "{% for i in range(100) %}{% for j in [1, 2, 3] %}{{ i }}{% endfor %}{% endfor %}"
    assert analyze_template(fine).error is None
    # sizes only the values give are the runtime's business (VF307 cannot see them)
    assert analyze_template(NESTED).error is None


def test_the_cpu_backstop_reads_the_clock_every_256_steps() -> None:
    """Steps that are each expensive (a filter over a long list in a loop) stop on CPU time;
    the clock (a system call) is read every 256 steps only, never for a short loop."""
    from voxflow.spec.template_limits import StepBudget, TemplateLimitError

    reads: list[float] = []

    def clock() -> float:
        reads.append(len(reads) * 0.6)  # 0.6 s of CPU between reads
        return reads[-1]

    budget = StepBudget(cpu_seconds=1.0, clock=clock)
    budget.spend(255)
    assert reads == []
    budget.spend(1)  # the first read: the deadline is 1 s from here
    budget.spend(256)  # 0.6 s later: under
    assert len(reads) == 2
    with pytest.raises(TemplateLimitError, match="at most 1 s of CPU time"):
        budget.spend(256)  # 1.2 s later
