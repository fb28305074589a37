"""Helpers for the e2e tests: the example flows with short timeouts, served on the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from voxflow.ari.models import AriEvent, ChannelDtmfReceived
from voxflow.runtime.config import Settings
from voxflow.runtime.driver import TranscriptLine
from voxflow.runtime.events import End
from voxflow.runtime.registry import FlowRegistry
from voxflow.runtime.server import FlowServer
from voxflow.sandbox.caller import CallEndedError, SimCall
from voxflow.sandbox.outbound import OutboundWebsocket
from voxflow.sandbox.server import Sandbox
from voxflow.telephony import session_events
from voxflow.telephony.app import VoxtraApp

FLOWS = Path(__file__).resolve().parents[2] / "flows"
_WAITS = re.compile(r"\b(timeout|interdigit|silence)(\s+)(\d+(?:\.\d+)?)(ms|s|m)\b")


async def say_after_prompt(call: SimCall, words: str, timeout: float = 30, **voice: Any) -> None:
    """Wait until the call's first prompt has been heard to its end (within ``timeout`` s), then
    say ``words`` (``voice``: ``SimCall.say``'s options); the flow may hang up meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    prompt = await call.wait_for("audio", timeout)
    while prompt.get("end") is None:  # the prompt is still being heard
        assert loop.time() < deadline, f"the first prompt did not end within {timeout} s"
        await asyncio.sleep(0.02)
        prompt = next(e for e in call.experience() if e["type"] == "audio")
    with contextlib.suppress(CallEndedError):  # the flow may hang up in its trailing silence
        await call.say(words, **voice)


def fast_flows(dest: Path, *, scale: float = 0.1, replace: dict[str, str] | None = None) -> Path:
    """Copy ``flows/`` to ``dest`` with every timeout/interdigit/silence scaled by ``scale``
    (never below 400 ms) and the literal substitutions of ``replace`` applied."""

    def short(m: re.Match[str]) -> str:
        unit = {"ms": 1, "s": 1000, "m": 60_000}[m.group(4)]
        ms = max(400, int(float(m.group(3)) * unit * scale))
        return f"{m.group(1)}{m.group(2)}{ms}ms"

    out = dest / "flows"
    shutil.copytree(FLOWS, out, ignore=shutil.ignore_patterns("tests"))
    for p in out.rglob("*.flow"):
        text = _WAITS.sub(short, p.read_text())
        for old, new in (replace or {}).items():
            text = text.replace(old, new)
        p.write_text(text)
    return out


@dataclass
class Env:
    """A sandbox with a FlowServer serving flows on it."""

    sb: Sandbox
    app: VoxtraApp
    server: FlowServer
    lines: dict[str, list[TranscriptLine]] = field(default_factory=dict)

    async def call(self, to: str, from_: str = "+15550100", **kw: Any) -> SimCall:
        return await self.sb.place_call(from_=from_, to=to, app="voxflow", **kw)

    async def result(self, call: SimCall, timeout: float = 60.0) -> End:
        """Wait until the flow's driver finished ``call``; its End (outcome, reason)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while call.id not in self.server.results:
            if loop.time() > deadline:
                raise TimeoutError(f"call {call.id} never finished: {self.said(call)}")
            await asyncio.sleep(0.02)
        return self.server.results[call.id]

    async def wait_line(self, call: SimCall, start: str, timeout: float = 30.0) -> None:
        """Wait until the call's transcript has a line starting with ``start``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not any(t.startswith(start) for _, _, t in self.lines.get(call.id, [])):
            if loop.time() > deadline:
                raise TimeoutError(f"no {start!r} in {self.lines.get(call.id)}")
            await asyncio.sleep(0.02)

    def said(self, call: SimCall, who: str = "flow") -> list[str]:
        return [text for _, w, text in self.lines.get(call.id, []) if w == who]

    def states(self, call: SimCall) -> list[str]:
        return [
            text[3:]
            for _, w, text in self.lines.get(call.id, [])
            if w == "system" and text[:3] == "-> "
        ]

    def kinds(self, call: SimCall) -> list[str]:
        return [e["type"] for e in call.experience()]


@asynccontextmanager
async def serving(
    paths: list[Path],
    *,
    settings: Settings | None = None,
    sandbox: dict[str, Any] | None = None,
    app: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
    mode: str = os.environ.get("VF_E2E_MODE", "classic"),
    http: bool = os.environ.get("VF_E2E_HTTP", "1") == "1",
    close_after_end: float = 0.1,
) -> AsyncIterator[Env]:
    """Serve ``paths`` on a fresh sandbox; at exit every call is over and every task stopped.

    ``mode``: ``persistent``/``per_call``: the sandbox connects out to the worker (Asterisk 22's
    outbound websockets), REST goes over those sockets; ``http=False``: the worker has no ARI
    URL at all (nothing can go over HTTP). Their defaults come from ``VF_E2E_MODE`` and
    ``VF_E2E_HTTP`` (``0``): ``VF_E2E_MODE=persistent VF_E2E_HTTP=0 pytest tests/e2e`` runs every
    example flow through Asterisk 22's outbound websockets with REST over the socket only.
    ``close_after_end``: s after a call's StasisEnd the sandbox closes its per-call socket."""
    reg = FlowRegistry()
    reg.load(paths)
    async with Sandbox(port=0, **(sandbox or {})) as sb:
        kw = dict(app or {})
        if mode != "classic":
            kw.update(mode=mode, listen=("127.0.0.1", 0))
        url = sb.ari_url if http or mode == "classic" else ""
        vapp = VoxtraApp(url, sb.user, sb.password, "voxflow", **kw)
        env: Env

        def sink(call_id: str, line: TranscriptLine) -> None:
            env.lines.setdefault(call_id, []).append(line)

        fs = FlowServer(
            vapp, reg, settings or Settings(grace_period=5), on_transcript=sink, **(server or {})
        )
        env = Env(sb, vapp, fs)
        stop = asyncio.Event()
        serve = asyncio.ensure_future(fs.serve(stop))
        try:
            if mode != "classic":
                await _connect_out(sb, vapp, mode, close_after_end)
            if mode != "per_call":
                await sb.wait_app("voxflow", 20)
            yield env
        finally:
            stop.set()
            await serve


async def _connect_out(sb: Sandbox, app: VoxtraApp, mode: str, close_after_end: float) -> None:
    """Point the sandbox's outbound websocket at the worker once it listens."""
    async with asyncio.timeout(20):
        while app.links is None or app.links.server.port == 0:  # noqa: ASYNC110 - start() binds
            await asyncio.sleep(0.01)
    sb.add_outbound_websocket(
        OutboundWebsocket(
            "voxflow",
            f"ws://127.0.0.1:{app.links.server.port}/voxflow",
            sb.user,
            sb.password,
            connection_type="per_call_config" if mode == "per_call" else "persistent",
            reconnect_interval=0.05,
            close_after_end=close_after_end,
        )
    )


async def until(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait until ``cond()`` holds (polled: the sandbox's caller has no event for it)."""
    async with asyncio.timeout(timeout):
        while not cond():  # noqa: ASYNC110 - the sandbox's caller has no event for this
            await asyncio.sleep(0.02)
    assert cond(), what


def key_dispatch(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """A flag, ``[True]`` while a caller's key (ChannelDtmfReceived) is being dispatched to
    its session: what a test reads to tell work done in the key's own callback."""
    in_key = [False]
    original = session_events.HANDLERS[ChannelDtmfReceived]

    def on_key(session: Any, event: ChannelDtmfReceived) -> None:
        in_key[0] = True
        try:
            original(session, event)
        finally:
            in_key[0] = False

    key: type[AriEvent] = ChannelDtmfReceived
    monkeypatch.setitem(session_events.HANDLERS, key, on_key)
    return in_key
