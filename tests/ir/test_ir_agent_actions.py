"""Agent actions in the language: parsing, lowering to ``AgentStep.actions``, the checker's
rules (VF110, VF305/VF301 with parameters in scope, VF401, VF408, VF409), formatting."""

from __future__ import annotations

import json

import pytest

from voxflow.compiler import compile_flow
from voxflow.fmt import format_source
from voxflow.ir import models as ir

HEAD = 'flow f:\n    answers "100"\n\nvar token: string = "t"\nvar picked: string = ""\n\n'
TAIL = (
    '        tool book(day: string as picked) "Book it" -> done\n'
    "        on max_turns, timeout, noinput, exhausted, error -> done\n"
    "\nstate done:\n"
    '    say "{{ picked }}"\n'
    "    hangup\n"
)


def _flow(actions: str) -> str:
    return HEAD + 'state start:\n    agent "You book.":\n' + actions + TAIL


GOOD = _flow(
    '        action check(day: string "weekday", hour: number) "Is a slot free?":\n'
    '            http get "https://cal.test/free?day={{ day }}&hour={{ hour }}" timeout 3s\n'
    '            headers {"Authorization": "Bearer {{ token }}", "X-Day": "{{ day }}"}\n'
    '        action note(text: string) "Write a note":\n'
    '            http post "https://crm.test/notes"\n'
    '            body {"text": text, "caller": call.caller, "hour": len(text)}\n'
)


def _agent(text: str) -> ir.AgentStep:
    result = compile_flow(text, "t.flow")
    assert result.flow is not None, [(d.code, d.message) for d in result.diagnostics]
    step = next(s for s in result.flow.states["start"].steps if isinstance(s, ir.AgentStep))
    return step


def _codes(text: str) -> list[tuple[str, int, int, str]]:
    return [
        (d.code, d.span.line, d.span.col, d.message)
        for d in compile_flow(text, "t.flow").diagnostics
    ]


def test_actions_lower_to_the_agent_step_with_params_method_templates_and_timeout() -> None:
    assert _codes(GOOD) == []
    step = _agent(GOOD)
    check, note = step.actions
    assert [t.name for t in step.tools] == ["book"]
    assert check.name == "check" and check.description == "Is a slot free?"
    assert [(p.name, p.type, p.description) for p in check.args] == [
        ("day", "string", "weekday"),
        ("hour", "number", ""),
    ]
    assert check.method == "GET"
    assert check.url.source == "https://cal.test/free?day={{ day }}&hour={{ hour }}"
    assert set(check.url.names) == {"day", "hour"}
    assert [(k, v.source) for k, v in check.headers] == [
        ("Authorization", "Bearer {{ token }}"),
        ("X-Day", "{{ day }}"),
    ]
    assert check.timeout_ms == 3000 and check.body is None
    assert check.span.line == 9
    assert note.method == "POST" and note.timeout_ms == 10_000  # the flow's http_timeout
    assert isinstance(note.body, ir.MapExpr)
    assert [k for k, _ in note.body.entries] == ["text", "caller", "hour"]
    # actions are not outcomes: only the tool exit is
    assert "tool:book" in step.on and not any(k.startswith("tool:note") for k in step.on)


def test_actions_survive_the_ir_json_round_trip_and_old_ir_without_actions_loads() -> None:
    flow = compile_flow(GOOD, "t.flow").flow
    assert flow is not None
    again = ir.Flow.model_validate_json(flow.model_dump_json())
    assert again == flow
    data = json.loads(flow.model_dump_json())
    for step in data["states"]["start"]["steps"]:
        step.pop("actions", None)
    old = ir.Flow.model_validate(data)
    assert next(s for s in old.states["start"].steps if isinstance(s, ir.AgentStep)).actions == ()


def test_action_model_is_frozen_and_forbids_unknown_fields() -> None:
    action = _agent(GOOD).actions[0]
    with pytest.raises(ValueError):
        ir.AgentAction.model_validate({**action.model_dump(), "secret": 1})
    with pytest.raises(ValueError):
        action.name = "x"  # type: ignore[misc]


BAD_CASES: list[tuple[str, str, tuple[int, int], str]] = [
    (
        "VF110",
        '        action book(x: string) "dup":\n            http get "https://a.test/{{ x }}"\n',
        (11, 9),
        "tool 'book' has the same name as the action on line 9",
    ),
    (
        "VF110",
        '        action a(x: string, x: number) "d":\n            http get "https://a.test"\n',
        (9, 29),
        "duplicate argument 'x' in action 'a'",
    ),
    (
        "VF305",
        '        action a(x: string) "d":\n            http get "https://a.test/{{ y }}"\n',
        (10, 22),
        "undefined variable 'y'",
    ),
    (
        "VF305",
        '        action a(x: string) "d":\n            http post "https://a.test"\n'
        '            body {"v": x, "w": nope}\n',
        (11, 32),
        "undefined variable 'nope'",
    ),
    (
        "VF408",
        '        action a(x: string) "d":\n            http fetch "https://a.test/{{ x }}"\n',
        (10, 18),
        "unknown HTTP method 'fetch'",
    ),
    (
        "VF401",
        '        action a(x: string) "d":\n            http get "https://a.test/{{ x }}"\n'
        "            timeout -2s\n",
        (11, 21),
        "'timeout' must be longer than zero",
    ),
    (
        "VF401",
        '        action a(x: string) "d":\n            http get "https://a.test/{{ x }}"'
        " timeout 0s\n",
        (10, 55),
        "'timeout' must be longer than zero",
    ),
    (
        "VF408",
        '        action a(x: string) "d":\n            timeout 2s\n',
        (9, 16),
        "action 'a' has no http request",
    ),
    (
        "VF408",
        '        action a(x: string) "d":\n            http get "https://a.test"\n'
        '            http get "https://b.test"\n',
        (11, 13),
        "takes one http request",
    ),
    (
        "VF408",
        '        action a(x: strin) "d":\n            http get "https://a.test/{{ x }}"\n',
        (9, 18),
        "unknown type 'strin'",
    ),
    (
        "VF107",
        '        action a(x: string) "d":\n            http get "https://a.test/{{ x }}"\n'
        "            into result\n",
        (11, 13),
        "unknown option 'into'",
    ),
    (
        "VF104",
        '        action a(x: string) "d":\n            http get "https://a.test/{{ x }}"'
        " timeout 2s\n            timeout 3s\n",
        (11, 13),
        "option 'timeout' is given twice",
    ),
    (
        "VF409",
        '        action a(x: string) "d":\n            http get "https://a.test/{{ x }}"\n'
        '            headers {"Authorization": "Bearer sk-live-123"}\n',
        (11, 39),
        "header 'Authorization' has a credential written in the flow",
    ),
    (
        "VF409",
        '        action a(x: string) "d":\n'
        '            http get "https://a.test/{{ x }}?api_key=abc123"\n',
        (10, 22),
        "the URL's 'api_key' parameter has a credential",
    ),
]


@pytest.mark.parametrize(
    ("code", "actions", "where", "message"),
    BAD_CASES,
    ids=[f"{c[0]}-{c[3][:20]}" for c in BAD_CASES],
)
def test_action_mistakes_are_reported_with_code_position_and_message(
    code: str, actions: str, where: tuple[int, int], message: str
) -> None:
    diags = _codes(_flow(actions))
    found = [d for d in diags if d[0] == code and message in d[3]]
    assert found, diags
    assert found[0][1:3] == where, found


def test_parameters_are_defined_only_inside_their_action() -> None:
    text = _flow(
        '        action a(day: string) "d":\n            http get "https://a.test/{{ day }}"\n'
        '        action b(x: string) "d":\n'
        '            http get "https://b.test/{{ x }}/{{ day }}"\n'
    )
    assert [(c, line, msg) for c, line, _, msg in _codes(text) if c != "VF302"] == [
        ("VF305", 12, "undefined variable 'day'")
    ]


def test_flow_variables_read_by_an_action_count_as_reads_and_must_be_set() -> None:
    unset = _flow(
        '        action a(x: string) "d":\n            http get "https://a.test/{{ x }}"\n'
        '            headers {"Authorization": "Bearer {{ crm_token }}"}\n'
    ).replace('var token: string = "t"', "var crm_token: string")
    assert [(c, msg) for c, _, _, msg in _codes(unset)] == [
        ("VF301", "'crm_token' may be unset here")
    ]
    used = unset.replace("var crm_token: string", 'var crm_token: string = ""')
    assert _codes(used) == []  # no VF302: the header reads it
    unused = _flow(
        '        action a(x: string) "d":\n            http get "https://a.test/{{ x }}"\n'
    )
    assert [(c, msg) for c, _, _, msg in _codes(unused)] == [
        ("VF302", "variable 'token' is never used")
    ]


def test_credentials_from_metadata_or_non_secret_headers_are_fine_and_http_steps_are_checked() -> (
    None
):
    ok = _flow(
        '        action a(x: string) "d":\n'
        '            http get "https://a.test/{{ x }}?key={{ k }}"\n'
        '            headers {"Authorization": "Bearer {{ call.metadata.tok }}", '
        '"Idempotency-Key": "abc-1", "X-Api-Key": "{{ call.metadata.key }}"}\n'
    ).replace("state start:", 'var k: string = ""\n\nstate start:')
    assert [c for c, *_ in _codes(ok)] == ["VF302"]  # only 'token' unused
    http = (
        HEAD.replace('var picked: string = ""\n', "")
        + "state start:\n"
        + '    http get "https://user:hunter2@a.test/x":\n'
        + '        headers {"Cookie": "session=abc", "X-Token": "{{ token }}"}\n'
        + "        on error, timeout -> start\n"
        + "    hangup\n"
    )
    assert sorted((c, line, msg) for c, line, _, msg in _codes(http) if c == "VF409") == [
        ("VF409", 7, "the URL has a password written in the flow"),
        ("VF409", 8, "header 'Cookie' has a credential written in the flow"),
    ]


def test_only_agents_take_actions() -> None:
    text = (
        HEAD
        + 'state start:\n    say "hi":\n'
        + '        action a(x: string) "d":\n            http get "https://a.test/{{ x }}"\n'
        + "    hangup\n"
    )
    assert ("VF408", "only 'agent' takes actions") in [(c, m) for c, _, _, m in _codes(text)]


def test_formatter_round_trips_actions_to_the_same_ir() -> None:
    ugly = GOOD.replace("action check(day: string", "action  check( day :string").replace(
        'body {"text": text,', 'body {"text":text ,'
    )
    once = format_source(ugly)
    assert format_source(once) == once
    assert once == GOOD
    a = compile_flow(ugly, "t.flow").flow
    b = compile_flow(once, "t.flow").flow
    assert a is not None and b is not None
    strip = {"span"}
    assert _agent(once).actions[1].model_dump(exclude=strip) == _agent(ugly).actions[1].model_dump(
        exclude=strip
    )


def test_formatter_keeps_backslash_continuations() -> None:
    src = (
        HEAD
        + 'state start:\n    agent "You book.":\n'
        + '        action a(x: string) \\\n              "Look it up":\n'
        + '            http get "https://a.test/{{ x }}"\n'
        + TAIL
    )
    once = format_source(src)
    assert '        action a(x: string) \\\n            "Look it up":\n' in once
    assert format_source(once) == once
    assert _agent(once).actions == _agent(src).actions
