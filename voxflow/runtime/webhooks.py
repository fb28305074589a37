"""Call-event webhooks: call started, state entered, call ended, recording ready.

Each event is POSTed as JSON to the configured URL with ``X-Voxflow-Event: <event>`` and, when a
secret is configured, ``X-Voxflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<exact body>" with the secret>`` (the Stripe scheme). Receivers recompute the HMAC over
the timestamp and the raw body, compare in constant time, and reject a timestamp more than
5 minutes from their clock (a replayed request): :func:`verify` does all three. Without a secret
the webhooks go out unsigned and a warning is logged at start-up. Payloads carry only the call
metadata keys marked for webhooks. An event sent with a ``key`` carries it as
``Idempotency-Key`` (the same for the same event of a call resumed on another worker: receivers
drop repeats by it). Delivery runs in background tasks owned by the
:class:`WebhookSender`; failures are logged and never reach the call. ``aclose`` waits for
deliveries in flight (bounded) and cancels the rest.

With an ``outbox`` (cluster mode, :class:`WebhookOutbox`), a keyed ``call.ended`` is written to
it before it is sent and removed once the receiver acknowledged it (2xx) or its delivery failed:
an entry whose worker died in between is sent by another worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import aiohttp

__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "SIGNATURE_TOLERANCE",
    "WebhookEvent",
    "WebhookOutbox",
    "WebhookSender",
    "build_payload",
    "sign",
    "verify",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Voxflow-Signature"
SIGNATURE_TOLERANCE = 300
"""Seconds a signed request stays acceptable (older or newer: a replay, or a skewed clock)."""
EVENT_HEADER = "X-Voxflow-Event"
IDEMPOTENCY_HEADER = "Idempotency-Key"
WebhookEvent = Literal["call.started", "state.entered", "call.ended", "recording.ready"]
WEBHOOK_EVENTS: frozenset[str] = frozenset(
    {"call.started", "state.entered", "call.ended", "recording.ready"}
)


def _where(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (its path or query may carry a token: not logged)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _mac(secret: str | bytes, timestamp: int, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (default now):
    ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>``."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={ts},v1={_mac(secret, ts, body)}"


def verify(
    secret: str | bytes,
    body: bytes,
    header: str | None,
    *,
    tolerance: float = SIGNATURE_TOLERANCE,
    now: float | None = None,
) -> bool:
    """Check a signature header as a receiver should: a ``v1`` HMAC over the header's timestamp
    and the raw body (constant-time), and the timestamp within ``tolerance`` seconds of ``now``."""
    if not header:
        return False
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    try:
        ts = int(fields.get("t", [""])[0])
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        return False
    expected = _mac(secret, ts, body)
    return any(hmac.compare_digest(expected, v) for v in fields.get("v1", []))


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


class WebhookOutbox(Protocol):
    """Where end-of-call webhooks wait until delivered (the cluster's Redis)."""

    async def hold(self, call_id: str, key: str, body: bytes) -> None:
        """Keep the call's ``call.ended`` (``key``, ``body``) pending for this worker."""
        ...

    async def done(self, call_id: str) -> None:
        """The call's ``call.ended`` was acknowledged, or its delivery gave up: drop it."""
        ...


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
        if url is not None and not secret:
            log.warning(
                "webhooks to %s go out unsigned: set a secret (VOXFLOW_WEBHOOK_SECRET or "
                "[webhooks] secret in voxflow.toml) so receivers can check them",
                _where(url),
            )
        self._timeout = timeout
        self._events = frozenset(events) if events is not None else WEBHOOK_EVENTS
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0
        self.redactors: dict[str, Callable[[Any], Any]] = {}
        """Per call id: applied to the metadata and data of its events (sensitive variables)."""
        self.outbox: WebhookOutbox | None = None
        """Cluster mode: keyed ``call.ended`` events are held there until delivered."""

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def sends(self, event: str) -> bool:
        """True when :meth:`emit` would send ``event``."""
        return self.url is not None and event in self._events

    def emit(
        self,
        event: str,
        *,
        call_id: str,
        flow: str,
        metadata: Mapping[str, Any],
        webhook_keys: Iterable[str] = (),
        data: Mapping[str, Any] | None = None,
        key: str = "",
    ) -> None:
        """Queue one event for delivery; returns at once and never raises. ``key``: its
        ``Idempotency-Key`` header."""
        if not self.sends(event):
            return
        body = self.payload(
            event,
            call_id=call_id,
            flow=flow,
            metadata=metadata,
            webhook_keys=webhook_keys,
            data=data,
        )
        if body is None:
            return
        task = asyncio.get_running_loop().create_task(self._send(event, call_id, body, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def payload(
        self,
        event: str,
        *,
        call_id: str,
        flow: str,
        metadata: Mapping[str, Any],
        webhook_keys: Iterable[str] = (),
        data: Mapping[str, Any] | None = None,
    ) -> bytes | None:
        """The event's body as :meth:`emit` sends it (the call's redactor applied); None (logged,
        counted as failed) when a value cannot be sent."""
        redact = self.redactors.get(call_id)
        if redact is not None:
            metadata, data = redact(dict(metadata)), redact(dict(data or {}))
        try:
            return build_payload(
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
            return None

    async def _send(self, event: str, call_id: str, body: bytes, key: str) -> None:
        """Deliver; a keyed ``call.ended`` is held in the outbox until delivered or failed."""
        outbox = self.outbox if event == "call.ended" and key else None
        if outbox is None:
            await self.deliver(event, call_id, body, key)
            return
        await outbox.hold(call_id, key, body)
        await self.deliver(event, call_id, body, key)
        await outbox.done(call_id)  # not when cancelled: another worker sends it then

    async def deliver(self, event: str, call_id: str, body: bytes, key: str = "") -> bool:
        """POST ``body`` now (signed, with ``key`` as ``Idempotency-Key``); True on a 2xx.
        Failures are logged (never the body) and counted."""
        if self.url is None:
            return False
        headers = {"Content-Type": "application/json", EVENT_HEADER: event}
        if key:
            headers[IDEMPOTENCY_HEADER] = key
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
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a webhook must never break a call: log and count
            self.failed += 1
            log.warning("webhook %s for call %s failed: %s", event, call_id, exc)
            return False

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
