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
:class:`WebhookSender` (a call's teardown never waits for it); a failed POST is tried again
with the same body and key when the failure may pass (no connection, no answer, 5xx, 408, 429
with its ``Retry-After``), with exponential backoff and jitter, bounded in tries and time
(:class:`~voxflow.runtime.webhook_retry.RetryPolicy`); the last failure is logged (event, call,
``scheme://host[:port]`` of the URL, why, tries: never the body, path, query or credentials)
and counted, and never reaches the call. ``aclose`` waits for deliveries in flight (bounded)
and cancels the rest.

Every event carries an ``Idempotency-Key`` derived from the call and the event
(``<call id>:call.started``, ``<call id>:<state entry>:state.entered``, ``<call
id>:recording:<recording name>``, ``<call id>:call.ended``). With an ``outbox`` (cluster mode,
:class:`WebhookOutbox`), the events of :data:`OUTBOX_EVENTS` are written to it before they are
sent and removed once the receiver acknowledged them (2xx) or their delivery gave up: an entry
whose worker died in between (retries included) is sent by another worker, with the same key.
``state.entered`` is not: the worker resuming a call re-enters its checkpointed state and sends
that state's ``state.entered`` again with the same key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

from voxflow import faults
from voxflow.runtime.webhook_retry import Attempt, RetryPolicy, retry_after

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "IDEMPOTENCY_HEADER",
    "OUTBOX_EVENTS",
    "SIGNATURE_HEADER",
    "SIGNATURE_TOLERANCE",
    "RetryPolicy",
    "WebhookEvent",
    "WebhookOutbox",
    "WebhookSender",
    "build_payload",
    "outbox_field",
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
OUTBOX_EVENTS: frozenset[str] = frozenset({"call.started", "recording.ready", "call.ended"})
"""The events kept in the cluster's outbox until delivered (they happen once per call or per
recording: nothing re-sends them after their worker died)."""


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
    """Where webhooks wait until delivered (the cluster's Redis), one entry per ``field``: the
    call id for its ``call.ended``, the event's ``Idempotency-Key`` for the others."""

    async def hold(
        self, field: str, key: str, body: bytes, event: str = "call.ended", call_id: str = ""
    ) -> None:
        """Keep the ``event`` (``key``, ``body``) of ``call_id`` pending for this worker."""
        ...

    async def done(self, field: str) -> None:
        """The entry was acknowledged, or its delivery gave up: drop it."""
        ...


def outbox_field(event: str, call_id: str, key: str) -> str:
    """The outbox entry of an event: the call id for the call's ``call.ended`` (key
    ``<id>:call.ended``, written with the end claim), its ``Idempotency-Key`` for the others
    (a returned call's second end, ``<id>:call.ended:returned``, too: its own entry, so that
    the first end's, maybe still undelivered, stays)."""
    return call_id if event == "call.ended" and key == f"{call_id}:call.ended" else key


_BODY_READ = 65536
"""The most of a receiver's answer read (only its status counts): past it, or when the body
does not come, the connection is closed instead of kept for the next delivery."""


async def _discard_body(resp: aiohttp.ClientResponse) -> None:
    """Read and drop up to :data:`_BODY_READ` bytes of ``resp``'s body, so that its connection
    can serve the next delivery; a longer, endless or stalled body closes the connection (the
    status is known: the try is not a timeout)."""
    import aiohttp  # here, not at the top: `voxflow test` runs without aiohttp

    try:
        left = _BODY_READ
        while left > 0:
            chunk = await resp.content.read(left)
            if not chunk:
                return
            left -= len(chunk)
    except (TimeoutError, aiohttp.ClientError):
        pass
    resp.close()


class WebhookSender:
    """Sends signed webhook events in the background. ``url=None`` disables sending.
    ``retry``: how a failed delivery is tried again (:class:`RetryPolicy`; ``sleep`` and
    ``rand`` are its clock and jitter, replaceable in tests)."""

    def __init__(
        self,
        url: str | None,
        secret: str | None = None,
        *,
        timeout: float = 5.0,
        events: Iterable[str] | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
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
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rand = rand
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        """Deliveries the receiver acknowledged (2xx)."""
        self.failed = 0
        """Deliveries given up (after their retries) or not sendable (metric)."""
        self.retried = 0
        """Tries after a first failed one (metric)."""
        self.waiting = 0
        """Deliveries waiting for their next try now (at most ``retry.max_waiting``)."""
        self.redactors: dict[str, Callable[[Any], Any]] = {}
        """Per call id: applied to the metadata and data of its events (sensitive variables)."""
        self.outbox: WebhookOutbox | None = None
        """Cluster mode: the events of :data:`OUTBOX_EVENTS` are held there until delivered."""

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
        ``Idempotency-Key`` header (default ``<call id>:<event>``)."""
        if not self.sends(event):
            return
        key = key or f"{call_id}:{event}"
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
        self._spawn(self._send(event, call_id, body, key))

    def emit_built(self, event: str, call_id: str, key: str, body: bytes) -> None:
        """:meth:`emit` for a body :meth:`payload` built already (cluster mode: the
        ``call.ended`` written to the outbox with the end claim, when nothing changed since)."""
        if self.sends(event):
            self._spawn(self._send(event, call_id, body, key))

    def deliver_later(
        self,
        event: str,
        call_id: str,
        body: bytes,
        key: str,
        then: Callable[[], Awaitable[None]],
    ) -> None:
        """Deliver ``body`` in the background (with retries), then await ``then()`` (delivered
        or given up; not when cancelled): another worker's pending ``call.ended``."""

        async def run() -> None:
            await self.deliver(event, call_id, body, key)
            await then()

        self._spawn(run())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
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
        """Deliver; an event of :data:`OUTBOX_EVENTS` is held in the outbox until delivered or
        given up (fault point ``webhook_held``: held, not sent yet)."""
        outbox = self.outbox if event in OUTBOX_EVENTS and key else None
        if outbox is None:
            faults.reached("webhook_held:" + event)
            await self.deliver(event, call_id, body, key)
            return
        field = outbox_field(event, call_id, key)
        await outbox.hold(field, key, body, event, call_id)
        faults.reached("webhook_held:" + event)
        await self.deliver(event, call_id, body, key)
        await outbox.done(field)  # not when cancelled: another worker sends it then

    async def deliver(self, event: str, call_id: str, body: bytes, key: str = "") -> bool:
        """POST ``body`` (signed, with ``key`` as ``Idempotency-Key``), tried again as
        :attr:`retry` says; True once a try got a 2xx. The last failure is logged (never the
        body or the URL's path, query or credentials) and counted."""
        if self.url is None:
            return False
        loop = asyncio.get_running_loop()
        start = loop.time()
        tried = 0
        while True:
            tried += 1
            attempt = await self._post(self.url, event, body, key)
            if attempt.ok:
                self.sent += 1
                if tried > 1:
                    log.info("webhook %s for call %s delivered at try %d", event, call_id, tried)
                return True
            elapsed = loop.time() - start
            wait = self.retry.wait(tried, attempt, elapsed, self._rand)
            if wait is not None and self.waiting >= self.retry.max_waiting:
                attempt = replace(attempt, why=f"{attempt.why}; {self.waiting} others retrying")
                wait = None
            if wait is None:
                break
            self.retried += 1
            log.info(
                "webhook %s for call %s: try %d failed (%s); next in %.1f s",
                event, call_id, tried, attempt.why, wait,
            )  # fmt: skip
            self.waiting += 1
            try:
                await self._sleep(wait)
            finally:
                self.waiting -= 1
        self.failed += 1
        final = "" if attempt.retryable else ", not retryable"
        log.warning(
            "webhook %s for call %s to %s not delivered: %s (%d tr%s in %.1f s%s)",
            event, call_id, _where(self.url), attempt.why, tried,
            "y" if tried == 1 else "ies", loop.time() - start, final,
        )  # fmt: skip
        return False

    async def _post(self, url: str, event: str, body: bytes, key: str) -> Attempt:
        """One try (signed now): how it went, described without the URL or the body."""
        import aiohttp  # here, not at the top: `voxflow test` runs without aiohttp

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
                url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as resp:
                status = resp.status
                wait = retry_after(status, resp.headers.get("Retry-After"))
                await _discard_body(resp)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            return Attempt(0, f"no answer within {self._timeout:g} s", connection=True)
        except aiohttp.ClientConnectionError as exc:
            return Attempt(0, f"connection failed ({_reason(exc)})", connection=True)
        except Exception as exc:  # a webhook must never break a call: a final failure
            return Attempt(0, f"not sent ({type(exc).__name__})")
        return Attempt(status, f"HTTP {status}", wait)

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait for deliveries in flight, up to ``timeout`` seconds."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Flush (bounded), cancel what is left (logged: in cluster mode a pending
        ``call.ended`` stays in the outbox for another worker), close the HTTP session."""
        await self.flush(timeout)
        left = list(self._tasks)
        if left:
            log.warning(
                "%d webhook deliver%s still trying after %.0f s: abandoned at shutdown%s",
                len(left), "y" if len(left) == 1 else "ies", timeout,
                " (call.ended stays in the cluster outbox)" if self.outbox is not None else "",
            )  # fmt: skip
        for t in left:
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _reason(exc: BaseException) -> str:
    """A connection failure's type and OS error text (no URL: aiohttp puts it in some
    messages, with its path and query)."""
    err = getattr(exc, "os_error", None)
    text = getattr(err, "strerror", None) if err is not None else None
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
