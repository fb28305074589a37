"""The ``confidence`` option: a flow default and a per-step value on speech steps, range-checked
with file:line, lowered into the IR, round-tripped by ``voxflow fmt``; the simulator rejects a
scripted answer under it (a ``nomatch``)."""

from __future__ import annotations

from voxflow.compiler import compile_flow
from voxflow.diagnostics import format_diagnostic
from voxflow.fmt import format_source
from voxflow.ir import GatherStep
from voxflow.source import Source
from voxflow.testing.scenario import parse_scenario_text
from voxflow.testing.sim import run_scenario

FLOW = """\
flow t:
    timeout 5s
    confidence 0.4

state main:
    menu "Say sales or support.":
        confidence 0.7
        "sales" -> sales
        "support" -> ask
        on noinput, nomatch -> retry
        on exhausted -> bye

state ask:
    gather "Your name?" into _name:
        capture text
        on noinput, nomatch -> retry
        on exhausted -> bye
    goto bye

state sales:
    say "Sales."
    goto bye

state bye:
    hangup
"""


def _gathers(text: str) -> list[GatherStep]:
    result = compile_flow(text, "t.flow")
    assert result.flow is not None, [d.message for d in result.diagnostics]
    steps = (*result.flow.states["main"].steps, *result.flow.states["ask"].steps)
    return [s for s in steps if isinstance(s, GatherStep)]


def test_a_step_confidence_overrides_the_flow_default() -> None:
    menu, gather = _gathers(FLOW)
    assert menu.min_confidence == 0.7
    assert gather.min_confidence == 0.4  # the flow's default
    result = compile_flow(FLOW, "t.flow")
    assert result.flow is not None and result.flow.config.min_confidence == 0.4
    without = FLOW.replace("    confidence 0.4\n", "").replace("        confidence 0.7\n", "")
    assert [g.min_confidence for g in _gathers(without)] == [None, None]  # the STT's own


def test_confidence_out_of_range_is_an_error_with_its_line() -> None:
    for good, bad in (("confidence 0.7", "confidence 1.5"), ("confidence 0.4", "confidence 7")):
        text = FLOW.replace(good, bad)
        line = text.splitlines().index(next(x for x in text.splitlines() if bad in x)) + 1
        result = compile_flow(text, "t.flow")
        (d,) = [d for d in result.diagnostics if d.is_error]
        assert d.code == "VF408" and d.span.line == line
        assert "'confidence' must be between 0 and 1" in d.message
        assert format_diagnostic(d, Source("t.flow", text)).startswith(f"t.flow:{line}:")
    words = FLOW.replace("confidence 0.7", 'confidence "high"')
    (d,) = [d for d in compile_flow(words, "t.flow").diagnostics if d.is_error]
    assert d.code == "VF408" and "'confidence' takes a number" in d.message


def test_confidence_on_a_keys_only_step_is_an_error() -> None:
    keys = FLOW.replace('"sales" -> sales', "1 -> sales").replace('"support" -> ask', "2 -> ask")
    (d,) = [d for d in compile_flow(keys, "t.flow").diagnostics if d.is_error]
    assert d.code == "VF408" and d.span.line == 7 and "keys only" in d.message


def test_fmt_round_trips_confidence() -> None:
    messy = FLOW.replace("confidence 0.7", "confidence   0.70").replace(
        "    confidence 0.4", "    confidence 0.4   "
    )
    once = format_source(messy)
    assert "        confidence 0.70\n" in once and "    confidence 0.4\n" in once
    assert format_source(once) == once
    assert _gathers(once)[0].min_confidence == 0.7


SCENARIOS = """\
flow: t.flow
scenarios:
  - name: unsure
    steps:
      - {say: "sales", confidence: 0.6}
      - {say: "sales", confidence: 0.9}
    expect:
      states: [main, sales, bye]
"""


def test_the_simulator_rejects_an_answer_under_the_step_confidence() -> None:
    result = compile_flow(FLOW, "t.flow")
    assert result.flow is not None
    sf = parse_scenario_text(SCENARIOS, name="t.test.yaml")
    res = run_scenario(result.flow, sf.scenarios[0], sf.defaults)
    lines = [line.text for line in res.trace]
    assert "gather -> nomatch (#1)" in lines, lines
    assert res.states == ["main", "sales", "bye"], lines
    assert 'hears "sales" with confidence 0.6' in lines
