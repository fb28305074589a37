"""Shared HTTP plumbing of the OpenAI-compatible providers: one lazy aiohttp session per provider,
status-to-error mapping, and redaction so an API key never reaches a message or a log."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from voxflow import observe
from voxflow.ai.config import Secret
from voxflow.errors import ProviderError, ProviderTimeoutError

__all__ = ["HttpProvider"]

log = logging.getLogger("voxflow.ai")


class HttpProvider:
    """Base of the HTTP providers: ``base_url``, bearer key, timeouts, and the session lifecycle.

    The aiohttp session is created on first use (inside the running loop) and closed by
    ``aclose``; pass ``session`` to share one owned by the caller (it is then not closed here).
    """

    kind = "provider"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: Secret | str | None,
        timeout: float,
        connect_timeout: float | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ProviderError(f"{self.kind}: base_url must start with http:// or https://")
        if timeout <= 0:
            raise ProviderError(f"{self.kind}: timeout must be positive")
        self.base_url = base_url.rstrip("/")
        self._key = api_key if isinstance(api_key, Secret) or api_key is None else Secret(api_key)
        self.timeout = timeout
        self.connect_timeout = (
            connect_timeout if connect_timeout is not None else min(timeout, 10.0)
        )
        self._session = session
        self._own_session = session is None
        self._closed = False

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": "voxflow"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key.get()}"
        return headers

    def _client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=None,
            connect=self.connect_timeout,
            sock_connect=self.connect_timeout,
            sock_read=self.timeout,
        )

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ProviderError(f"{self.kind}: provider is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._client_timeout())
        return self._session

    async def aclose(self) -> None:
        """Close the owned HTTP session (idempotent)."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._own_session:
            await session.close()

    async def __aenter__(self) -> HttpProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def redact(self, text: str) -> str:
        """``text`` with the API key (if any) replaced by ``****``."""
        if self._key and self._key.get():
            text = text.replace(self._key.get(), "****")
        return text

    def _error(self, message: str) -> ProviderError:
        self._observe_error()
        return ProviderError(self.redact(f"{self.kind}: {message}"))

    def _timeout_error(self, message: str) -> ProviderTimeoutError:
        self._observe_error()
        return ProviderTimeoutError(self.redact(f"{self.kind}: {message}"))

    def _observe_error(self) -> None:
        """Count a failure of this provider (metrics: by kind and the API's host)."""
        observe.provider_error(self.kind.lower(), urlsplit(self.base_url).hostname or "?")

    async def _raise_for_status(self, resp: aiohttp.ClientResponse) -> None:
        if 200 <= resp.status < 300:
            return
        try:
            body = (await asyncio.wait_for(resp.content.read(4096), 5.0)).decode("utf-8", "replace")
        except (TimeoutError, aiohttp.ClientError):
            body = ""
        detail = _error_detail(body) or resp.reason or ""
        raise self._error(f"HTTP {resp.status} from {resp.url.path}: {detail}".rstrip(": "))

    def _map_exception(self, exc: BaseException, what: str) -> ProviderError:
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
            return self._timeout_error(f"{what} timed out after {self.timeout:g} s")
        if isinstance(exc, aiohttp.ClientPayloadError):
            return self._error(f"{what}: response truncated ({exc})")
        if isinstance(exc, aiohttp.ClientConnectionError):
            return self._error(f"{what}: cannot reach {self.base_url} ({exc})")
        return self._error(f"{what} failed: {exc}")


def _error_detail(body: str) -> str:
    body = body.strip()
    if not body:
        return ""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body[:300]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("err_msg") or err.get("detail")
            if msg:
                return str(msg)[:300]
        elif isinstance(err, str):
            return err[:300]
    return body[:300]
