"""The call as the interpreter sees it: :class:`CallPort`, the one seam between
:class:`~voxflow.runtime.driver.CallDriver` and a call.

Exactly what the driver needs from a call: its identity and metadata, the AI providers it has,
the operations the flow's steps turn into, and originating a second call for a ``dial``.
:class:`~voxflow.telephony.session.CallSession` implements it over ARI; the flow-test simulator
(:mod:`voxflow.testing.sim`) implements it as a call in virtual time driven by a scripted
caller. Nothing else is probed: no ``getattr``, no private attributes, no error messages.

Errors an operation may raise, by type: :class:`~voxflow.errors.CallEndedError` (the call is
gone), :class:`~voxflow.errors.AiNotConfiguredError` (no TTS/STT/LLM for ``say``/``recognize``/an
agent), any other exception (the step fails with it, and the flow's error handler runs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from voxflow.telephony.dialplan import QueueReturn
from voxflow.telephony.recording import RecordingMetadata
from voxflow.telephony.state import CallDirection, CallMetadata
from voxflow.voice.call import AiProviders, BargeIn, PromptResult
from voxflow.voice.providers import Transcript

if TYPE_CHECKING:  # annotations only: importing the port does not load the agent
    from voxflow.agent.call_agent import CallAgent

__all__ = ["AgentHost", "CallPort", "PeerCall"]


class PeerCall(Protocol):
    """The other leg of a ``dial``: an outbound call that answered, or failed."""

    @property
    def ended(self) -> bool:
        """True once the leg has ended (it never answered, or hung up)."""
        ...

    @property
    def failure_reason(self) -> str | None:
        """Why it never answered ("busy", "no answer", ...); None when it answered."""
        ...

    async def wait_ended(self, timeout: float | None = None) -> None:
        """Wait until the leg hangs up."""
        ...

    async def hangup(self, reason: str = "normal") -> None:
        """Hang the leg up (no-op once ended)."""
        ...

    async def say(
        self, text: str, *, voice: str | None = None, barge_in: BargeIn | None = None
    ) -> PromptResult:
        """Speak ``text`` to the called party (a whisper before the legs are joined)."""
        ...

    async def send_dtmf(self, digits: str) -> None:
        """Send DTMF to the called party (``,`` pauses), e.g. through its own menu."""
        ...

    async def listen_dtmf(self, timeout: float = 5.0) -> str | None:
        """The called party's next key, or None after ``timeout`` seconds."""
        ...


P = TypeVar("P", bound=PeerCall)


class AgentHost(Protocol):
    """What an agent runner needs from the call: its id and its agent."""

    @property
    def id(self) -> str:
        """The call's id."""
        ...

    @property
    def agent(self) -> CallAgent:
        """The call's conversational agent; raises AiNotConfiguredError without an LLM."""
        ...


class CallPort(Protocol[P]):
    """One call, as the interpreter drives it. ``P`` is the type of the legs it originates."""

    @property
    def id(self) -> str:
        """The call's id (the ARI channel id on a real call)."""
        ...

    @property
    def caller_id(self) -> str:
        """The caller's number."""
        ...

    @property
    def called_number(self) -> str:
        """The number dialled."""
        ...

    @property
    def direction(self) -> CallDirection:
        """Inbound or outbound."""
        ...

    @property
    def metadata(self) -> CallMetadata:
        """Per-call data the flow reads and writes (``set call.metadata.x``)."""
        ...

    @property
    def ended(self) -> bool:
        """True once the call has ended."""
        ...

    @property
    def providers(self) -> AiProviders:
        """The LLM, STT and TTS this call can use (each None when not configured)."""
        ...

    @property
    def agent(self) -> CallAgent:
        """The call's conversational agent; raises AiNotConfiguredError without an LLM."""
        ...

    def on_hangup(self, callback: Callable[[], Any]) -> Callable[[], Any]:
        """Run ``callback()`` once when the call ends."""
        ...

    def add_dtmf_listener(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(digit)`` synchronously for every key the caller presses, and
        ``callback("")`` once when the call ends; returns the function that removes it."""
        ...

    async def answer(self) -> None:
        """Answer the call (no-op once answered)."""
        ...

    async def hangup(self, reason: str = "normal") -> None:
        """Hang up with an ARI reason (``normal``, ``busy``, ...)."""
        ...

    async def say(
        self, text: str, *, voice: str | None = None, barge_in: BargeIn | None = None
    ) -> PromptResult:
        """Speak ``text``; returns early when the caller barges in."""
        ...

    async def play_file(
        self, name: str, *, barge_in: BargeIn | None = None, lang: str | None = None
    ) -> PromptResult:
        """Play a sound file or URI; returns early when the caller barges in."""
        ...

    async def recognize(
        self,
        timeout: float = 10.0,
        *,
        phrases: Sequence[str] = (),
        min_confidence: float | None = None,
    ) -> Transcript | None:
        """The caller's next utterance, or None when nothing was said within ``timeout``;
        ``text`` "" when the caller spoke but nothing was recognised with ``min_confidence``
        (None: the speech-to-text's own threshold). ``confidence`` and ``alternatives`` are the
        recogniser's, when it gives them."""
        ...

    async def set_call_data(self, data: Sequence[tuple[str, str]]) -> None:
        """Set call data on the channel before it leaves (``VOXFLOW_META_<KEY>`` channel
        variables: what a ``carry`` map hands to the dialplan, the agent and the next flow)."""
        ...

    async def transfer_to(self, number: str) -> bool:
        """Blind transfer; returns once the call left (True; False when nothing says what
        became of it: per-call websockets, answered or the caller hung up is unknown), raises
        (e.g. ``TransferFailedError``) when the dialplan sent it back."""
        ...

    async def transfer_to_queue(
        self,
        name: str,
        *,
        timeout: float | None = None,
        music: str | None = None,
        priority: int | None = None,
        exit_keys: str = "",
        position: int | None = None,
    ) -> QueueReturn | None:
        """Queue the call in ``name`` until the dialplan's ``Queue()`` hands it back: Asterisk's
        ``QUEUESTATUS`` (``CONTINUE``, ``TIMEOUT``, ``FULL``...; see ``spec.semantics.QUEUE_STATUS``
        for the outcome) or ``EXITWITHKEY`` with the key, and ``QUEUEPOSITION``/``QUEUEWAIT``;
        None when the call left and nothing says what became of it (per-call websockets: not
        back in time; an agent may have it, or the caller hung up). ``exit_keys``: the step's
        keys (Asterisk decides by the queue's context; a simulation by them). ``position``: the
        place to join at (1 = next in line; ``Queue()``'s position argument), else the back. Raises
        ``CallEndedError`` if the caller hangs up meanwhile."""
        ...

    async def hold(self, moh_class: str | None = None) -> None:
        """Put the caller on hold (music on hold)."""
        ...

    async def unhold(self) -> None:
        """Take the caller off hold."""
        ...

    async def send_dtmf(self, digits: str) -> None:
        """Send DTMF to the far end."""
        ...

    async def record_start(
        self,
        name: str | None = None,
        *,
        format: str = "wav",
        max_duration: int | None = None,
        beep: bool = False,
        max_silence: int | None = None,
    ) -> str:
        """Start recording; returns the recording's name."""
        ...

    async def wait_recording(self) -> None:
        """Wait until the recording ends by itself (silence, max duration, the call ending)."""
        ...

    async def record_stop(self) -> RecordingMetadata:
        """Stop the recording and hand it to its sink; what the sink got."""
        ...

    async def transcribe(self, recording: RecordingMetadata) -> str:
        """The configured speech-to-text's text of a finished recording ("" when nothing was
        recognised); raises AiNotConfiguredError without one."""
        ...

    async def originate(
        self, endpoint: str, *, caller_id: str | None = None, timeout: int = 30
    ) -> P:
        """Dial ``endpoint`` and wait until it answers or fails (a failed leg is returned with
        ``failure_reason`` set, not raised)."""
        ...

    async def bridge_with(self, other: P) -> str:
        """Bridge this call with an answered leg; returns the bridge id."""
        ...
