"""The HTTP step over aiohttp: timeouts, a response size limit, retries for idempotent methods.

:class:`HttpClient.perform` never raises for network or server problems: it returns an
:class:`HttpResult` whose ``outcome`` is ``"ok"`` (2xx), ``"timeout"`` (the last attempt timed
out) or ``"error"`` (anything else: non-2xx, connection refused, oversize body, a body that is
not JSON when JSON was expected, a bad URL). Only idempotent methods (RFC 9110: GET, HEAD,
OPTIONS, TRACE, PUT, DELETE) are retried, on connection errors, timeouts, 429 and 5xx: the
step's ``retries`` (default 2) more times, waiting :func:`backoff_delay` before each, or longer
when a 429 or 503 says so in its ``Retry-After`` (seconds or an HTTP date): up to
:data:`BACKOFF_CAP`; one asking for more ends the step at once (:func:`retry_wait`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from voxflow.redact import url_for_log
from voxflow.runtime.webhook_retry import retry_after

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "BACKOFF_CAP",
    "DEFAULT_BACKOFF",
    "DEFAULT_RETRIES",
    "IDEMPOTENT_METHODS",
    "MAX_RETRIES",
    "RETRY_STATUSES",
    "HttpClient",
    "HttpOutcome",
    "HttpRequest",
    "HttpResult",
    "backoff_delay",
    "retry_wait",
    "with_retries",
]

log = logging.getLogger(__name__)

HttpOutcome = Literal["ok", "error", "timeout"]
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF = 0.2
"""Seconds before the first retry (the step's ``backoff``); each later one doubles it."""
BACKOFF_CAP = 10.0
"""No wait between two attempts is longer (seconds), whatever ``backoff``, the attempt and a
``Retry-After``; a ``Retry-After`` asking for longer ends the step instead."""
MAX_RETRIES = 5
_JITTER = random.Random()
_ALLOWED_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", "POST", "PATCH"})


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP step invocation. ``json_body`` and ``body`` are exclusive."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json_body: Any = None
    body: str | bytes | None = None
    timeout: float = 5.0
    max_bytes: int = 1_000_000
    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    expect_json: bool = True


@dataclass(frozen=True, slots=True)
class HttpResult:
    """What happened. ``data`` is the decoded JSON (or text when JSON was not expected);
    ``retryable`` says whether another attempt could go differently (a timeout, a connection
    error, 429 or 5xx), decided where the failure is seen, never from the error text."""

    outcome: HttpOutcome
    status: int | None = None
    data: Any = None
    error: str | None = None
    attempts: int = 0
    elapsed_ms: float = 0.0
    retryable: bool = False
    retry_after: float | None = None
    """Seconds a 429 or 503 asked to wait in its ``Retry-After`` header."""

    def as_variables(self) -> dict[str, Any]:
        """The result as flow variables: ``status``, ``data``, ``error``, ``outcome``."""
        return {
            "outcome": self.outcome,
            "status": self.status,
            "data": self.data,
            "error": self.error,
        }


def backoff_delay(retry: int, backoff: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``retry`` (1, 2, ...): ``backoff`` doubled per
    retry, capped at :data:`BACKOFF_CAP`, then "equal jitter" (a random point in its upper
    half), so that calls whose requests failed together do not all retry at the same instant."""
    full = min(BACKOFF_CAP, max(0.0, backoff) * (2 ** (retry - 1)))
    return (rng or _JITTER).uniform(full / 2, full)


def retry_wait(
    result: HttpResult, retry: int, backoff: float, rng: random.Random | None = None
) -> float | None:
    """Seconds to wait before retry number ``retry`` after ``result`` failed retryably: the
    backoff, or the answer's ``Retry-After`` when longer; None when that is past
    :data:`BACKOFF_CAP` (the step gives up rather than keep the caller waiting)."""
    wait = backoff_delay(retry, backoff, rng)
    if result.retry_after is None:
        return wait
    if result.retry_after > BACKOFF_CAP:
        return None
    return max(wait, result.retry_after)


async def with_retries(
    req: HttpRequest,
    attempt: Callable[[], Awaitable[HttpResult]],
    started: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
    rng: random.Random | None = None,
) -> HttpResult:
    """Run ``attempt`` once, or for an idempotent method up to ``1 + req.retries`` times while
    it fails retryably (:func:`backoff_delay` between tries): the one retry policy of the run
    time's HttpClient and of ``voxflow test``'s mocked requests (``clock``, ``rng``: its own)."""
    started = clock() if started is None else started
    method = req.method.upper()
    retries = min(MAX_RETRIES, max(0, req.retries))
    max_attempts = 1 + (retries if method in IDEMPOTENT_METHODS else 0)
    result = HttpResult("error", error="not attempted")
    for n in range(1, max_attempts + 1):
        result = await attempt()
        if result.outcome == "ok" or not result.retryable or n == max_attempts:
            break
        log.debug("HTTP %s %s attempt %d failed: %s", method, url_for_log(req.url), n, result.error)
        wait = retry_wait(result, n, req.backoff, rng)
        if wait is None:
            why = (
                f"{result.error}, Retry-After {result.retry_after:g} s: longer than the "
                f"{BACKOFF_CAP:g} s an http step waits between tries, not retried"
            )
            result = replace(result, error=why)
            break
        await asyncio.sleep(wait)
    elapsed = (clock() - started) * 1000.0
    return replace(result, attempts=n, elapsed_ms=elapsed)


class _Oversize(Exception):
    pass


class HttpClient:
    """Owns one aiohttp session (connection pool) shared by every call's HTTP steps."""

    def __init__(self, *, user_agent: str = "voxflow") -> None:
        self._session: aiohttp.ClientSession | None = None
        self._user_agent = user_agent
        self._closed = False

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled session (idempotent)."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        import aiohttp  # here, not at the top: `voxflow test` runs without aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": self._user_agent})
        return self._session

    async def perform(self, req: HttpRequest) -> HttpResult:
        """Run the request with retries; never raises except for cancellation."""
        started = time.perf_counter()
        method = req.method.upper()
        if method not in _ALLOWED_METHODS:
            return HttpResult("error", error=f"unsupported HTTP method {req.method!r}")
        if not req.url.startswith(("http://", "https://")):
            msg = f"URL must start with http:// or https://: {url_for_log(req.url)!r}"
            return HttpResult("error", error=msg)
        if self._closed:
            return HttpResult("error", error="HTTP client closed")
        return await with_retries(req, lambda: self._attempt(method, req), started)

    async def _attempt(self, method: str, req: HttpRequest) -> HttpResult:
        import aiohttp  # here, not at the top: `voxflow test` runs without aiohttp

        session = self._get_session()
        kwargs: dict[str, Any] = {"headers": dict(req.headers)}
        if req.json_body is not None:
            kwargs["json"] = req.json_body
        elif req.body is not None:
            kwargs["data"] = req.body
        timeout = aiohttp.ClientTimeout(total=req.timeout)
        try:
            async with session.request(method, req.url, timeout=timeout, **kwargs) as resp:
                status = resp.status
                asked = resp.headers.get("Retry-After")
                length = resp.content_length
                if length is not None and length > req.max_bytes:
                    raise _Oversize
                raw = bytearray()
                async for chunk in resp.content.iter_chunked(65536):
                    raw += chunk
                    if len(raw) > req.max_bytes:
                        raise _Oversize
                text = _decode(raw, resp.charset)
        except _Oversize:
            return HttpResult("error", error=f"response larger than {req.max_bytes} bytes")
        except TimeoutError:
            msg = f"no response within {req.timeout:g} s"
            return HttpResult("timeout", error=msg, retryable=True)
        except aiohttp.InvalidURL as exc:
            return HttpResult("error", error=f"invalid URL: {url_for_log(str(exc))}")
        except aiohttp.ClientError as exc:
            return HttpResult("error", error=f"{type(exc).__name__}: {exc}", retryable=True)
        except (OSError, ValueError) as exc:  # OSError: the network; ValueError: the request
            msg = f"{type(exc).__name__}: {exc}"
            return HttpResult("error", error=msg, retryable=isinstance(exc, OSError))
        data: Any = text
        if req.expect_json and text.strip():
            try:
                data = json.loads(text)
            except (ValueError, RecursionError) as exc:
                if 200 <= status < 300:
                    deep = " (nested too deeply)" if isinstance(exc, RecursionError) else ""
                    return HttpResult("error", status=status, error=f"response is not JSON{deep}")
        elif req.expect_json:
            data = None
        if 200 <= status < 300:
            return HttpResult("ok", status=status, data=data)
        retry = status in RETRY_STATUSES
        after = retry_after(status, asked)
        return HttpResult(
            "error", status, data, f"HTTP {status}", retryable=retry, retry_after=after
        )


def _decode(raw: bytearray, charset: str | None) -> str:
    """The body as text in its declared charset, UTF-8 when it declares none or one Python
    does not know (``charset=klingon``); undecodable bytes are replaced."""
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")
