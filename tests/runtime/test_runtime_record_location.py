"""The transcript line of a finished recording shows where it went without the credentials of
a signed upload URL (an HttpUploadSink to a pre-signed URL whose server sends no Location)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from voxflow.runtime import events as ev
from voxflow.runtime.operations import OP_HANDLERS
from voxflow.telephony.recording import RecordingMetadata

NOW = datetime(2026, 12, 2, tzinfo=UTC)
SIGNED = (
    "https://bucket.example.com/rec/msg-1.wav?X-Amz-Credential=AKIAEXAMPLE42&"
    "X-Amz-Signature=f00dfeedc0ffee42&X-Amz-Security-Token=tok42secret"
)


def test_a_signed_upload_url_is_not_shown_in_the_transcript() -> None:
    meta = RecordingMetadata(
        name="msg-1", call_id="c1", format="wav", duration=2.0, started_at=NOW, ended_at=NOW
    )
    meta = meta.with_location(SIGNED, 100)
    lines: list[str] = []

    async def record_stop() -> RecordingMetadata:
        return meta

    d: Any = SimpleNamespace(
        session=SimpleNamespace(record_stop=record_stop),
        _say_line=lambda who, text: lines.append(text),
        webhooks=None,
    )
    handler: Any = OP_HANDLERS[ev.RecordStop]
    result = asyncio.run(handler(d, ev.RecordStop(1)))
    assert result == {"name": "msg-1", "duration": 2.0}
    [line] = lines
    assert "https://bucket.example.com/rec/msg-1.wav?" in line, line
    for secret in ("AKIAEXAMPLE42", "f00dfeedc0ffee42", "tok42secret"):
        assert secret not in line, line
