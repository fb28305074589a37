"""Golden files per stage (AST dump, IR JSON) for every example flow in flows/.

Run ``pytest tests/golden --update-golden`` after an intended change and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from voxflow.compiler import compile_file
from voxflow.ir import Flow
from voxflow.sourcefile import read_source
from voxflow.syntax.ast import dump
from voxflow.syntax.parser import load_program

ROOT = Path(__file__).resolve().parents[2]
FLOWS = sorted(p for p in (ROOT / "flows").glob("*.flow"))
HERE = Path(__file__).resolve().parent / "data"


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _compare(name: str, actual: str, update: bool) -> None:
    # Shipped files (include "voxflow:...") are read from the package: keep that path relative
    # too, so the golden files do not depend on where the repository is checked out.
    actual = actual.replace(f'"{ROOT}{os.sep}', '"')
    golden = HERE / name
    if update or not golden.exists():
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
        if not update:
            pytest.fail(f"golden file {name} was missing; created it, re-run to compare")
        return
    assert actual == golden.read_text(encoding="utf-8"), f"{name} differs (--update-golden)"


@pytest.fixture(autouse=True)
def _in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # golden files hold repository-relative paths


def test_every_example_flow_is_covered() -> None:
    names = {p.stem for p in FLOWS}
    assert {
        "main_ivr",
        "appointment_reminder",
        "support_line",
        "ai_receptionist",
        "voicemail",
        "card_payment",
    } <= names


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: p.stem)
def test_ast_golden(path: Path, update_golden: bool) -> None:
    source = read_source(_rel(path))
    assert not isinstance(source, type(None))
    program, diags = load_program(source)  # type: ignore[arg-type]
    assert program is not None and not diags
    text = json.dumps([dump(m) for m in program.modules], indent=1, sort_keys=True) + "\n"
    _compare(f"{path.stem}.ast.json", text, update_golden)


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: p.stem)
def test_ir_golden_and_round_trip(path: Path, update_golden: bool) -> None:
    result = compile_file(_rel(path))
    assert result.ok, [f"{d.file}:{d.span}: {d.code} {d.message}" for d in result.diagnostics]
    assert not result.diagnostics, "example flows must compile without warnings"
    flow = result.flow
    assert flow is not None
    text = flow.model_dump_json(indent=1) + "\n"
    assert Flow.model_validate_json(text) == flow
    _compare(f"{path.stem}.ir.json", text, update_golden)
