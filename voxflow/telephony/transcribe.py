"""Transcribe a finished recording with the app's speech-to-text (pocketsphinx offline by
default): the WAV is fetched over ARI, converted to the engine's rate and streamed through it
in 20 ms chunks, as the engine hears a caller."""

from __future__ import annotations

import io
import wave

from voxflow.errors import RecordingError
from voxflow.media.codecs import resample
from voxflow.telephony.recording import RecordingMetadata
from voxflow.voice.providers import SpeechToText

__all__ = ["transcribe_recording", "wav_pcm16"]


def wav_pcm16(data: bytes) -> tuple[bytes, int]:
    """(mono pcm16, sample rate) of a WAV file; RecordingError for anything else."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            if w.getsampwidth() != 2:
                raise RecordingError("only 16-bit WAV recordings can be transcribed")
            frames = w.readframes(w.getnframes())
            channels, rate = w.getnchannels(), w.getframerate()
    except (wave.Error, EOFError) as exc:
        raise RecordingError(f"not a WAV recording: {exc}") from None
    if channels != 1:
        raise RecordingError("only mono recordings can be transcribed")
    return frames, rate


async def transcribe_recording(
    recording: RecordingMetadata, stt: SpeechToText, *, language: str | None = None
) -> str:
    """The text ``stt`` recognises in ``recording`` ("" when nothing)."""
    if recording.format != "wav":
        raise RecordingError(f"cannot transcribe a {recording.format} recording (record as wav)")
    pcm, rate = wav_pcm16(await recording.read())
    if rate != stt.sample_rate:
        pcm = resample(pcm, rate, stt.sample_rate)
    chunk = stt.sample_rate * 2 // 50  # 20 ms of pcm16
    stream = await stt.open_stream(language=language)
    try:
        for i in range(0, len(pcm), chunk):
            await stream.feed(pcm[i : i + chunk])
        result = await stream.finish()
    finally:
        await stream.aclose()
    return result.text.strip()
