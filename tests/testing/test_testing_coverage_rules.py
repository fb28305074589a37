"""What coverage counts: only outcomes a step kind can produce, and nothing of a shipped
(``voxflow:``) subflow, whose transitions a user's scenarios cannot all reach."""

from __future__ import annotations

from pathlib import Path

from voxflow.compiler.frontdoor import compile_flow
from voxflow.testing import FlowCoverage, parse_scenario_text, run_scenario

SHARED = """\
flow shared:
    answers "300"

var r: map

scope menus:
    on error, timeout -> bye

    state start:
        answer
        STEP
        menu "Press 1.":
            1 -> done
            on noinput, nomatch -> retry
            on exhausted -> bye

state done:
    say "Done."
    hangup "ok"

state bye:
    hangup "bye"
"""

VOICEMAIL = """\
include "voxflow:voicemail.flow"

flow vm:
    answers "300"

var message: string
var saved: bool

state start:
    answer
    call voicemail(box = "300", review = false) returns (message, saved):
        on returned:
            log "{{ message }}"
            if saved:
                goto done
            goto bye

state done:
    hangup "saved"

state bye:
    hangup "nothing"
"""


def _cov(tmp_path: Path, name: str, text: str) -> FlowCoverage:
    path = tmp_path / name
    path.write_text(text)
    result = compile_flow(text, str(path))
    assert result.flow is not None, result.diagnostics
    return FlowCoverage(str(path), result.flow)


def test_a_shared_timeout_handler_counts_only_where_a_step_can_time_out(tmp_path: Path) -> None:
    menu_only = _cov(tmp_path, "shared.flow", SHARED.replace("STEP", 'log "x"'))
    assert menu_only.transitions()[1] == 7, menu_only.missing()
    assert not any("timeout" in m for m in menu_only.missing()), menu_only.missing()
    # an http step in the scope can time out: the same handler's timeout transition counts
    with_http = _cov(
        tmp_path, "shared.flow", SHARED.replace("STEP", 'http get "https://x.test/a" into r')
    )
    assert with_http.transitions()[1] == 8
    assert "transition scope:menus --timeout--> bye (line 7)" in with_http.missing()
    assert "branch start at http: timeout (line 11)" in with_http.missing()


def test_a_shipped_subflow_is_left_out_of_the_callers_coverage(tmp_path: Path) -> None:
    cov = _cov(tmp_path, "vm.flow", VOICEMAIL)
    assert cov.states() == (0, 3)
    assert cov.transitions() == (0, 4)  # returned -> done, returned -> bye, two hangups
    assert cov.branches() == (0, 1)  # the call's returned
    assert not any("voicemail." in m for m in cov.missing()), cov.missing()
    sf = parse_scenario_text(
        "flow: vm.flow\nscenarios:\n  - name: kept\n    steps:\n"
        '      - say: "a message for you"\n      - wait: 6s\n'
        "  - name: silent\n    steps: []\n"
    )
    for sc in sf.scenarios:
        cov.add(run_scenario(cov.flow, sc).hits)
    assert cov.transitions() == (4, 4), cov.missing()
    assert cov.transition_percent == 100.0


def test_a_handler_for_an_outcome_the_kind_cannot_produce_is_not_counted(tmp_path: Path) -> None:
    # the compiler resolves only a kind's outcomes; an IR carrying more (a menu with a timeout
    # handler) must not add a timeout branch or transition no call can take
    cov = _cov(tmp_path, "shared.flow", SHARED.replace("STEP", 'log "x"'))
    state = cov.flow.states["start"]
    menu = state.steps[2]
    on = {**menu.on, "timeout": menu.on["error"]}
    steps = (*state.steps[:2], menu.model_copy(update={"on": on}), *state.steps[3:])
    states = {**cov.flow.states, "start": state.model_copy(update={"steps": steps})}
    flow = cov.flow.model_copy(update={"states": states})
    bad = FlowCoverage("shared.flow", flow)
    assert bad.transitions() == cov.transitions() == (0, 7)
    assert bad.branches() == cov.branches()
    assert not any("timeout" in m for m in bad.missing()), bad.missing()
