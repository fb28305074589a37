"""Warming the prompt cache: a worker synthesizes its flows' static prompts before the first
call (in the background), so the call's static ``say`` steps synthesize nothing; templated
prompts are left to the call; ``warm_prompts = false`` turns it off."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _e2e_kit import serving

from voxflow.errors import ConfigError
from voxflow.media.callmedia import create_call_voice
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.runtime.config import Settings, load_settings
from voxflow.runtime.events import End
from voxflow.runtime.registry import FlowRegistry
from voxflow.voice.prompt_cache import PromptCache

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

FLOW = """\
flow warm "Warm prompts":
    answers "100"
    voice "en-us"
    timeout 1s

state start:
    answer
    say "Hello."
    say "Hi {{ 'there' }}."
    say "Bye."
    hangup
"""
STATIC = ["Hello.", "Bye."]
MENU = """\
flow menu "Menu":
    answers "200"
    voice "en-us"

state start:
    answer
    menu "Press 1 for sales.":
        reprompt "Press 1, {{ call.caller }}."
        reprompt "Press 1 now."
        1 -> done
        on noinput, nomatch, exhausted -> done
state done:
    say "Bye." voice "en-gb"
    hangup
"""


class _CountingTTS(EspeakTTS):
    """espeak-ng, keeping the texts it was asked to synthesize."""

    def __init__(self) -> None:
        super().__init__(sample_rate=8000)
        self.texts: list[str] = []

    async def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
        self.texts.append(text)
        async for pcm in super().synthesize(text, voice=voice):
            yield pcm


def _flow(tmp_path: Path) -> Path:
    path = tmp_path / "warm.flow"
    path.write_text(FLOW)
    return path


async def _cached(cache: PromptCache, n: int) -> None:
    async with asyncio.timeout(30):
        while cache.stats.entries < n:  # noqa: ASYNC110 - the cache has no event to wait on
            await asyncio.sleep(0.02)


def test_static_prompts_are_the_untemplated_say_and_input_prompts(tmp_path: Path) -> None:
    from voxflow.ir.prompts import static_prompts

    reg = FlowRegistry()
    reg.load([_flow(tmp_path)])
    (fv,) = reg.versions()
    assert static_prompts(fv.flow) == [(text, "en-us") for text in STATIC]
    (tmp_path / "warm.flow").write_text(MENU)
    reg = FlowRegistry()
    reg.load([tmp_path / "warm.flow"])
    (fv,) = reg.versions()
    assert static_prompts(fv.flow) == [
        ("Press 1 for sales.", "en-us"),
        ("Press 1 now.", "en-us"),
        ("Bye.", "en-gb"),
    ]


async def test_a_worker_warms_its_static_prompts_and_the_first_call_synthesizes_none(
    tmp_path: Path,
) -> None:
    tts = _CountingTTS()
    app = {"tts": tts, "voice_factory": create_call_voice}
    async with serving([_flow(tmp_path)], app=app) as env:
        cache = env.app.prompt_cache
        assert cache is not None
        await _cached(cache, len(STATIC))  # before any call
        assert sorted(tts.texts) == sorted(STATIC)
        call = await env.call("100", from_="+15550123")
        assert await env.result(call) == End("completed", "normal")
        assert tts.texts[len(STATIC) :] == ["Hi there."]
        assert cache.stats.hits >= len(STATIC)
        assert len(call.heard_audio()) > 0


async def test_warm_prompts_false_leaves_every_prompt_to_the_calls(tmp_path: Path) -> None:
    tts = _CountingTTS()
    app = {"tts": tts, "voice_factory": create_call_voice}
    settings = Settings(grace_period=5, warm_prompts=False)
    async with serving([_flow(tmp_path)], app=app, settings=settings) as env:
        call = await env.call("100", from_="+15550123")
        assert await env.result(call) == End("completed", "normal")
        assert tts.texts[0] == "Hello."  # synthesized by the call itself
        assert len(tts.texts) == len(STATIC) + 1


def test_warm_prompts_setting_from_the_config_file_and_cli(tmp_path: Path) -> None:
    cfg = tmp_path / "voxflow.toml"
    cfg.write_text("[media]\nwarm_prompts = false\n")
    assert load_settings(config_path=cfg, env={}).warm_prompts is False
    assert load_settings(env={}, cwd=tmp_path / "none").warm_prompts is True
    assert load_settings({"warm_prompts": False}, env={}, cwd=tmp_path).warm_prompts is False
    cfg.write_text('[media]\nwarm_prompts = "no"\n')
    with pytest.raises(ConfigError, match=r"warm_prompts.*expected true or false"):
        load_settings(config_path=cfg, env={})
