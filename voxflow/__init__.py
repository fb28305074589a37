"""voxflow: a call-flow language, its interpreter, and the ARI/RTP core under it."""

from __future__ import annotations

from voxflow.errors import (
    ApplicationReplacedError,
    AriConnectionError,
    AriError,
    AriHTTPError,
    AriNotFound,
    AriTimeoutError,
    CallEndedError,
    CallError,
    ConfigError,
    PlaybackFailedError,
    RecordingError,
    VoxflowError,
)
from voxflow.telephony import (
    BargeIn,
    CallbackSink,
    CallDirection,
    CallSession,
    CallState,
    HttpUploadSink,
    LocalDirectorySink,
    PromptResult,
    RecordingMetadata,
    RecordingSink,
    VoxtraApp,
)
from voxflow.voice.chunk import AudioChunk

__all__: list[str] = [
    "ApplicationReplacedError",
    "AriConnectionError",
    "AriError",
    "AriHTTPError",
    "AriNotFound",
    "AriTimeoutError",
    "AudioChunk",
    "BargeIn",
    "CallDirection",
    "CallEndedError",
    "CallError",
    "CallSession",
    "CallState",
    "CallbackSink",
    "ConfigError",
    "HttpUploadSink",
    "LocalDirectorySink",
    "PlaybackFailedError",
    "PromptResult",
    "RecordingError",
    "RecordingMetadata",
    "RecordingSink",
    "VoxflowError",
    "VoxtraApp",
]
__version__ = "0.1.0"
