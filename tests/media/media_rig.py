"""The sandbox rig the media tests share: an embedded PBX, a real ``VoxtraApp`` whose handler runs
a per-number test body for each call, and helpers to recognise and inspect what the caller heard.

``open_rig()`` yields a :class:`Rig`; on exit it hangs up what is left and asserts that nothing
is left behind (channels, bridges, our sockets and ports, the pacer's streams). The ``rig``
fixture (``conftest.py``) wraps it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxflow.errors import CallEndedError
from voxflow.media import codecs
from voxflow.media.callmedia import CallMedia
from voxflow.media.pacer import shared_pacer
from voxflow.media.stt_pocketsphinx import PocketSphinxSTT
from voxflow.media.transport import PortRange
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.sandbox import Sandbox
from voxflow.sandbox.caller import SimCall
from voxflow.telephony.app import VoxtraApp
from voxflow.telephony.session import CallSession

__all__ = [
    "LONG_PROMPT",
    "PHRASES",
    "CallBody",
    "Rig",
    "audible",
    "entries",
    "open_rig",
    "recognise",
    "speak",
    "until",
]

PHRASES = ["check my balance", "talk to an agent", "pay my bill", "operator"]
LONG_PROMPT = "This is a long announcement about our opening hours and our services. " * 6
CallBody = Callable[[CallSession], Awaitable[Any]]


@dataclass
class Rig:
    """A sandbox, an app whose handler runs the body registered for the dialled number, and the
    handlers' results (in the order they finish)."""

    sb: Sandbox
    app: VoxtraApp
    ports: PortRange
    bodies: dict[str, CallBody] = field(default_factory=dict)
    results: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    voices: list[CallMedia] = field(default_factory=list)

    async def call(self, body: CallBody, *, to: str = "100") -> SimCall:
        """Place a call to ``to`` handled by ``body``; returns once the app answered it."""
        self.bodies[to] = body
        sim = await self.sb.place_call(from_="+15550001111", to=to, app="voxflow")
        await sim.wait_answered(20)
        return sim

    async def result(self, timeout: float = 40.0) -> Any:
        got = await asyncio.wait_for(self.results.get(), timeout)
        if isinstance(got, BaseException):
            raise got
        return got


@contextlib.asynccontextmanager
async def open_rig() -> AsyncIterator[Rig]:
    """A started rig; checks on exit that every call left nothing behind."""
    ports = PortRange(41000, 41099)
    async with Sandbox(port=0) as sb:
        app = VoxtraApp(
            sb.ari_url,
            sb.user,
            sb.password,
            "voxflow",
            tts=EspeakTTS(sample_rate=8000),
            stt=PocketSphinxSTT(),
            media_options={"rtp_ports": ports},
        )
        r = Rig(sb, app, ports)

        @app.default()
        async def handler(call: CallSession) -> None:
            await call.answer()
            try:
                out = await r.bodies[call.called_number](call)
            except Exception as exc:  # surfaced to the test by Rig.result
                r.results.put_nowait(exc)
                raise
            finally:
                if isinstance(call._voice, CallMedia):
                    r.voices.append(call._voice)
            r.results.put_nowait(out)

        async with app:
            await sb.wait_app("voxflow", 20)
            yield r
            for sim in list(sb.calls.values()):
                await sim.hangup()
            for _ in range(200):  # the handler's cleanup runs on StasisEnd
                if not app.sessions:
                    break
                await asyncio.sleep(0.05)
        # Teardown leaves nothing behind: channels, bridges, our sockets and ports, the pacer.
        assert sb.pbx.channels == {}
        assert sb.pbx.bridges == {}
        assert ports.in_use == frozenset()
        assert all(v.socket is None or v.socket.closed for v in r.voices)
        assert shared_pacer().streams == 0


def recognise(pcm8k: bytes, phrases: list[str] = PHRASES) -> Awaitable[str]:
    """What pocketsphinx (phrase grammar) hears in 8 kHz pcm16."""

    async def run() -> str:
        stream = await PocketSphinxSTT().open_stream(phrases=phrases)
        await stream.feed(codecs.resample(pcm8k, 8000, 16000))
        text = (await stream.finish()).text
        await stream.aclose()
        return text

    return run()


def audible(pcm8k: bytes, pad_s: float = 0.3) -> bytes:
    """The audible span of what the caller heard (long leading digital silence defeats
    pocketsphinx's batch normalisation), with ``pad_s`` of context either side."""
    a = np.frombuffer(pcm8k, "<i2")
    loud = np.nonzero(np.abs(a) > 200)[0]
    if not len(loud):
        return b""
    pad = int(pad_s * 8000)
    return a[max(0, loud[0] - pad) : loud[-1] + pad].tobytes()


def entries(sim: SimCall, kind: str) -> list[dict[str, Any]]:
    """The caller's experience entries of one kind, in order."""
    return [e for e in sim.experience() if e["type"] == kind]


async def speak(sim: SimCall, text: str) -> None:
    """The caller says ``text``; the app may hang up before the caller finishes."""
    with contextlib.suppress(CallEndedError):
        await sim.say(text)


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait until ``predicate()`` holds (polling every 20 ms); fail after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)
