"""One call's recording in progress: its state while Asterisk records, and how it ends.

:class:`ActiveRecording` is what ``CallSession.record_start`` creates. ARI events close it
(:meth:`ActiveRecording.finished`); :meth:`ActiveRecording.finish` stops it if it is still
running, waits for that, builds the :class:`RecordingMetadata` and hands it to the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from voxflow.errors import AriError, AriNotFound, RecordingError
from voxflow.telephony.recording import RecordingMetadata, RecordingSink

if TYPE_CHECKING:
    from voxflow.ari.rest import AriRestClient

__all__ = ["ActiveRecording", "auto_recording_name"]

log = logging.getLogger(__name__)


def auto_recording_name(call_id: str) -> str:
    """A unique, safe recording name for ``call_id`` (``vf-<call>-<UTC stamp>-<random>``)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    base = re.sub(r"[^A-Za-z0-9_-]", "-", call_id)[:48]
    return f"vf-{base}-{stamp}-{uuid.uuid4().hex[:6]}"


class ActiveRecording:
    """A recording of ``target`` (``channel:<id>`` or ``bridge:<id>``) named ``name``."""

    def __init__(self, name: str, fmt: str, sink: RecordingSink | None, target: str) -> None:
        self.name = name
        self.format = fmt
        self.sink = sink
        self.target = target
        self.started_at = datetime.now(UTC)
        self.duration: float | None = None
        self.failed: str | None = None
        self.done = asyncio.Event()

    async def start(
        self,
        rest: AriRestClient,
        *,
        max_duration: int | None,
        max_silence: int | None,
        beep: bool,
    ) -> None:
        """Ask Asterisk to record ``target`` (``POST /bridges|channels/{id}/record``)."""
        kind, _, rid = self.target.partition(":")
        record = rest.record_bridge if kind == "bridge" else rest.record
        await record(
            rid,
            self.name,
            format=self.format,
            max_duration=max_duration,
            max_silence=max_silence,
            beep=beep,
        )

    def finished(self, duration: float | None, failed: str | None = None) -> None:
        """Asterisk ended the recording (RecordingFinished, or RecordingFailed with ``failed``)."""
        self.duration = duration
        if failed is not None:
            self.failed = failed
            log.warning("recording %s failed: %s", self.name, failed)
        self.done.set()

    async def finish(
        self,
        rest: AriRestClient,
        call_id: str,
        default_sink: RecordingSink | None,
        *,
        wait: float,
    ) -> RecordingMetadata:
        """Stop the recording through ``rest`` unless it already ended,
        wait up to ``wait`` seconds for Asterisk to confirm, and hand it to the sink (its own,
        else ``default_sink``). Raises ``RecordingError`` if it failed or the sink failed."""
        if not self.done.is_set():
            try:
                await rest.stop_recording(self.name)
            except AriNotFound:
                pass  # already finished (or the channel is gone)
            except AriError as exc:
                log.warning("stopping recording %s failed: %s", self.name, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.done.wait(), wait)
        if self.failed is not None:
            raise RecordingError(f"recording {self.name!r} failed: {self.failed}")
        name = self.name

        async def fetch() -> bytes:
            return await rest.get_stored_recording_file(name, timeout=60.0)

        meta = RecordingMetadata(
            name=self.name,
            call_id=call_id,
            format=self.format,
            started_at=self.started_at,
            ended_at=datetime.now(UTC),
            duration=self.duration,
            target=self.target,
            location=f"ari:recording:{self.name}",
            _fetch=fetch,
        )
        sink = self.sink if self.sink is not None else default_sink
        if sink is None:
            return meta
        try:
            result = await sink(meta)
        except RecordingError:
            raise
        except Exception as exc:
            raise RecordingError(f"recording sink failed for {self.name!r}: {exc}") from exc
        return result if isinstance(result, RecordingMetadata) else meta
