"""JSON Lines call traces: one file per call, one object per line.

Each record is ``{"t": <seconds since call start>, "type": <type>, ...fields}``. Types written by
the driver: ``call.started``, ``state.entered``, ``prompt``, ``input`` (with ``waited_ms``),
``http``, ``provider`` (with ``latency_ms``), ``error``, ``route`` (where a dial, transfer,
queue, HTTP request or recording sent the call: :mod:`voxflow.runtime.routes`), ``call.ended``
(with ``outcome``).
A spoken ``input`` carries its recognition (:func:`recognition_fields`): ``confidence``,
``alternatives`` (n-best, best first), the ``min_confidence`` it had to reach, ``latency_ms``
(end of speech -> result) and ``endpoint`` (what ended the utterance: ``settled``, ``final``,
``complete``, ``quiet``, ``silence``, ``max_speech``; ``voxflow.voice.providers.Transcript``),
``silence_ms`` (the VAD silence that endpoint waited for) and ``behind_ms`` (how far the
recogniser's decoding lagged the caller then), when known;
``text`` "" is a recognition that was rejected (the flow's ``nomatch``).
The trace is the source of truth for debugging and replaying a call in the simulator.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import IO, Any, Protocol

from voxflow.redact import REDACTED
from voxflow.sourcefile import read_regular_bytes
from voxflow.voice.providers import Transcript

__all__ = [
    "CallTrace",
    "NullTrace",
    "TraceWriter",
    "read_trace",
    "recognition_fields",
    "with_recognition",
]

log = logging.getLogger(__name__)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def recognition_fields(heard: Transcript, min_confidence: float | None) -> dict[str, Any]:
    """The trace fields of one recognition (those it has)."""
    out: dict[str, Any] = {}
    if heard.confidence is not None:
        out["confidence"] = round(heard.confidence, 3)
    if heard.alternatives:
        out["alternatives"] = list(heard.alternatives)
    if min_confidence is not None:
        out["min_confidence"] = min_confidence
    if heard.latency_ms is not None:  # end of speech -> result: replay places the speech by it
        out["latency_ms"] = round(heard.latency_ms)
    if heard.endpoint is not None:
        out["endpoint"] = heard.endpoint
    if heard.silence_ms is not None:  # the VAD silence the endpoint waited for
        out["silence_ms"] = heard.silence_ms
    if heard.behind_ms is not None:  # how far the recogniser lagged the caller then
        out["behind_ms"] = heard.behind_ms
    return out


def with_recognition(data: dict[str, Any], heard: dict[str, Any] | None) -> dict[str, Any]:
    """A spoken ``input`` record with its recognition's fields; the n-best is redacted when the
    text is (a sentence said into a sensitive variable)."""
    if heard is None or data.get("kind") != "speech":
        return data
    if data.get("text") == REDACTED and heard.get("alternatives"):
        heard = {**heard, "alternatives": [REDACTED] * len(heard["alternatives"])}
    return {**data, **heard}


class CallTrace(Protocol):
    """Where a call's trace records go (a file, nowhere, or the flow-test simulator)."""

    def write(self, type_: str, /, **fields: Any) -> None:
        """Record one event of the call."""
        ...

    def close(self) -> None:
        """The call ended."""
        ...


class NullTrace:
    """A trace that records nothing (the default)."""

    path: Path | None = None

    def write(self, type_: str, /, **fields: Any) -> None:
        """Drop the record."""

    def close(self) -> None:
        """Nothing to close."""


class TraceWriter:
    """Writes one call's trace to ``<directory>/<call_id>.jsonl``; lines are flushed on write.

    I/O errors are logged once and disable the trace: tracing never breaks a call.
    """

    def __init__(self, directory: str | Path, call_id: str, *, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._t0: float = clock()
        name = _SAFE.sub("_", call_id) or "call"
        self.path: Path | None = Path(directory) / f"{name}.jsonl"
        self._fh: IO[str] | None
        try:
            Path(directory).mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            log.warning("trace for call %s disabled: %s", call_id, exc)
            self._fh = None

    def write(self, type_: str, /, **fields: Any) -> None:
        """Append one record."""
        if self._fh is None:
            return
        record = {"t": round(self._clock() - self._t0, 4), "type": type_, **fields}
        try:
            self._fh.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")
            self._fh.flush()
        except (OSError, ValueError) as exc:
            log.warning("trace write failed, disabling: %s", exc)
            self.close()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fh is not None:
            fh, self._fh = self._fh, None
            try:
                fh.close()
            except OSError:
                pass


MAX_TRACE_BYTES = 64_000_000
"""The largest trace file :func:`read_trace` reads (a device such as /dev/zero never ends)."""


def read_trace(path: str | Path) -> list[dict[str, Any]]:
    """Load a trace file back as a list of records (``OSError`` for a file that is not regular,
    never opened for reading, or past :data:`MAX_TRACE_BYTES`; ``json.JSONDecodeError`` for a
    line that is not JSON)."""
    data = read_regular_bytes(path, MAX_TRACE_BYTES)
    return [json.loads(line) for line in data.decode("utf-8").split("\n") if line.strip()]
