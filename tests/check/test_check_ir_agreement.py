"""The checker and lowering agree: same option tables, same handler resolution, same implied
transitions, one owner per diagnostic code."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxflow.check import check_text
from voxflow.check.adapt import build_model
from voxflow.check.model import INPUT_OPS, MStep
from voxflow.check.walk import bodies, reached_steps, resolve_step, state_context
from voxflow.compiler import compile_file, compile_flow
from voxflow.ir import Flow
from voxflow.ir import models as ir
from voxflow.source import Source
from voxflow.sourcefile import read_source
from voxflow.syntax.parser import load_program

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "flows").glob("*.flow"))


def codes(text: str, name: str = "t.flow") -> list[tuple[str, int]]:
    return [(d.code, d.span.line) for d in compile_flow(text, name).diagnostics]


def _ir_input_steps(flow: Flow) -> dict[tuple[str, int, int], ir.Step]:
    out: dict[tuple[str, int, int], ir.Step] = {}
    todo: list[ir.Step] = []
    for states in [flow.states, *(sf.states for sf in flow.subflows.values())]:
        for st in states.values():
            todo.extend(st.steps)
    while todo:
        s = todo.pop()
        on = getattr(s, "on", None)
        if on is not None:
            out[(s.span.file, s.span.line, s.span.col)] = s
            for hs in on.values():
                for h in hs:
                    todo.extend(h.steps)
        if isinstance(s, ir.IfStep):
            todo.extend(x for b in s.branches for x in b.steps)
            todo.extend(s.else_steps)
        elif isinstance(s, ir.SwitchStep):
            todo.extend(x for c in s.cases for x in c.steps)
            todo.extend(s.default_steps)
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_checker_resolves_every_outcome_like_lowering(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    rel = str(path.relative_to(ROOT))
    result = compile_file(rel)
    assert result.flow is not None, result.diagnostics
    steps = _ir_input_steps(result.flow)
    src = read_source(rel)
    assert isinstance(src, Source)
    program, _ = load_program(src)
    assert program is not None
    model = build_model(program)
    compared = 0
    for sub in bodies(model):
        for state in sub.states:
            ctx = state_context(model, sub, state)
            for step, _owner in reached_steps(state, ctx):
                if step.op not in INPUT_OPS:
                    continue
                irstep = steps[(step.file, step.span.line, step.span.col)]
                on: dict[str, tuple[ir.Handler, ...]] = getattr(irstep, "on")  # noqa: B009
                resolved = resolve_step(step, ctx)
                mine = {o for o in resolved if not o.startswith("command:")}
                assert len(mine) == len(on), (step.span, sorted(mine), sorted(on))
                for outcome, r in resolved.items():
                    if outcome.startswith("command:"):
                        continue
                    key = _ir_key(step, outcome, on)
                    got = sorted((h.span.line, h.span.col) for h in r.handlers)
                    want = sorted(
                        (h.span.line, h.span.col)
                        for h in on[key]
                        if not (h.origin == "default" and h.span.line == step.span.line)
                    )
                    assert got == want, (step.span, outcome)
                compared += 1
    assert compared > 0


def _ir_key(step: MStep, outcome: str, on: dict[str, tuple[ir.Handler, ...]]) -> str:
    """The checker numbers choices (choice:1); the IR names them by value."""
    if not outcome.startswith("choice:"):
        return outcome
    index = int(outcome.split(":", 1)[1]) - 1
    return [k for k in on if k.startswith("choice:")][index]


def test_header_accepts_every_option_lowering_knows() -> None:
    text = (
        "flow f:\n    bargein_min_words 2\n    bargein_min_ms 300ms\n    attempts 2\n\n"
        "state a:\n    hangup\n"
    )
    assert codes(text) == []
    assert codes(text.replace("attempts 2", "atempts 2")) == [("VF107", 4)]


def test_store_options_come_from_lowering_tables() -> None:
    text = (
        "flow f:\n    timeout 5s\n\nstate a:\n"
        '    http get "https://x.test" into body status code:\n'
        "        on error, timeout -> b\n"
        '    say "{{ body }} {{ code }}"\n    goto b\n\nstate b:\n    hangup\n'
    )
    assert codes(text) == []


def test_option_values_reported_once_by_lowering() -> None:
    text = (
        'flow f:\n    timeout 0s\n\nstate a:\n    gather "x" max_digits 0 retries 0:\n'
        "        on default -> b\n    goto b\n\nstate b:\n    hangup\n"
    )
    diags = compile_flow(text, "t.flow").diagnostics
    assert sorted((d.code, d.span.line) for d in diags) == [
        ("VF205", 7),
        ("VF401", 2),
        ("VF402", 5),
        ("VF405", 5),
    ]
    assert not {d.code for d in check_text(Source("t.flow", text))} & {"VF401", "VF402"}


def test_checker_and_lowering_errors_in_one_run() -> None:
    text = 'flow f:\n    tiemout 3s\n\nstate a:\n    say "hi"\n    goto nowhere\n'
    assert codes(text) == [("VF107", 2), ("VF101", 6)]


def test_noinput_handler_body_implies_retry() -> None:
    text = (
        "flow f:\n    timeout 5s\n\nstate a:\n"
        '    gather "pin" into pin:\n'
        '        on noinput, nomatch:\n            say "again"\n'
        "        on exhausted -> b\n"
        '    say "{{ pin }}"\n    goto b\n\nstate b:\n    hangup\n'
    )
    assert codes(text) == []
    # without the exhausted handler the implied retries can run out
    broken = text.replace("        on exhausted -> b\n", "")
    assert ("VF203", 5) in codes(broken)


def test_busy_handler_body_implies_continue() -> None:
    text = (
        "flow f:\n    timeout 5s\n\nstate a:\n"
        '    dial "PJSIP/x":\n        on busy, noanswer, failed:\n            say "sorry"\n'
        '    say "after"\n'
    )
    # busy continues after the dial, and the state then falls off its end
    assert codes(text) == [("VF202", 8)]
    assert codes(text + "    hangup\n") == []


def test_error_handler_does_not_count_for_required_outcomes() -> None:
    text = (
        "flow f:\n    timeout 5s\n\non error -> b\n\nstate a:\n"
        '    dial "PJSIP/x":\n        on busy -> b\n    goto b\n\nstate b:\n    hangup\n'
    )
    assert [c for c in codes(text) if c[0] == "VF203"] == [("VF203", 7)]


def test_scope_outcome_handler_wins_over_step_default() -> None:
    text = (
        "flow f:\n    timeout 5s\n\nscope s:\n    on noinput -> b\n\n    state a:\n"
        '        gather "x":\n            on default -> c\n        goto b\n\n'
        "state b:\n    hangup\n\nstate c:\n    hangup\n"
    )
    assert ("VF205", 10) in codes(text)  # every outcome leaves: the goto after never runs


def test_subflow_parameter_is_bound_by_the_caller() -> None:
    text = (
        "flow f:\n    timeout 5s\n\nstate a:\n"
        '    call greet(who = "x")\n    hangup\n\n'
        'subflow greet(who: string):\n    state s:\n        say "hi {{ who }}"\n        return\n'
    )
    assert codes(text) == []
    assert codes(text.replace('greet(who = "x")', "greet()")) == [("VF106", 5)]


def test_library_file_subflows_are_not_unused() -> None:
    lib = 'subflow helper():\n    state s:\n        say "x"\n        return\n'
    assert codes(lib, "lib.flow") == []
    flow = "flow f:\n    timeout 5s\n\nstate a:\n    hangup\n\n" + lib
    assert codes(flow) == [("VF306", 7)]


def test_handlers_on_steps_without_outcomes() -> None:
    text = 'flow f:\n    timeout 5s\n\nstate a:\n    say "x":\n        on busy -> a\n    hangup\n'
    assert ("VF109", 6) in codes(text)
