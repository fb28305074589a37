"""Flow hang-up reasons become reasons ARI accepts (anything else is a 400 from Asterisk)."""

from __future__ import annotations

import pytest

from voxflow.runtime.driver import ARI_HANGUP_REASONS, ari_hangup_reason


@pytest.mark.parametrize("reason", sorted(ARI_HANGUP_REASONS))
def test_ari_reasons_pass_through(reason: str) -> None:
    assert ari_hangup_reason(reason) == reason


@pytest.mark.parametrize(
    ("flow_reason", "ari"),
    [
        ("error", "failure"),
        ("failed", "failure"),
        ("noanswer", "no_answer"),
        ("No Answer", "no_answer"),
        ("answered-elsewhere", "answered_elsewhere"),
        ("BUSY", "busy"),
        ("closed", "normal"),
        ("exhausted", "normal"),
        ("caller asked to end", "normal"),
        ("", "normal"),
    ],
)
def test_flow_reasons_map_to_ari(flow_reason: str, ari: str) -> None:
    assert ari_hangup_reason(flow_reason) == ari
