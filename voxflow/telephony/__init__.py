"""voxflow.telephony: CallSession, VoxtraApp, call state and recording sinks.

The public names load on first access (PEP 562), so the runtime's imports of the light modules
(``telephony.state``, ``telephony.dialplan``, ``telephony.recording``) do not load ``VoxtraApp``
with the ARI client, aiohttp and the media path (``voxflow test`` runs in virtual time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

_RECORDING = frozenset(
    {"CallbackSink", "HttpUploadSink", "LocalDirectorySink", "RecordingMetadata", "RecordingSink"}
)
_STATE = frozenset({"CallDirection", "CallMetadata", "CallState"})


def _load(name: str) -> object:
    """The public name ``name`` from the module that defines it."""
    if name == "VoxtraApp":
        from voxflow.telephony.app import VoxtraApp

        return VoxtraApp
    if name == "CallSession":
        from voxflow.telephony.session import CallSession

        return CallSession
    if name in _RECORDING:
        from voxflow.telephony import recording

        return getattr(recording, name)
    if name in _STATE:
        from voxflow.telephony import state

        return getattr(state, name)
    from voxflow.voice import call

    return getattr(call, name)


def __getattr__(name: str) -> object:
    """Load a public name on first use (and keep it, so later reads are plain lookups)."""
    if name not in __all__:
        raise AttributeError(f"module 'voxflow.telephony' has no attribute {name!r}")
    value = _load(name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
