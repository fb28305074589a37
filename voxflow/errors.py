"""The voxflow exception tree.

Every error voxflow raises on purpose derives from :class:`VoxflowError`.
Where a stdlib base fits, it is mixed in so callers can catch either::

    VoxflowError
    +-- ConfigError (ValueError)              bad settings, options, voxflow.toml
    +-- FlowError                             a flow that cannot be loaded
    |   +-- VoxflowSyntaxError (SyntaxError-like, carries diagnostics)
    |   +-- FlowCheckError                    the checker found errors
    +-- FlowRuntimeError                      a step failed while a call ran
    |   +-- TemplateError                     a prompt template failed to render
    |   +-- ExpressionError                   an expression failed to evaluate
    +-- AriError                              anything from the ARI layer
    |   +-- AriConnectionError (ConnectionError)
    |   |   +-- AriTimeoutError (TimeoutError)
    |   |   +-- LinkGoneError (CallEndedError) a call's websocket stayed down; the call ended here
    |   |   +-- LinkClosedError                a per-call websocket closed after its call: not sent
    |   +-- AriHTTPError                      a non-2xx answer; .status, .message
    |   |   +-- AriBadRequest (400)
    |   |   +-- AriUnauthorized (401)
    |   |   +-- AriForbidden (403)
    |   |   +-- AriNotFound (404)
    |   |   +-- AriConflict (409)             e.g. channel not in Stasis
    |   |   +-- AriPreconditionFailed (412)   channel in an invalid state
    |   |   +-- AriUnprocessable (422)
    |   |   +-- AriServerError (5xx)
    |   +-- ApplicationReplacedError          another client took our app name
    |   +-- AriEventInvalid (ValueError)      an event field failed validation when read
    +-- CallError                             a CallSession operation failed
    |   +-- CallEndedError                    the call is gone (hung up / failed)
    |   +-- PlaybackFailedError               PlaybackFinished with state "failed"
    |   +-- RecordingError
    |   +-- AiNotConfiguredError (RuntimeError)  no STT/TTS/LLM for what was asked
    |   +-- TransferFailedError               Asterisk sent a transferred call back; .status
    +-- MediaError                            RTP / codec / transport problems
    |   +-- RtpPacketError (ValueError)       a malformed or truncated RTP packet; .reason
    +-- ProviderError                         an STT/LLM/TTS provider failed
        +-- ProviderTimeoutError (TimeoutError)
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AiNotConfiguredError",
    "ApplicationReplacedError",
    "AriBadRequest",
    "AriConflict",
    "AriConnectionError",
    "AriError",
    "AriEventInvalid",
    "AriForbidden",
    "AriHTTPError",
    "AriNotFound",
    "AriPreconditionFailed",
    "AriServerError",
    "AriTimeoutError",
    "AriUnauthorized",
    "AriUnprocessable",
    "CallDroppedError",
    "CallEndedError",
    "CallError",
    "ConfigError",
    "ExpressionError",
    "FlowCheckError",
    "FlowError",
    "FlowRuntimeError",
    "LinkClosedError",
    "LinkGoneError",
    "MediaError",
    "PlaybackFailedError",
    "ProviderError",
    "ProviderTimeoutError",
    "RecordingError",
    "RecordingNameTakenError",
    "RtpPacketError",
    "TemplateError",
    "TransferFailedError",
    "VoxflowError",
    "VoxflowSyntaxError",
]


class VoxflowError(Exception):
    """Base of every error voxflow raises on purpose."""


class ConfigError(VoxflowError, ValueError):
    """Invalid configuration (CLI options, environment, voxflow.toml, provider settings)."""


class FlowError(VoxflowError):
    """A flow could not be loaded."""


class VoxflowSyntaxError(FlowError):
    """A .flow file does not parse. ``line``/``column`` are 1-based."""

    def __init__(self, message: str, *, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


class FlowCheckError(FlowError):
    """The checker reported errors; ``diagnostics`` holds them."""

    def __init__(self, message: str, diagnostics: Sequence[object] | None = None) -> None:
        super().__init__(message)
        self.diagnostics: list[object] = list(diagnostics or ())


class FlowRuntimeError(VoxflowError):
    """A step failed while a call was running."""


class TemplateError(FlowRuntimeError):
    """A prompt template failed to render (undefined name, sandbox violation)."""


class ExpressionError(FlowRuntimeError):
    """An expression failed to evaluate."""


class AriError(VoxflowError):
    """Anything from the ARI layer."""


class AriConnectionError(AriError, ConnectionError):
    """Asterisk could not be reached."""


class AriTimeoutError(AriConnectionError, TimeoutError):
    """A request to Asterisk timed out."""


class AriHTTPError(AriError):
    """ARI answered with a non-2xx status."""

    def __init__(self, status: int, message: str, *, method: str = "", path: str = "") -> None:
        where = f" ({method} {path})" if method else ""
        super().__init__(f"ARI {status}: {message}{where}")
        self.status = status
        self.message = message
        self.method = method
        self.path = path


class AriBadRequest(AriHTTPError):
    """400."""


class AriUnauthorized(AriHTTPError):
    """401: wrong ARI user or password."""


class AriForbidden(AriHTTPError):
    """403."""


class AriNotFound(AriHTTPError):
    """404: channel, bridge, playback or recording not found."""


class AriConflict(AriHTTPError):
    """409: e.g. channel not in a Stasis application."""


class AriPreconditionFailed(AriHTTPError):
    """412: channel in an invalid state."""


class AriUnprocessable(AriHTTPError):
    """422."""


class AriServerError(AriHTTPError):
    """5xx."""


class ApplicationReplacedError(AriError):
    """Another client connected with our application name."""


class AriEventInvalid(AriError, ValueError):
    """An ARI event's field failed validation when first read (events are validated lazily)."""


class CallError(VoxflowError):
    """A CallSession operation failed."""


class CallEndedError(CallError):
    """The call has ended (hung up or failed)."""


class CallDroppedError(CallEndedError):
    """The dialplan hung the call up right after it left the app: the context, extension or
    priority of the ``continue`` is not there (ChannelDestroyed cause 0 "Unknown"). The caller
    did not hang up and nobody took the call."""


class LinkClosedError(AriConnectionError):
    """A request for a per-call ARI app whose call is over here and whose outbound websocket is
    closed (Asterisk closes it 3 s after the call's StasisEnd and never re-opens it): nothing was
    sent, and no retry can send it (in that mode the socket is the only way to Asterisk)."""


class LinkGoneError(AriConnectionError, CallEndedError):
    """A request waited for its call's outbound websocket to come back, and the call ended here
    meanwhile instead (not re-connected within the grace, or let go to the worker that adopted
    it): nothing was sent. A ``CallEndedError``: the flow treats it as the call's end, not as a
    failed step."""


class TransferFailedError(CallError):
    """The dialplan sent a transferred call back into the app: ``status`` is ``INVALID`` (no
    extension routes the target) or the ``DIALSTATUS`` of its ``Dial()`` (BUSY, NOANSWER...)."""

    def __init__(self, target: str, status: str) -> None:
        super().__init__(f"transfer to {target!r} failed: {status or 'not routed'}")
        self.target = target
        self.status = status


class PlaybackFailedError(CallError):
    """A playback finished with state 'failed'."""


class RecordingError(CallError):
    """A recording failed or could not be delivered to its sink."""


class RecordingNameTakenError(RecordingError):
    """Asterisk refused a recording's name (409): a live recording has it, or a stored one
    and ``ifExists=fail``."""


class AiNotConfiguredError(CallError, RuntimeError):
    """The call was asked to speak, listen or converse without the AI provider it needs.

    Also a ``RuntimeError`` with the message ``"AI pipeline not configured"`` (the seed API's
    contract); code decides on the type, never on the message."""

    def __init__(self, message: str = "AI pipeline not configured") -> None:
        super().__init__(message)


class MediaError(VoxflowError):
    """RTP, codec or media transport problem."""


class RtpPacketError(MediaError, ValueError):
    """A malformed or truncated RTP packet. ``reason`` is a short stable key for counters."""

    def __init__(self, message: str, *, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


class ProviderError(VoxflowError):
    """An STT, LLM or TTS provider failed."""


class ProviderTimeoutError(ProviderError, TimeoutError):
    """A provider did not answer in time."""
