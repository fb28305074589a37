"""Checker fixes: template functions, computed option values, empty prompts, time zones and
opening hours checked at lint time."""

from __future__ import annotations

from voxflow.compiler import compile_flow
from voxflow.runtime.templating import render

HEAD = "flow t:\n    timeout 5s\n"


def _codes(body: str, head: str = HEAD) -> list[tuple[str, int, str]]:
    result = compile_flow(head + body, "t.flow")
    return [(d.code, d.span.line, d.message) for d in result.diagnostics]


PERIODS = """
var periods: list = ["morning", "afternoon"]

state s:
    gather "Press 1 or 2" into sel:
        capture digits
        max_digits 1
        on noinput, nomatch -> retry
        on exhausted -> bye
    say "You chose the {{ periods[int(sel) - 1] }}, {{ upper(periods[0]) }}."
    goto bye

state bye:
    hangup
"""


def test_templates_call_the_expression_functions() -> None:
    assert _codes(PERIODS) == []
    text = "{{ periods[int(sel) - 1] }} {{ join(split('a b', ' '), '-') }} {{ default(x, 'no') }}"
    assert render(text, {"periods": ["am", "pm"], "sel": "2"}) == "pm a-b no"


def test_a_clock_function_in_a_template_says_what_to_do() -> None:
    got = _codes(PERIODS.replace("{{ upper(periods[0]) }}", "{{ hour() }}"))
    assert [c for c, _, _ in got] == ["VF307"]
    assert "hour() is not available in templates" in got[0][2]
    assert "set t = hour()" in got[0][2]


def test_a_variable_named_like_a_function_is_still_read() -> None:
    body = PERIODS.replace('var periods: list = ["morning", "afternoon"]', 'var max: string = "x"')
    body = body.replace("{{ upper(periods[0]) }}", "{{ max }}").replace(
        "{{ periods[int(sel) - 1] }}", "{{ sel }}"
    )
    assert _codes(body) == []  # no VF302 for 'max', no VF305 for 'int'


def test_max_digits_from_an_expression_reads_its_variable() -> None:
    body = PERIODS.replace("max_digits 1", "max_digits len(periods)")
    codes = [c for c, _, _ in _codes(body)]
    assert "VF302" not in codes


def test_an_empty_menu_prompt_is_an_error_and_no_prompt_is_fine() -> None:
    body = 'state s:\n    menu "":\n        1 -> s\n        on default -> s\n'
    got = _codes(body)
    assert ("VF408", 4, "'menu' has an empty text") in got
    assert not [d for d in _codes(body.replace('menu "":', "menu:")) if d[0] == "VF408"]
    assert ("VF408", 4, "'say' has an empty text") in _codes('state s:\n    say " "\n    hangup\n')


def test_a_misspelt_time_zone_is_reported_with_a_suggestion() -> None:
    text = HEAD + '    timezone "America/Chicgo"\n\nstate s:\n    hangup\n'
    result = compile_flow(text, "t.flow")
    [d] = result.diagnostics
    assert (d.code, d.span.line, d.message) == ("VF408", 3, "unknown time zone 'America/Chicgo'")
    assert d.hint == "did you mean 'America/Chicago'?"
    ok = compile_flow(HEAD + '    timezone "America/Chicago"\n\nstate s:\n    hangup\n', "t.flow")
    assert ok.diagnostics == []


def test_literal_opening_hours_are_checked() -> None:
    body = 'state s:\n    if is_open("mon-fri 9am-5pm"):\n        hangup\n    hangup\n'
    [(code, line, message)] = _codes(body)
    assert (code, line) == ("VF408", 4)
    assert "bad hours 'mon-fri 9am-5pm'" in message
    for bad in ("mon-fry 09:00-17:00", "mon 25:00-26:00"):
        assert [c for c, _, _ in _codes(body.replace("mon-fri 9am-5pm", bad))] == ["VF408"]
    good = body.replace("mon-fri 9am-5pm", "mon-fri 09:00-17:00, sat 10:00-12:00")
    assert _codes(good) == []
