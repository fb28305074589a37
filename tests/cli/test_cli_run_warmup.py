"""`voxflow run` builds the offline recogniser's decoders before it serves: a decoder built during
a call's listen holds the GIL ~0.3 s, which the media path hears as silence."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxflow.cli.run_app import make_app, warm_up_providers
from voxflow.media.stt_pocketsphinx import DECODERS_PER_DECISION, PocketSphinxSTT
from voxflow.runtime.config import load_settings


async def test_the_offline_recogniser_is_warm_before_the_first_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("VOXFLOW_STT_PROVIDER", "VOXFLOW_TTS_PROVIDER", "VOXFLOW_LLM_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(env={}, cwd=tmp_path)
    app = make_app(settings, "http://127.0.0.1:1/ari", "u", "p")
    assert isinstance(app.stt, PocketSphinxSTT)
    assert app.stt.spare() == 0  # nothing built yet
    await warm_up_providers(app)
    assert app.stt.spare() == DECODERS_PER_DECISION  # a grammar, its phone loop and check


async def test_providers_without_a_warm_up_are_left_alone(tmp_path: Path) -> None:
    settings = load_settings(env={}, cwd=tmp_path)
    app = make_app(settings, "http://127.0.0.1:1/ari", "u", "p", audio=False)
    assert app.stt is None
    await warm_up_providers(app)  # nothing to build, nothing raised


async def test_the_pool_size_setting_is_the_pool_voxflow_run_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("VOXFLOW_STT_PROVIDER", "VOXFLOW_TTS_PROVIDER", "VOXFLOW_LLM_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "voxflow.toml").write_text("[media]\nstt_decoders = 1\n")
    app = make_app(load_settings(env={}, cwd=tmp_path), "http://127.0.0.1:1/ari", "u", "p")
    assert isinstance(app.stt, PocketSphinxSTT) and app.stt.max_decoders == 1
    await warm_up_providers(app)
    assert app.stt.stats().built == 1 and app.stt.spare() == 1
