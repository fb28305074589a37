"""Stored recordings on disk, kept as Asterisk keeps them: where a named recording lives (its
path rules), finding one in any format, reading it as 8 kHz pcm16, writing one in a format."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .audio import _read_wav, decode_payload, encode_frame, wav_bytes
from .model import RestError

__all__ = ["RECORDING_FORMATS", "recording_file", "stored_path", "stored_pcm", "write_recording"]

RECORDING_FORMATS = ("wav", "wav16", "sln", "sln16", "ulaw", "alaw")


def recording_file(recordings_dir: Path, name: str, fmt: str) -> Path:
    """Where recording ``name`` in format ``fmt`` lives: like Asterisk, the name is appended to
    the recordings directory (``/x`` becomes ``<dir>//x``, inside it) and a name whose directory
    resolves outside it (``../../x``, a symlink out) is refused: 400 "Recording name invalid"
    (``ast_safe_mkdir``'s EPERM)."""
    base = os.path.realpath(recordings_dir)
    path = os.path.normpath(f"{base}/{name}.{fmt}")
    parent = os.path.realpath(os.path.dirname(path))
    if "\x00" in name or os.path.commonpath([parent, base]) != base:
        raise RestError(400, "Recording name invalid")
    return Path(path)


def stored_path(recordings_dir: Path, name: str) -> Path | None:
    """The file of stored recording ``name``, in whichever format it has; None if none."""
    if not name:
        return None
    for fmt in RECORDING_FORMATS:
        try:
            p = recording_file(recordings_dir, name, fmt)
        except RestError:
            return None
        if p.is_file():
            return p
    return None


def stored_pcm(recordings_dir: Path, name: str) -> bytes | None:
    """8 kHz pcm16 of a stored recording (wav/sln/ulaw/alaw)."""
    p = stored_path(recordings_dir, name)
    if p is None:
        return None
    data, fmt = p.read_bytes(), p.suffix[1:]
    if fmt in ("wav", "wav16"):
        return _read_wav(data).astype("<i2").tobytes()
    if fmt == "sln":
        return data
    if fmt == "sln16":
        return np.frombuffer(data, dtype="<i2")[::2].astype("<i2").tobytes()
    return decode_payload(data, fmt).astype("<i2").tobytes()


def write_recording(recordings_dir: Path, name: str, fmt: str, pcm: bytes) -> None:
    """Store 8 kHz pcm16 ``pcm`` as recording ``name`` in ``fmt`` (replacing it in any format)."""
    recordings_dir.mkdir(parents=True, exist_ok=True)
    for other in RECORDING_FORMATS:
        old = recording_file(recordings_dir, name, other)
        if old.exists():
            old.unlink()
    path = recording_file(recordings_dir, name, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.frombuffer(pcm, dtype="<i2")
    if fmt == "wav":
        data = wav_bytes(pcm)
    elif fmt in ("wav16", "sln16"):
        wide = np.repeat(arr, 2).astype("<i2").tobytes()
        data = wav_bytes(wide, 16000) if fmt == "wav16" else wide
    elif fmt == "sln":
        data = pcm
    else:
        data = encode_frame(arr.astype(np.int16), fmt) if len(arr) else b""
    path.write_bytes(data)
