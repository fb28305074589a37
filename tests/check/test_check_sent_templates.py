"""Strings in expressions: an http body's (alone, or items of literal lists and maps) and a
subflow argument's are templates, checked as templates (VF305, VF307); any other string with
``{{ }}``/``{% %}`` is used as written, and lint says so with the way to write it (VF308)."""

from __future__ import annotations

from voxflow.compiler import compile_flow

HEAD = 'flow f:\n    answers "1"\n\nvar g = ""\n\nstate a:\n    answer\n'
HTTP = (
    '    http post "https://x.test/a":\n        body {body}\n        on ok, error, timeout -> b\n'
)
END = '\nstate b:\n    say "{{ g }}"\n    hangup\n'


def _diags(steps: str) -> list[tuple[str, int, int, str, str | None]]:
    found = compile_flow(HEAD + steps + END, "f.flow").diagnostics
    return [(d.code, d.span.line, d.span.col, d.message, d.hint) for d in found]


def test_body_templates_are_checked_as_templates() -> None:
    assert _diags(HTTP.format(body='{"c": "{{ call.caller }}", "l": ["{{ g }}"]}')) == []
    [(code, line, col, message, _)] = _diags(HTTP.format(body='"{{ nme }}"'))
    assert (code, line, col) == ("VF305", 9, 14) and "'nme'" in message
    [(code, line, _, message, _)] = _diags(HTTP.format(body='{"c": "{{ oops"}'))
    assert (code, line, message.startswith("template error")) == ("VF307", 9, True)


def test_other_strings_with_braces_get_a_did_you_mean() -> None:
    assert _diags('    set g = "{{ call.caller }}"\n    goto b\n') == [
        ("VF308", 8, 13,
         '"{{ call.caller }}" is used as written, not rendered: in an expression only an '
         "http step's or agent action's body or a subflow argument (or their list and map items) "
         "is a template",
         "did you mean call.caller? write the expression without quotes and braces"),
    ]  # fmt: skip
    [(code, _, col, _, hint)] = _diags(
        HTTP.format(body='"a" + "{{ g }}"')  # not a literal alone: evaluated, never rendered
    )
    assert (code, col, hint) == (
        "VF308",
        20,
        "did you mean g? " + "write the expression without quotes and braces",
    )
    [(code, _, _, _, hint)] = _diags('    set g = "Hi {{ g }}"\n    goto b\n')
    assert (code, hint) == ("VF308", 'join text and values with +: "Dear " + str(name)')


def test_subflow_arguments_are_templates_not_warnings() -> None:
    sub = '\nsubflow s(q: string):\n    state x:\n        say "{{ q }}"\n        return\n'
    source = HEAD + '    call s(q = "Pay {{ g }}?")\n    goto b\n' + END + sub
    assert compile_flow(source, "f.flow").diagnostics == []
    bad = source.replace("Pay {{ g }}", "Pay {{ gg }}")
    assert [d.code for d in compile_flow(bad, "f.flow").diagnostics] == ["VF305"]


AGENT = (
    '    agent "Help.":\n'
    '        action note(text: string) "Leave a note":\n'
    '            http post "https://x.test/notes"\n'
    "            body {body}\n"
    "        on max_turns, timeout, noinput, exhausted, error -> b\n"
)


def test_agent_action_body_templates_are_checked_as_templates() -> None:
    """An action's body is sent like an http step's: its strings with braces are templates over
    the action's arguments and the flow's names (no VF308), checked as such."""
    ok = '{"t": "{{ text }} from {{ call.caller }}", "l": ["{{ g }}"], "plain": "{{ g }}"}'
    assert _diags(AGENT.format(body=ok)) == []
    [(code, line, col, message, _)] = _diags(AGENT.format(body='{"t": "{{ txet }}"}'))
    assert (code, line, col) == ("VF305", 11, 24) and "'txet'" in message
    [(code, line, _, message, _)] = _diags(AGENT.format(body='"{{ oops"'))
    assert (code, line, message.startswith("template error")) == ("VF307", 11, True)
    [(code, *_)] = _diags(AGENT.format(body='{"t": "a" + "{{ text }}"}'))
    assert code == "VF308"  # not a literal alone: evaluated, never rendered
