"""Lowering semantics: handler resolution through scopes, counts, implied transitions, options."""

from __future__ import annotations

from pathlib import Path

from voxflow.compiler import compile_file, compile_flow
from voxflow.ir import ContinueStep, GatherStep, GotoStep, HangupStep, RetryStep, SayStep

FLOW = """\
flow t:
    timeout 4s
    retries 4
    bargein dtmf

on noinput 3 -> bye
on error:
    say "oops"

scope menus:
    on noinput:
        say "I didn't hear you."
    on nomatch 2 -> bye
    anytime "operator", 0 -> bye

    state main:
        gather "Enter your PIN" into pin:
            capture digits
            max_digits 4
            on noinput 2:
                say "Second silence"
            on nomatch -> retry
            on exhausted -> bye
        log "PIN entered"
        goto bye

state bye:
    say "Bye"
    hangup
"""


def _gather() -> GatherStep:
    result = compile_flow(FLOW, "t.flow")
    assert result.flow is not None, [d.message for d in result.diagnostics]
    step = result.flow.states["main"].steps[0]
    assert isinstance(step, GatherStep)
    return step


def test_counted_handlers_are_merged_across_scopes_highest_count_first() -> None:
    step = _gather()
    noinput = step.on["noinput"]
    assert [(h.count, h.origin) for h in noinput] == [(3, "flow"), (2, "step"), (1, "scope:menus")]
    # a handler body that does not transition gets the implied one: retry for noinput
    assert isinstance(noinput[2].steps[0], SayStep)
    assert isinstance(noinput[2].steps[-1], RetryStep)
    assert isinstance(noinput[0].steps[-1], GotoStep)
    nomatch = step.on["nomatch"]
    assert [(h.count, h.origin) for h in nomatch] == [(2, "scope:menus"), (1, "step")]


def test_defaults_and_config_are_applied() -> None:
    step = _gather()
    assert step.timeout_ms == 4000 and step.max_attempts == 4
    assert step.bargein.mode == "dtmf" and step.input == "dtmf"
    assert step.capture is not None and step.capture.max_length == 4
    (match,) = step.on["match"]
    assert match.origin == "default" and isinstance(match.steps[0], ContinueStep)
    (error,) = step.on["error"]
    assert error.origin == "flow" and isinstance(error.steps[-1], HangupStep)
    assert step.on["exhausted"][0].origin == "step"


def test_state_knows_scopes_commands_and_retry_bound() -> None:
    result = compile_flow(FLOW, "t.flow")
    assert result.flow is not None
    main = result.flow.states["main"]
    assert main.scopes == ("menus",)
    assert main.max_attempts == 4
    (cmd,) = main.commands
    assert cmd.phrases == ("operator",) and cmd.keys == ("0",)
    assert result.flow.states["bye"].commands == ()
    assert result.flow.initial == "main"


def test_unknown_option_gets_did_you_mean() -> None:
    text = 'state a:\n    say "hi" voise "x"\n    hangup\n'
    result = compile_flow(text, "o.flow")
    assert result.flow is None
    (d,) = [d for d in result.diagnostics if d.code == "VF107"]
    assert "voise" in d.message and d.hint == "did you mean 'voice'?"
    assert (d.span.line, d.span.col, d.span.end_col) == (2, 14, 19)


def test_bad_input_never_raises() -> None:
    for data in (b"\xff\xfe\x00garbage", b"", b"state", b"state a:\n    goto"):
        result = compile_flow(data, "x.flow")
        assert all(d.file == "x.flow" for d in result.diagnostics)


def test_include_positions_and_cycles(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "main.flow").write_text(
        'include "lib/a.flow"\nstate start:\n    goto other\n', encoding="utf-8"
    )
    (tmp_path / "lib" / "a.flow").write_text(
        '# library\n\nstate other:\n    say "x" bogus 1\n    hangup\n', encoding="utf-8"
    )
    result = compile_file(tmp_path / "main.flow")
    (d,) = [d for d in result.diagnostics if d.code == "VF107"]
    assert d.file.endswith("a.flow") and (d.span.line, d.span.col) == (4, 13)

    (tmp_path / "lib" / "a.flow").write_text('include "../main.flow"\n', encoding="utf-8")
    result = compile_file(tmp_path / "main.flow")
    cycles = [d for d in result.diagnostics if d.code == "VF003"]
    assert len(cycles) == 1 and cycles[0].file.endswith("a.flow")
    assert "main.flow" in cycles[0].message and cycles[0].span.line == 1

    (tmp_path / "main.flow").write_text('include "nope.flow"\nstate s:\n    hangup\n')
    result = compile_file(tmp_path / "main.flow")
    assert [d.code for d in result.diagnostics if d.is_error] == ["VF002"]
