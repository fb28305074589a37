"""The formatter: canonical, idempotent, keeps comments, preserves the compiled IR."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxflow.cli.main import cli
from voxflow.compiler.frontdoor import compile_flow
from voxflow.errors import VoxflowSyntaxError
from voxflow.fmt import format_file_text, format_source
from voxflow.syntax.parser import bare_parser

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "flows").rglob("*.flow"))


def _strip_spans(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_spans(v) for k, v in value.items() if k != "span"}
    if isinstance(value, list | tuple):
        return [_strip_spans(v) for v in value]
    return value


def _ir(text: str, path: Path) -> Any:
    result = compile_flow(text, str(path))
    return None if result.flow is None else _strip_spans(result.flow.model_dump())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_formatted_and_idempotent(path: Path) -> None:
    text = path.read_text()
    once = format_source(text)
    assert format_source(once) == once
    assert once == text, f"{path.name} is not formatted: run voxflow fmt flows"


UGLY = """\
# leading comment



flow  demo :
  answers "1" ,"2"    # inline comment
  timeout 5s

var  n = 1+2*( 3 - -1 )
state start :
  # about the menu
  menu "Pick" :
     1 -> done
     /yes|ok/i,"fine"->done
     on noinput->done
     on nomatch :
        retry
     on exhausted -> done
  set n = {"a" : [1,2] , b : n}
  goto done


state done:
        say "Bye, {{ n }}."
        hangup
"""

CANON = """\
# leading comment

flow demo:
    answers "1", "2"  # inline comment
    timeout 5s

var n = 1 + 2 * (3 - -1)
state start:
    # about the menu
    menu "Pick":
        1 -> done
        /yes|ok/i, "fine" -> done
        on noinput -> done
        on nomatch:
            retry
        on exhausted -> done
    set n = {"a": [1, 2], b: n}
    goto done

state done:
    say "Bye, {{ n }}."
    hangup
"""


def test_formats_spacing_indentation_blank_lines_and_keeps_comments() -> None:
    assert format_source(UGLY) == CANON
    assert format_source(CANON) == CANON


def test_unparsable_files_are_refused_not_mangled() -> None:
    with pytest.raises(VoxflowSyntaxError) as info:
        format_file_text("state a\n    answer\n", "bad.flow")
    assert "bad.flow:1:" in str(info.value)


def _perturb(text: str, rnd: random.Random) -> str:
    """Same tokens, different layout: indentation unit, spaces between tokens, extra blank
    lines where there was one (a single blank line inside a block is kept on purpose)."""
    unit = rnd.randint(1, 8)
    out: list[str] = []
    pos = 0
    for tok in bare_parser().lex(text):
        if tok.start_pos is None or tok.type in ("_INDENT", "_DEDENT"):
            continue
        gap = text[pos : tok.start_pos]
        if gap == " ":
            gap = " " * rnd.randint(1, 3)
        out.append(gap)
        value = str(tok)
        if tok.type == "_NL":
            lines = value.split("\n")
            new = [lines[0]]
            for k, line in enumerate(lines[1:], start=1):
                body = line.lstrip(" ")
                width = (len(line) - len(body)) // 4 * unit
                if not body and k < len(lines) - 1 and rnd.random() < 0.5:
                    new.append("  " * rnd.randint(0, 2))  # blank lines collapse to one
                new.append(" " * width + body)
            value = "\n".join(new)
        out.append(value)
        pos = tok.end_pos
    out.append(text[pos:])
    return "".join(out)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EXAMPLES), st.randoms(use_true_random=False))
def test_formatting_restores_layout_and_preserves_ir(path: Path, rnd: random.Random) -> None:
    text = path.read_text()
    messy = _perturb(text, rnd)
    before = _ir(messy, path)
    assert before is not None, "the perturbation must keep the flow valid"
    formatted = format_source(messy)
    assert formatted == format_source(text)
    assert _ir(formatted, path) == before


def test_cli_check_shows_diff_and_fixes(tmp_path: Path) -> None:
    f = tmp_path / "ugly.flow"
    f.write_text(UGLY)
    ok = tmp_path / "ok.flow"
    ok.write_text(CANON)
    runner = CliRunner()
    checked = runner.invoke(cli, ["fmt", "--check", str(tmp_path)])
    assert checked.exit_code == 1
    assert "-flow  demo :" in checked.output and "+flow demo:" in checked.output
    assert f.read_text() == UGLY  # --check changes nothing
    fixed = runner.invoke(cli, ["fmt", str(tmp_path)])
    assert fixed.exit_code == 0, fixed.output
    assert f.read_text() == CANON
    again = runner.invoke(cli, ["fmt", "--check", str(tmp_path)])
    assert again.exit_code == 0


def test_cli_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["fmt", str(tmp_path / "missing.flow")]).exit_code == 2
    bad = tmp_path / "bad.flow"
    bad.write_text("state a\n    answer\n")
    result = runner.invoke(cli, ["fmt", str(bad)])
    assert result.exit_code == 1
    assert "cannot format" in result.output and "Traceback" not in result.output
    assert bad.read_text() == "state a\n    answer\n"


def test_a_comment_block_stays_with_the_state_it_describes() -> None:
    text = (
        'flow c:\n    answers "1"\n\nstate start:\n    answer\n    goto bye\n'
        "# The goodbye state: says goodbye\n# and hangs up.\nstate bye:\n    hangup\n"
    )
    want = (
        'flow c:\n    answers "1"\n\nstate start:\n    answer\n    goto bye\n\n'
        "# The goodbye state: says goodbye\n# and hangs up.\nstate bye:\n    hangup\n"
    )
    assert format_source(text) == want
    assert format_source(want) == want


def test_devices_pipes_binary_and_bom_files(tmp_path: Path) -> None:
    """fmt reads flow files as the compiler does: never a device or a pipe (a link to
    /dev/zero was read for ever), binary or non-UTF-8 is a one-line error, a BOM is fine."""
    runner = CliRunner()
    (tmp_path / "zero.flow").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "pipe.flow")
    (tmp_path / "bin.flow").write_bytes(b"\x00\x01")
    (tmp_path / "latin.flow").write_bytes(b"flow caf\xe9:\n")
    for name, why in [
        ("zero.flow", "not a regular file"),
        ("pipe.flow", "not a regular file"),
        ("bin.flow", "file looks binary"),
        ("latin.flow", "file is not valid UTF-8 (byte 0xe9 at offset 8)"),
    ]:
        result = runner.invoke(cli, ["fmt", str(tmp_path / name)])
        assert result.exit_code == 1 and f"cannot read {tmp_path / name}: {why}" in result.output
    bom = tmp_path / "bom.flow"
    bom.write_bytes(b'\xef\xbb\xbfflow b:\n    answers "1"\n\nstate s:\n    hangup\n')
    assert runner.invoke(cli, ["fmt", "--check", str(bom)]).exit_code == 1  # the BOM goes
    assert runner.invoke(cli, ["fmt", str(bom)]).exit_code == 0
    assert bom.read_bytes() == b'flow b:\n    answers "1"\n\nstate s:\n    hangup\n'


@pytest.mark.parametrize(
    "line",
    [
        '    set s = [n\n        / 2 + 1, "x/y"]\n',  # a division starting a line inside brackets
        '    set s = key / 2 + len("a/b")\n',  # after a name that is also a keyword
        '    set s = call / 2 + len("a/b")\n',
        '    set s = anytime / 2 + len("a/b")\n',
    ],
)
def test_a_division_is_never_taken_for_a_regex(line: str) -> None:
    """A regex is only a choice or anytime pattern: a '/' elsewhere is a division. Read as a
    regex up to the next '/', it swallowed part of a string, and fmt wrote "a/b" as "a/ b "."""
    text = (
        'flow d:\n    answers "1"\n\nvar n = 10\nvar key = 4\nvar call = 6\nvar anytime = 8\n'
        'var s = ""\n\nstate start:\n' + line + '    say "{{ s }}"\n    hangup\n'
    )
    path = Path("d.flow")
    assert _ir(text, path) is not None
    formatted = format_source(text)
    assert formatted == text
    assert _ir(formatted, path) == _ir(text, path)


def test_regex_patterns_are_still_formatted_as_regexes() -> None:
    text = (
        'flow r:\n    answers "1"\n\nanytime /oper(ator)?/i, "help me" -> start\n\n'
        'state start:\n    menu "Pick":\n        /yes|ok/i, "fine" -> start\n'
        "        1,/a b/ -> bye\n        on noinput, nomatch, exhausted -> bye\n\n"
        "state bye:\n    hangup\n"
    )
    want = text.replace("1,/a b/", "1, /a b/")
    assert format_source(text) == want
    assert _ir(want, Path("r.flow")) == _ir(text, Path("r.flow")) is not None
