"""voxflow: a call-flow language, its interpreter, and the ARI/RTP core under it.

The public names load on first access (PEP 562), so ``import voxflow.syntax`` or ``voxflow lint``
never imports the telephony stack (asyncio, aiohttp, websockets).
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
        RecordingNameTakenError,
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
    "RecordingNameTakenError",
    "RecordingSink",
    "VoxflowError",
    "VoxtraApp",
]
__version__ = "0.1.0"


def _home(name: str) -> ModuleType:
    """The module that defines public name ``name``."""
    if name == "AudioChunk":
        from voxflow.voice import chunk

        return chunk
    if name.endswith(("Error", "NotFound")):
        from voxflow import errors

        return errors
    from voxflow import (
        agent,  # noqa: F401  # imported for its effect: it wires call.agent
        telephony,
    )

    return telephony


def __getattr__(name: str) -> object:
    """Load a public name on first use (and keep it, so later reads are plain lookups)."""
    if name not in __all__:
        raise AttributeError(f"module 'voxflow' has no attribute {name!r}")
    value: object = getattr(_home(name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
