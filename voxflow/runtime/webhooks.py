"""Call-event webhooks: call started, state entered, call ended, recording ready.

Each event is POSTed as JSON to the configured URL with the header
``X-Voxflow-Signature: sha256=<hex HMAC-SHA256 of the exact body with the secret>`` and
``X-Voxflow-Event: <event>``. Payloads carry only the call metadata keys marked for webhooks.
Delivery runs in background tasks owned by the :class:`WebhookSender`; failures are logged and
never reach the call. ``aclose`` waits for deliveries in flight (bounded) and cancels the rest.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import aiohttp

__all__ = [
    "SIGNATURE_HEADER",
    "WebhookEvent",
    "WebhookSender",
    "build_payload",
    "sign",
    "verify",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Voxflow-Signature"
EVENT_HEADER = "X-Voxflow-Event"
WebhookEvent = Literal["call.started", "state.entered", "call.ended", "recording.ready"]
WEBHOOK_EVENTS: frozenset[str] = frozenset(
    {"call.started", "state.entered", "call.ended", "recording.ready"}
)


def sign(secret: str | bytes, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex>``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """Constant-time check of a signature header (for receivers and tests)."""
    if not header:
        return False
    return hmac.compare_digest(sign(secret, body), header.strip())


def build_payload(
    event: str,
    *,
    call_id: str,
    flow: str,
    metadata: Mapping[str, Any],
    webhook_keys: Iterable[str],
    data: Mapping[str, Any] | None = None,
    timestamp: float | None = None,
) -> bytes:
    """The JSON body of one event. Only ``webhook_keys`` of ``metadata`` are included."""
    keys = set(webhook_keys)
    payload = {
        "event": event,
        "call_id": call_id,
        "flow": flow,
        "timestamp": time.time() if timestamp is None else timestamp,
        "metadata": {k: metadata[k] for k in sorted(keys) if k in metadata},
        "data": dict(data or {}),
    }
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


class WebhookSender:
    """Sends signed webhook events in the background. ``url=None`` disables sending."""

    def __init__(
        self,
        url: str | None,
        secret: str | None = None,
        *,
        timeout: float = 5.0,
        events: Iterable[str] | None = None,
    ) -> None:
        self.url = url
        self._secret = secret
        self._timeout = timeout
        self._events = frozenset(events) if events is not None else WEBHOOK_EVENTS
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0
        self.redactors: dict[str, Callable[[Any], Any]] = {}
        """Per call id: applied to the metadata and data of its events (sensitive variables)."""

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def emit(
        self,
        event: str,
        *,
        call_id: str,
        flow: str,
        metadata: Mapping[str, Any],
        webhook_keys: Iterable[str] = (),
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue one event for delivery; returns at once and never raises."""
        if self.url is None or event not in self._events:
            return
        redact = self.redactors.get(call_id)
        if redact is not None:
            metadata, data = redact(dict(metadata)), redact(dict(data or {}))
        try:
            body = build_payload(
                event,
                call_id=call_id,
                flow=flow,
                metadata=metadata,
                webhook_keys=webhook_keys,
                data=data,
            )
        except (TypeError, ValueError) as exc:
            log.warning("webhook %s for call %s not sent: %s", event, call_id, exc)
            self.failed += 1
            return
        task = asyncio.get_running_loop().create_task(self._deliver(event, call_id, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, event: str, call_id: str, body: bytes) -> None:
        assert self.url is not None
        headers = {"Content-Type": "application/json", EVENT_HEADER: event}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        try:
            if self._session is None or self._session.closed:
                self._session = aiohttp.ClientSession()
            timeout = aiohttp.ClientTimeout(total=self._timeout)
            async with self._session.post(
                self.url, data=body, headers=headers, timeout=timeout
            ) as resp:
                await resp.read()
                if resp.status >= 300:
                    raise aiohttp.ClientResponseError(
                        resp.request_info, (), status=resp.status, message=resp.reason or ""
                    )
            self.sent += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a webhook must never break a call: log and count
            self.failed += 1
            log.warning("webhook %s for call %s failed: %s", event, call_id, exc)

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait for deliveries in flight, up to ``timeout`` seconds."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Flush (bounded), cancel what is left, close the HTTP session."""
        await self.flush(timeout)
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
