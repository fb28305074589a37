"""Offline text-to-speech with the espeak-ng binary (Debian package ``espeak-ng``).

espeak-ng runs as an asyncio subprocess with ``--stdout``: it writes a WAV header (with a
placeholder length, since stdout is a pipe) and then pcm16 as it synthesises, sentence by
sentence. :class:`EspeakTTS` parses the header and yields pcm16 as it arrives, resampled (with a
streaming soxr filter) from espeak's native rate (22050 Hz) to ``sample_rate``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import struct
from collections.abc import AsyncIterator

from voxflow import observe
from voxflow.errors import ConfigError, ProviderError
from voxflow.media.codecs import Resampler

__all__ = ["EspeakTTS"]

log = logging.getLogger(__name__)

_READ = 4096


class EspeakTTS:
    """``TextToSpeech`` on espeak-ng. ``voice`` is an espeak voice name (``en-us``, ``en``,
    ``fr``...), ``rate`` words per minute (80-450), ``pitch`` 0-99."""

    def __init__(
        self,
        *,
        voice: str = "en-us",
        rate: int = 160,
        pitch: int = 50,
        sample_rate: int = 16000,
        binary: str = "espeak-ng",
    ) -> None:
        if not 80 <= rate <= 450:
            raise ConfigError(f"espeak-ng rate must be 80-450 words per minute, not {rate}")
        if not 0 <= pitch <= 99:
            raise ConfigError(f"espeak-ng pitch must be 0-99, not {pitch}")
        if sample_rate <= 0:
            raise ConfigError(f"bad sample rate {sample_rate}")
        path = shutil.which(binary)
        if path is None:
            raise ConfigError(
                f"{binary!r} not found: install espeak-ng (apt-get install espeak-ng) "
                "or configure another TTS provider"
            )
        self.binary = path
        self.voice = voice
        self.rate = rate
        self.pitch = pitch
        self.sample_rate = sample_rate

    async def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
        """Yield pcm16 at ``sample_rate`` while espeak-ng produces it."""
        if not text.strip():
            return
        args = [
            self.binary,
            "--stdout",
            "-v",
            voice or self.voice,
            "-s",
            str(self.rate),
            "-p",
            str(self.pitch),
            "--",
            text,
        ]
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        try:
            rate, leftover = await _read_wav_header(proc.stdout)
            if rate is None:
                err = (await proc.stderr.read()).decode(errors="replace").strip()
                await proc.wait()
                observe.provider_error("tts", "espeak-ng")
                raise ProviderError(f"espeak-ng produced no audio: {err or 'no output'}")
            resampler = Resampler(rate, self.sample_rate)
            odd = b""
            data = leftover
            while True:
                if data:
                    data = odd + data
                    cut = len(data) - len(data) % 2
                    odd = data[cut:]
                    out = resampler.process(data[:cut])
                    if out:
                        yield out
                data = await proc.stdout.read(_READ)
                if not data:
                    break
            tail = resampler.process(b"", last=True)
            if tail:
                yield tail
            code = await proc.wait()
            if code != 0:
                err = (await proc.stderr.read()).decode(errors="replace").strip()
                observe.provider_error("tts", "espeak-ng")
                raise ProviderError(f"espeak-ng exited with {code}: {err}")
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                # communicate(), not wait(): on Python 3.11 wait() also waits for the pipes to
                # close, and a stdout reader paused on a full buffer never sees its end
                await proc.communicate()


async def _read_wav_header(stream: asyncio.StreamReader) -> tuple[int | None, bytes]:
    """Read RIFF/WAVE chunks up to ``data``; return (sample rate, bytes after the header)."""
    try:
        head = await stream.readexactly(12)
    except asyncio.IncompleteReadError:
        return None, b""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ProviderError("espeak-ng output is not a WAV stream")
    rate: int | None = None
    while True:
        try:
            chunk = await stream.readexactly(8)
        except asyncio.IncompleteReadError:
            return None, b""
        cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if cid == b"data":
            return rate, b""
        body = await stream.readexactly(size + (size & 1))
        if cid == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if fmt != 1 or channels != 1 or bits != 16:
                raise ProviderError(f"unexpected espeak-ng WAV format {fmt}/{channels}ch/{bits}b")
