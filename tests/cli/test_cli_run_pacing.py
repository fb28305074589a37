"""`voxflow run` paces a call's prompt with the ``[media] pacer`` it was given (the thread pacer by
default) and, when it stops, leaves no pacer thread behind and Python's collector as it was."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from voxflow.cli import run as run_mod
from voxflow.cli.run import _serve_until_stopped
from voxflow.cli.run_app import make_app
from voxflow.media.pacer import Pacer, shared_pacer
from voxflow.media.pacer_thread import ThreadPacer
from voxflow.runtime.config import load_settings
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.sandbox.server import Sandbox

FLOW = Path(__file__).resolve().parents[2] / "flows" / "main_ivr.flow"


def _pacer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "voxflow-pacer" and t.is_alive()]


async def _until(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(("pacer", "kind"), [("thread", ThreadPacer), ("loop", Pacer)])
async def test_the_worker_paces_with_its_setting_and_stops_its_pacer_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pacer: str, kind: type[Pacer]
) -> None:
    for name in ("VOXFLOW_STT_PROVIDER", "VOXFLOW_TTS_PROVIDER", "VOXFLOW_LLM_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    stoppers: list[Callable[[], None]] = []
    monkeypatch.setattr(run_mod, "_on_signals", stoppers.append)  # no real signal handlers
    (tmp_path / "voxflow.toml").write_text(f'[media]\npacer = "{pacer}"\n')
    was_enabled = gc.isenabled()
    async with Sandbox(port=0) as sb:
        cli = {"ari_url": sb.ari_url, "ari_user": sb.user, "ari_password": sb.password}
        settings = load_settings({**cli, "grace_period": 0.5}, env={}, cwd=tmp_path)
        app = make_app(settings, sb.ari_url, sb.user, sb.password)
        registry = FlowRegistry()
        registry.load([FLOW])
        server = FlowServer(app, registry, settings)
        serving = asyncio.ensure_future(_serve_until_stopped(settings, registry, server, None, app))
        try:
            await sb.wait_app("voxflow", 20)
            call = await sb.place_call(to="100")
            await call.wait_for("audio", 30)  # the welcome prompt is being paced
            assert isinstance(shared_pacer(), kind) and shared_pacer().streams == 1
            assert shared_pacer().collector is not None and not gc.isenabled()
            assert bool(_pacer_threads()) == (pacer == "thread")
            stoppers[0]()  # SIGTERM: the call is hung up after the grace period
        finally:
            if not stoppers:
                serving.cancel()
            await asyncio.wait_for(serving, 30)
        await _until(lambda: call.id in server.results, "the call's end")
    assert not _pacer_threads()
    assert gc.isenabled() == was_enabled
    assert type(shared_pacer()) is Pacer and shared_pacer().streams == 0
