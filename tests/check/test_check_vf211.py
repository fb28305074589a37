"""VF211: a transfer target the shipped [voxflow-transfer] cannot route comes back failed on
Asterisk (the i extension, capture continue-outcomes.json c); the checker says so first."""

from __future__ import annotations

import pytest

from voxflow.compiler import compile_flow

H = "flow f:\n    timeout 5s\n\nstate a:\n    answer\n"


def _vf211(source: str) -> list[tuple[int, str]]:
    diags = compile_flow(source, "t.flow").diagnostics
    return [(d.span.line, d.message) for d in diags if d.code == "VF211"]


def test_a_name_without_technology_is_reported() -> None:
    found = _vf211(H + '    transfer "payments"\n')
    assert [ln for ln, _ in found] == [6]
    assert "no extension for 'payments'" in found[0][1]


@pytest.mark.parametrize(
    "target", ["PJSIP/payments", "+18005550111", "2001", "{{ call.metadata.line }}"]
)
def test_endpoints_numbers_and_templates_are_not_reported(target: str) -> None:
    assert _vf211(H + f'    transfer "{target}"\n') == []


def test_vf211_is_a_warning_and_can_be_disabled() -> None:
    source = H + '    transfer "payments"\n'
    diags = compile_flow(source, "t.flow").diagnostics
    assert [d.severity.value for d in diags if d.code == "VF211"] == ["warning"]
    quiet = H + "    # voxflow: disable-next-line=VF211\n" + '    transfer "payments"\n'
    assert _vf211(quiet) == []
