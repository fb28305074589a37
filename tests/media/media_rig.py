"""The sandbox rig the media tests share (``sandbox_rig.open_app_rig`` with offline TTS and STT)
and helpers to recognise and inspect what the caller heard.

``open_rig()`` yields a :class:`Rig`; on exit it hangs up what is left and asserts that nothing
is left behind (channels, bridges, our sockets and ports, the pacer's streams). The ``rig``
fixture (``conftest.py``) wraps it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
from sandbox_rig import AppRig, CallBody, open_app_rig
from shared_stt import shared_stt

from voxflow.errors import CallEndedError
from voxflow.media import codecs
from voxflow.media.stt_pocketsphinx import PocketSphinxSTT
from voxflow.media.transport import PortRange
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.sandbox.caller import SimCall

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
Rig = AppRig


@contextlib.asynccontextmanager
async def open_rig(**sandbox_options: Any) -> AsyncIterator[Rig]:
    """A started rig with espeak-ng TTS and pocketsphinx STT (``sandbox_options`` go to the
    Sandbox)."""
    rig = open_app_rig(
        PortRange(),
        sandbox_options=sandbox_options,
        tts=EspeakTTS(sample_rate=8000),
        stt=shared_stt(),
    )
    async with rig as r:
        yield r


_ORACLE = PocketSphinxSTT(max_decoders=1)
"""The tests' own ear (not an app's): one per worker process, so its decoder (~0.5 s of CPU) is
built once, not at every check; each recognition starts it afresh. One is all it uses: its
recognitions ask for no decision (threshold 0: the grammar search alone, no phone loop or check)
and run one at a time (a default pool built two more that never decoded)."""


def recognise(pcm8k: bytes, phrases: list[str] = PHRASES) -> Awaitable[str]:
    """What pocketsphinx (phrase grammar) hears in 8 kHz pcm16."""

    async def run() -> str:
        stream = await _ORACLE.open_stream(phrases=phrases)
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


async def line_quiet(sim: SimCall, timeout: float = 10.0) -> float:
    """Wait until the caller hears nothing (no audio segment open); the end of the last one."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        audio = entries(sim, "audio")
        if audio and all(e["end"] is not None for e in audio):
            return float(audio[-1]["end"])
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"the caller still hears audio after {timeout} s: {audio}")
        await asyncio.sleep(0.02)


async def speak(sim: SimCall, text: str) -> None:
    """The caller says ``text``; the app may hang up before the caller finishes."""
    with contextlib.suppress(CallEndedError):
        await sim.say(text)


def listening(calls: list[Any]) -> Callable[[], bool]:
    """A predicate for :func:`until`: the first of ``calls`` (CallSessions a body appended) has
    its media up and a listen watching it, so what the caller says now is heard from its start
    (a fixed sleep before speaking lost the first words when media set-up ran late)."""

    def ready() -> bool:
        voice = calls[0]._voice if calls else None
        if voice is None or not getattr(voice, "_watchers", None) or voice.socket is None:
            return False
        return bool(voice.socket.stats.received >= 10)  # 200 ms of the line: the path is up

    return ready


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait until ``predicate()`` holds (polling every 20 ms); fail after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


def until_stopped(pcm16: bytes, after_ms: int = 60, rate: int = 16000) -> bytes:
    """``pcm16`` up to ``after_ms`` after its last sample above -40 dBFS: what a listener hands a
    recogniser before its endpointer ends an utterance that never settled. (Where both searches
    hear the caller stop, a stream with a streaming phone loop holds the audio after back, which
    a phone loop run at ``finish`` over the kept audio cannot: compare the two on this.)"""
    loud = np.nonzero(np.abs(np.frombuffer(pcm16, "<i2").astype(np.int32)) > 328)[0]
    end = (int(loud[-1]) + 1 if len(loud) else 0) + rate * after_ms // 1000
    return pcm16[: end * 2]
