"""A standby worker (``voxflow run --redis``, classic mode, the app name held by another worker)
synthesizes its flows' static prompts and builds its recogniser's decoders while it waits for
the name, so a take-over's first prompt is a cache hit. ``voxflow run``'s serving code
(``voxflow.cli.run._serve``) runs in-process on real Redis and the sandbox, with espeak runs
counted."""

from __future__ import annotations

import asyncio
import gc
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from _cluster_kit import running_redis, until

from voxflow.cli import run as cli_run
from voxflow.cli import run_app
from voxflow.cluster import ClusterState, node_app
from voxflow.media.stt_pocketsphinx import DECODERS_PER_DECISION, PocketSphinxSTT
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.runtime.config import Settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.sandbox.server import Sandbox

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

FLOW = """\
flow standby "Standby warm":
    answers "100"
    voice "en-us"

state start:
    answer
    say "Welcome back."
    say "Hi {{ 'there' }}."
    say "Goodbye."
    hangup
"""
STATIC = ["Welcome back.", "Goodbye."]


def _count_espeak(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts every EspeakTTS is asked to synthesize, in order."""
    texts: list[str] = []
    real = EspeakTTS.synthesize

    async def synthesize(
        self: EspeakTTS, text: str, *, voice: str | None = None
    ) -> AsyncIterator[bytes]:
        texts.append(text)
        async for pcm in real(self, text, voice=voice):
            yield pcm

    monkeypatch.setattr(EspeakTTS, "synthesize", synthesize)
    return texts


def _captured_serve(monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[Callable[[], None]]]:
    """``_serve``'s app (as ``run_app.make_app`` built it) and its SIGINT/SIGTERM callback
    (kept, not installed: the test stops the worker as a signal would)."""
    apps: list[Any] = []
    stops: list[Callable[[], None]] = []
    real = run_app.make_app

    def make_app(*args: Any, **kw: Any) -> Any:
        apps.append(real(*args, **kw))
        return apps[-1]

    monkeypatch.setattr(run_app, "make_app", make_app)
    monkeypatch.setattr(cli_run, "_on_signals", stops.append)
    monkeypatch.setattr(gc, "freeze", lambda: None)  # the test process's objects stay collectable
    return apps, stops


async def test_a_standby_warms_prompts_and_decoders_before_it_holds_the_app_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("VOXFLOW_STT_PROVIDER", "VOXFLOW_TTS_PROVIDER", "VOXFLOW_LLM_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    texts = _count_espeak(monkeypatch)
    apps, stops = _captured_serve(monkeypatch)
    (tmp_path / "standby.flow").write_text(FLOW)
    reg = FlowRegistry()
    reg.load([tmp_path / "standby.flow"])
    async with (
        running_redis(tmp_path) as rs,
        Sandbox(port=0, preload_sounds=False) as sb,
        # The holder shares this process's event loop with the standby, whose decoder builds
        # hold the GIL (~0.3 s each, seconds on a loaded box): a 3 s TTL could lapse mid-test
        # and hand the name over early. It lets go with release_app below.
        ClusterState(rs.url, worker_id="holder", worker_ttl=60.0) as holder,
    ):
        name = node_app(sb.ari_url, "voxflow")
        await holder.hold_app(name)
        settings = Settings(
            ari_url=sb.ari_url, ari_user=sb.user, ari_password=sb.password,
            redis_url=rs.url, grace_period=5,
        )  # fmt: skip
        serving = asyncio.ensure_future(cli_run._serve(settings, reg, False, audio=True))
        try:
            await until(lambda: bool(apps) or serving.done(), 30, "the standby's app")
            app = apps[0]
            cache = app.prompt_cache
            assert cache is not None and isinstance(app.stt, PocketSphinxSTT)

            def warm() -> bool:
                spare = app.stt.spare() == DECODERS_PER_DECISION
                return bool(cache.stats.entries >= len(STATIC) and spare)

            await until(lambda: warm() or serving.done(), 60, "prompts and decoders warm")
            # Warm, and still standing by: the name is the holder's, no events socket is open.
            assert not serving.done()
            assert await holder.redis.get(f"voxflow:app:{name}") == b"holder"
            assert not sb.pbx.app_active("voxflow")
            assert sorted(texts) == sorted(STATIC)
            await holder.release_app()
            await sb.wait_app("voxflow", 30)  # the standby took the name over
            hits = cache.stats.hits
            call = await sb.place_call(from_="+15550700", to="100")
            await call.wait_hangup(30)
            assert texts[len(STATIC) :] == ["Hi there."]  # the static prompts: no synthesis
            assert cache.stats.hits >= hits + len(STATIC)
        finally:
            for stop in stops:
                stop()
            if not stops:  # still standing by (or failed): nothing else stops it
                serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
        if not serving.cancelled():
            serving.result()  # stopped as by SIGTERM: cleanly
