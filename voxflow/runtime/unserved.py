"""The end of a call whose channel ended while no worker served it (cluster mode).

A worker killed between seeing the caller's hang-up and claiming the call's end leaves the call
in the registry with its last checkpoint and no channel. The worker that reaps it
(:meth:`voxflow.cluster.state.ClusterState.reap`) runs the call's end from that checkpoint, as
if the caller had hung up in the checkpointed state: outcome ``caller_hangup`` (reason
``caller``; the outcome its worker recorded with its end claim when it died after claiming:
:class:`~voxflow.runtime.checkpoint.Ending`), that state's ``on hangup`` body (its steps that
need the call fail with "call ended", as they do after any hang-up), and the ``call.ended``
webhook; the end claim makes it happen once across the cluster. :class:`EndedCall` is the
:class:`~voxflow.runtime.port.CallPort` of such a call: every operation raises
:class:`~voxflow.errors.CallEndedError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from voxflow.errors import AiNotConfiguredError, CallEndedError
from voxflow.runtime.checkpoint import Checkpoint
from voxflow.runtime.port import PeerCall
from voxflow.telephony.dialplan import QueueReturn
from voxflow.telephony.recording import RecordingMetadata
from voxflow.telephony.state import CallDirection, CallMetadata
from voxflow.voice.call import AiProviders, BargeIn, PromptResult
from voxflow.voice.providers import Transcript

if TYPE_CHECKING:  # annotations only: an unserved call has no agent
    from voxflow.agent.call_agent import CallAgent

__all__ = ["EndedCall"]


class EndedCall:
    """A call already over: its identity from the checkpoint, no providers, no operations. A
    driver on it sees the call end as soon as it listens (``add_dtmf_listener`` reports the end
    at once)."""

    def __init__(self, call_id: str, cp: Checkpoint | None = None) -> None:
        self._id = call_id
        info = cp.call if cp is not None and len(cp.call) == 3 else ("", "", "inbound")
        self._caller, self._called = info[0], info[1]
        outbound = info[2] == "outbound"
        self._direction = CallDirection.OUTBOUND if outbound else CallDirection.INBOUND
        self._metadata = CallMetadata()
        self._providers = AiProviders(None, None, None)

    @property
    def id(self) -> str:
        return self._id

    @property
    def caller_id(self) -> str:
        return self._caller

    @property
    def called_number(self) -> str:
        return self._called

    @property
    def direction(self) -> CallDirection:
        return self._direction

    @property
    def metadata(self) -> CallMetadata:
        return self._metadata

    @property
    def ended(self) -> bool:
        return True

    @property
    def providers(self) -> AiProviders:
        return self._providers

    @property
    def agent(self) -> CallAgent:
        raise AiNotConfiguredError("AI pipeline not configured")

    def on_hangup(self, callback: Callable[[], Any]) -> Callable[[], Any]:
        """The call has ended: ``callback`` runs on the next loop turn."""
        asyncio.get_running_loop().call_soon(callback)
        return callback

    def add_dtmf_listener(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Reports the call's end (``callback("")``) at once; no key ever comes."""
        callback("")
        return lambda: None

    def _gone(self) -> CallEndedError:
        return CallEndedError(f"call {self._id} has ended")

    async def answer(self) -> None:
        raise self._gone()

    async def hangup(self, reason: str = "normal") -> None:
        """Nothing to hang up."""

    async def say(
        self, text: str, *, voice: str | None = None, barge_in: BargeIn | None = None
    ) -> PromptResult:
        raise self._gone()

    async def play_file(
        self, name: str, *, barge_in: BargeIn | None = None, lang: str | None = None
    ) -> PromptResult:
        raise self._gone()

    async def recognize(
        self,
        timeout: float = 10.0,
        *,
        phrases: Sequence[str] = (),
        min_confidence: float | None = None,
    ) -> Transcript | None:
        raise self._gone()

    async def set_call_data(self, data: Sequence[tuple[str, str]]) -> None:
        raise self._gone()

    async def transfer_to(self, number: str) -> bool:
        raise self._gone()

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
        raise self._gone()

    async def hold(self, moh_class: str | None = None) -> None:
        raise self._gone()

    async def unhold(self) -> None:
        raise self._gone()

    async def send_dtmf(self, digits: str) -> None:
        raise self._gone()

    async def record_start(
        self,
        name: str | None = None,
        *,
        format: str = "wav",
        max_duration: int | None = None,
        beep: bool = False,
        max_silence: int | None = None,
    ) -> str:
        raise self._gone()

    async def wait_recording(self) -> None:
        raise self._gone()

    async def record_stop(self) -> RecordingMetadata:
        raise self._gone()

    async def transcribe(self, recording: RecordingMetadata) -> str:
        raise self._gone()

    async def originate(
        self, endpoint: str, *, caller_id: str | None = None, timeout: int = 30
    ) -> PeerCall:
        raise self._gone()

    async def bridge_with(self, other: PeerCall) -> str:
        raise self._gone()
