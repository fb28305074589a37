"""voxflow.telephony: CallSession, VoxtraApp, call state and recording sinks."""

from __future__ import annotations

from voxflow.telephony.app import VoxtraApp
from voxflow.telephony.recording import (
    CallbackSink,
    HttpUploadSink,
    LocalDirectorySink,
    RecordingMetadata,
    RecordingSink,
)
from voxflow.telephony.session import CallSession
from voxflow.telephony.state import CallDirection, CallMetadata, CallState
from voxflow.voice.call import BargeIn, CallVoice, PromptResult, VoiceContext

__all__ = [
    "BargeIn",
    "CallDirection",
    "CallMetadata",
    "CallSession",
    "CallState",
    "CallVoice",
    "CallbackSink",
    "HttpUploadSink",
    "LocalDirectorySink",
    "PromptResult",
    "RecordingMetadata",
    "RecordingSink",
    "VoiceContext",
    "VoxtraApp",
]
