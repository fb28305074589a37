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
import subprocess
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
        # Popen, not asyncio.create_subprocess_exec: on Python 3.11 a task cancelled while that
        # spawn connects its pipes waits for them for ever (asyncio.run hung at shut-down)
        proc = subprocess.Popen(  # noqa: ASYNC220 (fork/exec is what asyncio's spawn does too, synchronously)
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        transport: asyncio.BaseTransport | None = None
        try:
            stdout, transport = await _reader(proc)
            rate, leftover = await _read_wav_header(stdout)
            if rate is None:
                raise _failure(proc, await _exit_code(proc), "produced no audio")
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
                data = await stdout.read(_READ)
                if not data:
                    break
            tail = resampler.process(b"", last=True)
            if tail:
                yield tail
            code = await _exit_code(proc)
            if code != 0:
                raise _failure(proc, code, f"exited with {code}")
        finally:
            if transport is not None:
                transport.close()
            _end(proc)


async def _reader(
    proc: subprocess.Popen[bytes],
) -> tuple[asyncio.StreamReader, asyncio.BaseTransport]:
    """An asyncio reader of ``proc``'s stdout (a pipe; the reader pauses it when full)."""
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(loop=loop)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), proc.stdout
    )
    return reader, transport


async def _exit_code(proc: subprocess.Popen[bytes]) -> int:
    """``proc``'s exit status once its stdout has ended (it exits right after)."""
    return await asyncio.to_thread(proc.wait, 10)


def _failure(proc: subprocess.Popen[bytes], code: int, what: str) -> ProviderError:
    """The error for a synthesis that failed, with espeak-ng's own message."""
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace").strip()  # the process has exited
    observe.provider_error("tts", "espeak-ng")
    return ProviderError(f"espeak-ng {what}: {err or f'exit status {code}'}")


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Kill ``proc`` if it still runs, reap it and close its pipes (never waits long: a killed
    process is gone within milliseconds)."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(2)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


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
