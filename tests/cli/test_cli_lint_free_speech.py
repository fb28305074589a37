"""voxflow lint VF501: a note where a step expects free-form speech and the configured
speech-to-text (as ``voxflow run`` picks it: VOXFLOW_STT_*, else pocketsphinx; or ``--stt``) is
the offline one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from voxflow.cli.main import cli

FLOW = """\
flow speech:
    timeout 5s

state start:
    answer
    menu "Say sales or support.":
        "sales", 1 -> name
        "support", 2 -> name
        on noinput, nomatch -> retry
        on exhausted -> bye

state name:
    gather "Your name, please." into caller_name:
        capture text
        on noinput, nomatch -> retry
        on exhausted -> bye
    say "Thanks, {{ caller_name }}."
    record "msg" transcribe said:
        on noinput -> bye
    say "{{ said }}"
    gather "Enter your PIN." into pin:
        capture digits
        on noinput, nomatch -> retry
        on exhausted -> bye
    say "{{ pin }}"
    goto bye

state bye:
    hangup
"""


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("PROVIDER", "BASE_URL", "MODEL", "API_KEY"):
        monkeypatch.delenv(f"VOXFLOW_STT_{var}", raising=False)
    path = tmp_path / "speech.flow"
    path.write_text(FLOW)
    return path


def _notes(*args: str) -> tuple[int, list[dict[str, object]]]:
    result = CliRunner().invoke(cli, ["lint", "--format", "json", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    data = json.loads(result.output)
    return result.exit_code, [d for d in data["diagnostics"] if d["code"] == "VF501"]


def test_free_speech_steps_get_a_note_with_the_offline_stt(flow: Path) -> None:
    code, notes = _notes("--strict", str(flow))
    assert code == 0  # a note never fails, not even with --strict
    # the free gather (line 13) and the transcribed recording (line 18); not the menu with
    # spoken choices, not the digits gather (it takes keys only)
    assert [(n["line"], n["col"], n["severity"]) for n in notes] == [
        (13, 5, "note"),
        (18, 5, "note"),
    ]
    assert "free-form speech (capture text)" in str(notes[0]["message"])
    assert "offline one (pocketsphinx)" in str(notes[0]["message"])
    assert "faster-whisper" in str(notes[0]["hint"])
    receptionist = Path(__file__).resolve().parents[2] / "flows" / "ai_receptionist.flow"
    [agent] = _notes(str(receptionist))[1]  # an agent listens for free speech too
    assert agent["line"] == 18 and "agent step" in str(agent["message"])


def test_no_note_with_a_server_stt(flow: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXFLOW_STT_PROVIDER", "openai")
    monkeypatch.setenv("VOXFLOW_STT_BASE_URL", "http://127.0.0.1:8000/v1")
    assert _notes(str(flow))[1] == []
    assert len(_notes("--stt", "pocketsphinx", str(flow))[1]) == 2  # the option wins
    monkeypatch.setenv("VOXFLOW_STT_PROVIDER", "pocketsphinx")
    assert len(_notes(str(flow))[1]) == 2
    monkeypatch.setenv("VOXFLOW_STT_PROVIDER", "nosuch")  # voxflow run refuses it: no guess
    assert _notes(str(flow))[1] == []


def test_the_stt_option_and_a_disable_comment(flow: Path) -> None:
    assert _notes("--stt", "deepgram", str(flow))[1] == []
    off = "    # voxflow: disable-next-line=VF501\n"
    flow.write_text(FLOW.replace('    gather "Your name', off + '    gather "Your name'))
    assert [n["line"] for n in _notes(str(flow))[1]] == [19]
    text = CliRunner().invoke(cli, ["lint", str(flow)])
    assert "note VF501: this recording is transcribed" in text.output
    assert "0 errors, 0 warnings, 1 note" in text.output
    assert CliRunner().invoke(cli, ["validate", str(flow)]).exit_code == 0  # lint only
