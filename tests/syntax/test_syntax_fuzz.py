"""Property test: mutated example flows never crash the compiler, and every diagnostic's span
lies inside the file it names."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxflow.compiler import compile_flow
from voxflow.diagnostics import Diagnostic
from voxflow.source import Source
from voxflow.sourcefile import decode_source

ROOT = Path(__file__).resolve().parents[2]
FLOWS = sorted((ROOT / "flows").glob("*.flow"))
TEXTS = {str(p): p.read_text(encoding="utf-8") for p in FLOWS}
TOKENS = [
    ":", "->", "state", "scope", "on", "goto", "retry", "menu", "gather", "(", ")", "[", "{",
    '"', "'", "/", "#", "\t", "    ", "5s", "0ms", "-1", "include", "flow", "subflow", "agent",
    "tool", "if", "else", "elif", "match", "case", "\n", "noinput 0", "=", "not in", "\\",
    "{{", "}}", "é", "\u2028", "\x0c", "3.5.1", "1e9", "999999999999999999999s",
]  # fmt: skip


def _mutate(lines: list[str], data: st.DataObject) -> list[str]:
    kind = data.draw(st.sampled_from(["delete", "dup", "swap", "truncate", "token", "indent"]))
    if not lines:
        return lines
    i = data.draw(st.integers(0, len(lines) - 1))
    j = data.draw(st.integers(0, len(lines) - 1))
    if kind == "delete":
        del lines[i]
    elif kind == "dup":
        lines.insert(j, lines[i])
    elif kind == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "truncate":
        cut = data.draw(st.integers(0, len(lines[i])))
        lines[i] = lines[i][:cut]
        del lines[i + 1 :]
    elif kind == "token":
        pos = data.draw(st.integers(0, len(lines[i])))
        tok = data.draw(st.sampled_from(TOKENS))
        lines[i] = lines[i][:pos] + tok + lines[i][pos:]
    else:
        lines[i] = data.draw(st.sampled_from(["", " ", "  ", "\t"])) + lines[i]
    return lines


def _assert_inside(diags: list[Diagnostic], texts: dict[str, str]) -> None:
    for d in diags:
        assert d.code != "VF000", d.message
        text = texts.get(d.file)
        if text is None:
            p = Path(d.file)
            text = p.read_text(encoding="utf-8") if p.is_file() else ""
            texts[d.file] = text
        src = Source(d.file, text)
        last = max(1, src.line_count + 1)
        assert 1 <= d.span.line <= d.span.end_line <= last, (d, src.line_count)
        assert d.span.col >= 1 and d.span.end_col >= 1
        if d.span.line == d.span.end_line:
            assert d.span.col <= d.span.end_col
        assert d.span.col <= len(src.line_text(d.span.line)) + 2, d


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_mutated_flows_give_diagnostics_not_tracebacks(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(sorted(TEXTS)))
    lines = TEXTS[path].split("\n")
    for _ in range(data.draw(st.integers(1, 4))):
        lines = _mutate(lines, data)
    text = "\n".join(lines)
    result = compile_flow(text, path)
    texts = {path: text}
    _assert_inside(result.diagnostics, texts)
    if result.flow is not None:
        result.flow.model_dump_json()


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes(raw: bytes) -> None:
    result = compile_flow(raw, "random.flow")
    decoded = decode_source("random.flow", raw)
    text = decoded.text if isinstance(decoded, Source) else raw.decode("utf-8", "replace")
    _assert_inside(result.diagnostics, {"random.flow": text})


@pytest.mark.long
def test_large_and_deep_inputs() -> None:
    big = "state s:\n" + '    say "hello"\n' * 40_000 + "    hangup\n"
    result = compile_flow(big, "big.flow")
    assert result.flow is not None
    deep = "state s:\n    set x = " + "(" * 5000 + "1" + ")" * 5000 + "\n    hangup\n"
    result = compile_flow(deep, "deep.flow")
    _assert_inside(result.diagnostics, {"deep.flow": deep})


def test_ten_megabytes_is_refused_cleanly() -> None:
    text = "state s:\n" + '    say "x"\n' * (10 * 1024 * 1024 // 12)
    for data in (text, text.encode()):
        result = compile_flow(data, "huge.flow")
        assert result.flow is None
        assert [d.code for d in result.diagnostics] == ["VF004"]
