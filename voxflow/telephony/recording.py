"""Recording metadata and sinks.

A :class:`RecordingSink` is any async callable taking a :class:`RecordingMetadata`; it may return
an updated copy (with ``location`` and ``size`` filled in). ``RecordingMetadata.read()`` fetches
the stored file from Asterisk (``GET /recordings/stored/{name}/file``). Sinks:
:class:`LocalDirectorySink`, :class:`HttpUploadSink`, :class:`CallbackSink`."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import os
import re
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from voxflow.errors import ConfigError, RecordingError

__all__ = [
    "CallbackSink",
    "HttpUploadSink",
    "LocalDirectorySink",
    "RecordingMetadata",
    "RecordingSink",
    "safe_recording_name",
]

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # fullmatch: "$" lets "\n" in


def safe_recording_name(name: str) -> str:
    """Return ``name`` if it is safe as a file name on both sides; raise ``ValueError`` if not."""
    if not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise ValueError(
            f"invalid recording name {name!r}: use letters, digits, '_', '-', '.' (max 128)"
        )
    return name


async def _no_file() -> bytes:
    raise RecordingError("this recording has no file source")


@dataclass(frozen=True, slots=True)
class RecordingMetadata:
    """What a sink receives when a recording ends. ``duration`` is seconds as Asterisk reports
    them (None when unknown); ``size``/``location`` are filled in by sinks that store the file."""

    name: str
    call_id: str
    format: str
    started_at: datetime
    ended_at: datetime
    duration: float | None = None
    size: int | None = None
    location: str | None = None
    target: str = ""
    state: str = "done"
    _fetch: Callable[[], Awaitable[bytes]] = field(default=_no_file, repr=False, compare=False)

    @property
    def filename(self) -> str:
        """``name.format``."""
        return f"{self.name}.{self.format}"

    async def read(self) -> bytes:
        """The recording's bytes, fetched from Asterisk."""
        return await self._fetch()

    def with_location(self, location: str, size: int | None) -> RecordingMetadata:
        """A copy with ``location`` and ``size`` set."""
        return dataclasses.replace(self, location=location, size=size)


@runtime_checkable
class RecordingSink(Protocol):
    """Receives each finished recording exactly once."""

    async def __call__(self, recording: RecordingMetadata) -> RecordingMetadata | None:
        """Deliver ``recording``; optionally return an updated copy."""
        ...


class LocalDirectorySink:
    """Fetch each recording over ARI and write it to ``directory/<name>.<format>`` atomically."""

    def __init__(self, directory: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        self.directory = Path(directory)
        self.overwrite = overwrite

    def __repr__(self) -> str:
        return f"LocalDirectorySink({str(self.directory)!r})"

    async def __call__(self, recording: RecordingMetadata) -> RecordingMetadata:
        data = await recording.read()
        path = self.directory / safe_recording_name(recording.filename)
        await asyncio.to_thread(self._write, path, data)
        log.info("recording %s saved to %s (%d bytes)", recording.name, path, len(data))
        return recording.with_location(str(path), len(data))

    def _write(self, path: Path, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if path.exists() and not self.overwrite:
            raise RecordingError(f"{path} already exists")
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".rec-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            with_suppress_unlink(tmp)
            raise


def with_suppress_unlink(path: str) -> None:
    """Remove ``path`` if it exists (cleanup helper)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class HttpUploadSink:
    """Upload each recording's bytes to ``url`` (PUT or POST) with the metadata as headers.

    ``url`` may contain ``{name}`` and ``{call_id}``. Header values you pass (e.g. an API key) are
    never logged.
    """

    def __init__(
        self,
        url: str,
        *,
        method: str = "PUT",
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError("HttpUploadSink url must be http:// or https://")
        if method not in ("PUT", "POST"):
            raise ConfigError("HttpUploadSink method must be PUT or POST")
        self.url = url
        self.method = method
        self._headers = dict(headers or {})
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"HttpUploadSink({self.url.split('?', 1)[0]!r}, method={self.method!r})"

    async def __call__(self, recording: RecordingMetadata) -> RecordingMetadata:
        import aiohttp  # here, not at the top: `voxflow test` runs without aiohttp

        data = await recording.read()
        url = self.url.format(name=recording.name, call_id=recording.call_id)
        headers = {
            **self._headers,
            "Content-Type": "audio/wav"
            if recording.format == "wav"
            else "application/octet-stream",
            "X-Recording-Name": recording.name,
            "X-Call-Id": recording.call_id,
            "X-Recording-Format": recording.format,
        }
        if recording.duration is not None:
            headers["X-Recording-Duration"] = f"{recording.duration:g}"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as http,
                http.request(self.method, url, data=data, headers=headers) as resp,
            ):
                if resp.status >= 300:
                    raise RecordingError(f"upload of {recording.name} failed: HTTP {resp.status}")
                location = resp.headers.get("Location", url)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RecordingError(
                f"upload of {recording.name} failed: {type(exc).__name__}"
            ) from None
        return recording.with_location(location, len(data))


class CallbackSink:
    """Call a plain function (sync or async) with the metadata."""

    def __init__(self, callback: Callable[[RecordingMetadata], Any]) -> None:
        self.callback = callback

    def __repr__(self) -> str:
        return f"CallbackSink({getattr(self.callback, '__name__', self.callback)!r})"

    async def __call__(self, recording: RecordingMetadata) -> RecordingMetadata | None:
        result = self.callback(recording)
        if inspect.isawaitable(result):
            result = await result
        return result if isinstance(result, RecordingMetadata) else None
