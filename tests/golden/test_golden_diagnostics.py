"""Golden diagnostics: each bad flow in ``tests/golden/diagnostics/`` -> the text ``voxflow lint``
prints for it (``<name>.txt``). The files cover each stage: syntax (parser), references and
control flow (checker), option values (lowering), and a mix of all of them.

Run ``pytest tests/golden --update-golden`` after an intended change and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from voxflow.compiler.project import analyze_file
from voxflow.diagnostics import render_text

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "diagnostics"
BAD = sorted(HERE.glob("*.flow"))


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_diagnostics_golden(
    path: Path, update_golden: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # diagnostics name repository-relative paths
    report = analyze_file(str(path.relative_to(ROOT)))
    assert report.diagnostics, "a golden diagnostics flow must have problems"
    assert all(d.code != "VF000" for d in report.diagnostics)
    text = render_text(report.diagnostics, report.load_sources())
    golden = path.with_suffix(".txt")
    if update_golden or not golden.exists():
        golden.write_text(text, encoding="utf-8")
        if not update_golden:
            pytest.fail(f"{golden.name} was missing; created it, re-run to compare")
        return
    assert text == golden.read_text(encoding="utf-8"), f"{golden.name} differs (--update-golden)"


def test_every_stage_is_covered() -> None:
    codes = " ".join(
        p.with_suffix(".txt").read_text() for p in BAD if p.with_suffix(".txt").exists()
    )
    for code in ("VF001", "VF101", "VF106", "VF107", "VF202", "VF203", "VF301", "VF401", "VF408"):
        assert code in codes, code
