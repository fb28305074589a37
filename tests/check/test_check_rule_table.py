"""One small source per rule code that triggers it (code, line, col, message) and one that
does not, through the front door (parse, check, lower)."""

from __future__ import annotations

import pytest

from voxflow.compiler import compile_flow

H = "flow f:\n    timeout 5s\n\n"
END = "\nstate b:\n    hangup\n"
G = '    gather "x":\n        on noinput, nomatch -> b\n'

# code, bad source, (line, col), message fragment, good source
CASES: list[tuple[str, str, tuple[int, int], str, str]] = [
    ("VF001", H + "state a\n    hangup\n", (4, 8), "missing ':' after the state name",
     H + "state a:\n    hangup\n"),
    ("VF101", H + "state a:\n    goto bb\n" + END, (5, 10), "unknown state 'bb'",
     H + "state a:\n    goto b\n" + END),
    ("VF102", H + "state a:\n    hangup\nstate a:\n    hangup\n", (6, 7), "duplicate state 'a'",
     H + "state a:\n    hangup\n"),
    ("VF103", H + "var x = 1\nvar x = 2\nstate a:\n    say \"{{ x }}\"\n    hangup\n", (5, 1),
     "duplicate variable 'x'", H + "var x = 1\nstate a:\n    say \"{{ x }}\"\n    hangup\n"),
    ("VF104", H + "state a:\n" + G + "        on noinput -> b\n    goto b\n" + END, (7, 9),
     "duplicate 'noinput' handler", H + "state a:\n" + G + "    goto b\n" + END),
    ("VF105", H + "state a:\n    call nope()\n    hangup\n", (5, 10), "unknown subflow 'nope'",
     H + "state a:\n    call s()\n    hangup\n\nsubflow s():\n    state x:\n        return\n"),
    ("VF106", H + "state a:\n    call s(y = 1)\n    hangup\n\nsubflow s():\n    state x:\n"
     "        return\n", (5, 12), "has no parameter 'y'",
     H + "state a:\n    call s()\n    hangup\n\nsubflow s():\n    state x:\n        return\n"),
    ("VF107", H.replace("timeout", "tiemout") + "state a:\n    hangup\n", (2, 5),
     "unknown option 'tiemout'", H + "state a:\n    hangup\n"),
    ("VF109", H + "state a:\n    http get \"https://x.test\":\n        on busy -> b\n"
     "        on error, timeout -> b\n    goto b\n" + END, (6, 9), "never ends with outcome 'busy'",
     H + "state a:\n    http get \"https://x.test\":\n        on error, timeout -> b\n    goto b\n"
     + END),
    ("VF201", H + "state a:\n    hangup\nstate lonely:\n    hangup\n", (6, 7),
     "state 'lonely' is unreachable", H + "state a:\n    goto c\nstate c:\n    hangup\n"),
    ("VF202", H + "state a:\n    say \"hi\"\n", (5, 5), "can end without a transition",
     H + "state a:\n    say \"hi\"\n    hangup\n"),
    ("VF203", H + "state a:\n    gather \"x\":\n        on noinput -> b\n    goto b\n" + END,
     (5, 5), "does not handle outcome 'nomatch'", H + "state a:\n" + G + "    goto b\n" + END),
    ("VF204", H + "state a:\n    gather \"x\":\n        on noinput, nomatch -> a\n    goto b\n"
     + END, (6, 32), "loops back through 'a'", H + "state a:\n" + G + "    goto b\n" + END),
    ("VF205", H + "state a:\n    hangup\n    say \"dead\"\n", (6, 5), "unreachable step",
     H + "state a:\n    say \"alive\"\n    hangup\n"),
    ("VF301", H + "var x\nstate a:\n    say \"{{ x }}\"\n    hangup\n", (6, 9),
     "'x' may be unset", H + "var x\nstate a:\n    set x = 1\n    say \"{{ x }}\"\n    hangup\n"),
    ("VF302", H + "var x = 1\nstate a:\n    hangup\n", (4, 1), "'x' is never used",
     H + "var x = 1\nstate a:\n    say \"{{ x }}\"\n    hangup\n"),
    ("VF303", H + "state a:\n    set y = 1 + \"a\"\n    say \"{{ y }}\"\n    hangup\n", (5, 13),
     "cannot add", H + "state a:\n    set y = 1 + 2\n    say \"{{ y }}\"\n    hangup\n"),
    ("VF304", H + "state a:\n    set y = uper(\"a\")\n    say \"{{ y }}\"\n    hangup\n", (5, 13),
     "unknown function 'uper'",
     H + "state a:\n    set y = upper(\"a\")\n    say \"{{ y }}\"\n    hangup\n"),
    ("VF305", H + "state a:\n    say \"{{ nme }}\"\n    hangup\n", (5, 9),
     "undefined variable 'nme'", H + "state a:\n    say \"{{ call.id }}\"\n    hangup\n"),
    ("VF306", H + "state a:\n    hangup\n\nsubflow s():\n    state x:\n        return\n", (7, 1),
     "subflow 's' is never called",
     H + "state a:\n    call s()\n    hangup\n\nsubflow s():\n    state x:\n        return\n"),
    ("VF307", H + "state a:\n    say \"{{ oops\"\n    hangup\n", (5, 9), "template error",
     H + "state a:\n    say \"{{ call.id }}\"\n    hangup\n"),
    ("VF308", H + "var g = \"\"\nstate a:\n    set g = \"Hi {{ call.caller }}\"\n"
     "    say \"{{ g }}\"\n    hangup\n", (6, 13), "is used as written, not rendered",
     H + "var g = \"\"\nstate a:\n    set g = \"Hi \" + call.caller\n"
     "    say \"{{ g }}\"\n    hangup\n"),
    ("VF401", H.replace("5s", "0s") + "state a:\n    hangup\n", (2, 13), "longer than zero",
     H + "state a:\n    hangup\n"),
    ("VF402", H + "state a:\n    gather \"x\" max_digits 0:\n        on noinput, nomatch -> b\n"
     "    goto b\n" + END, (5, 27), "'max_digits' must be at least 1",
     H + "state a:\n    gather \"x\" max_digits 4:\n        on noinput, nomatch -> b\n"
     "    goto b\n" + END),
    ("VF403", H + "state a:\n    gather \"x\" terminator \"x\":\n        on noinput, nomatch -> b\n"
     "    goto b\n" + END, (5, 27), "a terminator is one DTMF key",
     H + "state a:\n    gather \"x\" terminator \"#\":\n        on noinput, nomatch -> b\n"
     "    goto b\n" + END),
    ("VF404", H.replace("5s", "5") + "state a:\n    hangup\n", (2, 13), "needs a unit",
     H + "state a:\n    hangup\n"),
    ("VF405", H + "state a:\n    gather \"x\" retries 0:\n        on noinput, nomatch -> b\n"
     "    goto b\n" + END, (5, 24), "'retries' must be at least 1",
     H + "state a:\n" + G + "    goto b\n" + END),
    ("VF406", H + "state a:\n    menu \"x\":\n        key \"x\" -> b\n        9 -> b\n"
     "        on noinput, nomatch -> b\n" + END, (6, 9), "is not a DTMF key",
     H + "state a:\n    menu \"x\":\n        9 -> b\n        on noinput, nomatch -> b\n" + END),
    ("VF407", H + "state a:\n    menu \"x\":\n        /(open/ -> b\n"
     "        on noinput, nomatch -> b\n" + END, (6, 9), "invalid regular expression",
     H + "state a:\n    menu \"x\":\n        /open/ -> b\n        on noinput, nomatch -> b\n"
     + END),
    ("VF408", H + "state a:\n    gather \"x\":\n        on noinput, nomatch 0 -> b\n    goto b\n"
     + END, (6, 9), "must be at least 1",
     H + "state a:\n    gather \"x\":\n        on noinput, nomatch 1 -> b\n    goto b\n" + END),
    ("VF410", H + "state a:\n    menu \"x\":\n        \"1\", \"sales\" -> b\n        2 -> b\n"
     "        on noinput, nomatch -> b\n" + END, (6, 9), '"1" is a spoken phrase, not a key',
     H + "state a:\n    menu \"x\":\n        1, \"sales\" -> b\n        2 -> b\n"
     "        on noinput, nomatch -> b\n" + END),
]  # fmt: skip


@pytest.mark.parametrize(
    ("code", "bad", "where", "message", "good"), CASES, ids=[c[0] for c in CASES]
)
def test_rule_triggers_and_clean_source_does_not(
    code: str, bad: str, where: tuple[int, int], message: str, good: str
) -> None:
    found = [d for d in compile_flow(bad, "t.flow").diagnostics if d.code == code]
    assert found, [
        (d.code, d.span.line, d.message) for d in compile_flow(bad, "t.flow").diagnostics
    ]
    assert (found[0].span.line, found[0].span.col) == where, found[0]
    assert message in found[0].message
    clean = compile_flow(good, "t.flow").diagnostics
    assert [(d.code, d.span.line, d.message) for d in clean] == []
