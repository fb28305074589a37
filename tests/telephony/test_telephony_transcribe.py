"""A finished recording transcribed with the offline speech-to-text (pocketsphinx): the WAV is
read, resampled to the engine's rate and streamed through it."""

from __future__ import annotations

import io
import subprocess
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest
from shared_stt import shared_stt

from voxflow.errors import RecordingError
from voxflow.media.stt_pocketsphinx import PocketSphinxSTT
from voxflow.telephony.recording import RecordingMetadata
from voxflow.telephony.transcribe import transcribe_recording


def _meta(data: bytes, fmt: str = "wav") -> RecordingMetadata:
    async def fetch() -> bytes:
        return data

    now = datetime.now(UTC)
    return RecordingMetadata("vm-1", "c1", fmt, now, now, _fetch=fetch)


@pytest.fixture
def spoken_wav(tmp_path: Path) -> bytes:
    """A 22.05 kHz WAV (resampled to the engine's 16 kHz) of espeak-ng saying a message."""
    path = tmp_path / "msg.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(path), "please call me back tomorrow"], check=True, timeout=30
    )
    return path.read_bytes()


async def test_speech_in_a_recording_is_transcribed(spoken_wav: bytes) -> None:
    stt = shared_stt()  # the process's recogniser: its decoders are built once (tests/shared_stt)
    text = await transcribe_recording(_meta(spoken_wav), stt)
    assert "tomorrow" in text
    stats = stt.stats()
    assert stats.free == stats.built  # the transcription gave its decoders back


async def test_recordings_it_cannot_read_are_errors() -> None:
    with pytest.raises(RecordingError, match="record as wav"):
        await transcribe_recording(_meta(b"", "gsm"), PocketSphinxSTT())
    with pytest.raises(RecordingError, match="not a WAV"):
        await transcribe_recording(_meta(b"RIFF...."), PocketSphinxSTT())
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 160)
    with pytest.raises(RecordingError, match="mono"):
        await transcribe_recording(_meta(buf.getvalue()), PocketSphinxSTT())
