"""A caller's spoken words as the offline recogniser receives them, for the speech tests."""

from __future__ import annotations

from voxflow.media import codecs
from voxflow.media.tts_espeak import EspeakTTS

__all__ = ["call_audio"]


async def call_audio(
    text: str, voice: str = "en-us", rate: int = 160, *, lead: int = 6400, tail: int = 12800
) -> bytes:
    """``text`` as a caller's 8 kHz mu-law leg delivers it, at 16 kHz: ``lead`` and ``tail``
    bytes of 8 kHz silence around it (by default the VAD's pauses: 400 ms before, 800 ms after)."""
    tts = EspeakTTS(voice=voice, rate=rate, sample_rate=8000)
    pcm = bytes(lead) + b"".join([c async for c in tts.synthesize(text)]) + bytes(tail)
    return codecs.resample(codecs.ulaw_decode(codecs.ulaw_encode(pcm)), 8000, 16000)
