"""``[media] pacer`` and ``[media] gc``: the defaults, the choices, and a one-line error naming
where a bad value came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxflow.errors import ConfigError
from voxflow.runtime.config import load_settings


def test_the_thread_pacer_and_gc_in_its_slack_are_the_defaults(tmp_path: Path) -> None:
    settings = load_settings(env={}, cwd=tmp_path)
    assert (settings.pacer, settings.media_gc) == ("thread", "slack")


def test_the_asyncio_pacer_and_pythons_own_gc_stay_selectable(tmp_path: Path) -> None:
    (tmp_path / "voxflow.toml").write_text('[media]\npacer = "loop"\ngc = "python"\n')
    settings = load_settings(env={}, cwd=tmp_path)
    assert (settings.pacer, settings.media_gc) == ("loop", "python")
    (tmp_path / "voxflow.toml").write_text('[media]\ngc = "freeze"\n')
    assert load_settings(env={}, cwd=tmp_path).media_gc == "freeze"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('pacer = "fast"', r"\[media\] pacer: must be thread or loop, got 'fast'$"),
        ('pacer = "Thread"', r"\[media\] pacer: must be thread or loop, got 'Thread'$"),
        ("pacer = 1", r"\[media\] pacer: expected a string, got 1$"),
        (
            'gc = "off"',
            r"\[media\] gc: must be slack or python or freeze or sized or sized-freeze, got 'off'$",
        ),
        ("gc = false", r"\[media\] gc: expected a string, got False$"),
    ],
)
def test_a_bad_pacer_or_gc_value_is_one_clear_line(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "voxflow.toml").write_text(f"[media]\n{toml}\n")
    with pytest.raises(ConfigError, match=message) as err:
        load_settings(env={}, cwd=tmp_path)
    assert "\n" not in str(err.value) and str(tmp_path / "voxflow.toml") in str(err.value)
