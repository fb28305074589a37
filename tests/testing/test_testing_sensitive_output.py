"""``voxflow test`` never prints a sensitive variable's value: a failing scenario's output, its
trace and its JUnit XML mask the card number the caller typed (expectations still compare the
real value)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from voxflow.cli.main import cli

CARD = "4111111111111111"

FLOW = """\
flow pay:
    answers "100"

var card: string sensitive
var choice: string

state start:
    answer
    gather "Press 1 to pay." into choice:
        max_digits 1
        on noinput, nomatch -> retry
        on exhausted -> bye
    say "Thank you."
    gather "Please enter your card number, then press pound." into card:
        capture digits
        min_digits 4
        terminator "#"
        on noinput, nomatch -> retry
        on exhausted -> bye
    http post "https://pay.example.com/charge/{{ card }}":
        body {"card": card}
        on error, timeout -> bye
    log "card {{ card }} entered"
    say "You entered {{ card }}, ending in {{ card[-4:] }}."
    goto bye

state bye:
    say "Bye."
    hangup
"""

SCENARIOS = f"""\
flow: pay.flow
defaults:
  mocks:
    http:
      - {{url: "pay.example.com", status: 200}}
scenarios:
  - name: card typed in two goes, partly ahead
    steps:
      - press: 1
      - {{press: "{CARD[:6]}", at: 2s}}
      - press: "{CARD[6:]}#"
    expect:
      said: ["You entered {CARD}, ending in 1111.", "Nope"]
      variables: {{card: "5500000000000004", choice: "2"}}
      requests:
        - {{url: "pay.example.com", json: {{card: "5500000000000004"}}}}
"""


def test_a_failing_scenario_never_prints_the_card_number(tmp_path: Path) -> None:
    (tmp_path / "pay.flow").write_text(FLOW)
    (tmp_path / "pay.test.yaml").write_text(SCENARIOS)
    junit = tmp_path / "out.xml"
    result = CliRunner().invoke(cli, ["test", str(tmp_path), "--junit", str(junit)])
    out = result.output
    assert result.exit_code == 1, out
    assert "FAIL  card typed in two goes" in out
    # the expectations compared the real value: only the made-up ones fail
    assert "said: nothing matched /Nope/" in out, out
    assert "'choice' is '1', expected '2'" in out  # not sensitive: shown
    assert "'card' is '<redacted>', expected '<redacted>'" in out, out
    assert "presses 1" in out  # a key into a gather that is not sensitive is shown
    assert "presses ******" in out and "presses **********#" in out, out
    xml = junit.read_text()
    for where, content in (("output", out), ("junit", xml)):
        assert CARD not in content, where
        assert CARD[:6] not in content, where
        assert CARD[6:] not in content, where
        assert "5500000000000004" not in content, where


PIN_FLOW = """\
flow pin:
    answers "100"

var pin: string sensitive

state start:
    answer
    gather "Say your PIN." input speech into pin:
        capture digits
        on noinput, nomatch -> retry
        on exhausted -> bye
    say "Thanks."
    goto bye

state bye:
    hangup
"""


def test_a_sentence_said_into_a_sensitive_variable_is_not_printed(tmp_path: Path) -> None:
    (tmp_path / "pin.flow").write_text(PIN_FLOW)
    (tmp_path / "pin.test.yaml").write_text(
        "flow: pin.flow\nscenarios:\n  - name: pin\n    speech: true\n"
        '    steps: [{say: "nine eight seven six"}]\n    expect: {said: ["Nope"]}\n'
    )
    result = CliRunner().invoke(cli, ["test", str(tmp_path / "pin.test.yaml"), "-v"])
    assert result.exit_code == 1, result.output
    assert "nine eight" not in result.output and "9876" not in result.output, result.output
    assert 'caller  says "<redacted>"' in result.output
    assert 'is heard: "<redacted>"' in result.output
