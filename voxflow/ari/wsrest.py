"""REST over the ARI websocket (Asterisk 22.4+): ``RESTRequest`` frames out, ``RESTResponse`` in.

:class:`WsRestTransport` is an :class:`~voxflow.ari.rest.RestTransport`: an
:class:`~voxflow.ari.rest.AriRestClient` built over it keeps every typed helper and error, and
its requests travel on the same socket as the events. As observed on Asterisk 22.10.1, the
``uri`` is relative to ``/ari/`` with no leading slash (a leading slash is answered 405),
parameters go in ``query_strings``, a JSON body in ``message_body`` with its ``content_type``;
a 204 answer has neither. Answers are matched by ``request_id``. Binary resources (recording
files) are refused with 406: the client falls back to HTTP where it has an HTTP address.
"""

from __future__ import annotations

import asyncio
import itertools
import json as jsonlib
import logging
from collections.abc import Callable
from typing import Any

from voxflow.ari.rest import RestReply
from voxflow.errors import AriConnectionError, AriTimeoutError

__all__ = ["REST_RESPONSE_MARK", "WsRestTransport", "encode_request", "is_rest_response"]

log = logging.getLogger(__name__)

# Asterisk writes "type" first: a RESTResponse frame starts with this (checked in the first bytes).
REST_RESPONSE_MARK = b'"RESTResponse"'

_ids = itertools.count(1)


def is_rest_response(raw: bytes) -> bool:
    """True for a ``RESTResponse`` frame (cheap: looks at the first bytes only)."""
    return REST_RESPONSE_MARK in raw[:48]


def encode_request(
    request_id: str, method: str, path: str, params: dict[str, str], json: Any
) -> bytes:
    """One ``RESTRequest`` frame; ``path`` may start with '/' (it is made relative)."""
    frame: dict[str, Any] = {
        "type": "RESTRequest",
        "transaction_id": request_id,
        "request_id": request_id,
        "method": method,
        "uri": path.lstrip("/"),
    }
    if params:
        frame["query_strings"] = [{"name": k, "value": v} for k, v in params.items()]
    if json is not None:
        frame["content_type"] = "application/json"
        frame["message_body"] = jsonlib.dumps(json)
    return jsonlib.dumps(frame, separators=(",", ":")).encode()


class WsRestTransport:
    """Requests on one websocket; ``send_text`` writes a frame, :meth:`on_response` gets answers."""

    def __init__(self, send_text: Callable[[bytes], None], *, name: str = "") -> None:
        self._send_text = send_text
        self.name = name
        self._pending: dict[str, asyncio.Future[RestReply]] = {}
        self._closed: str | None = None
        self.sent = 0

    @property
    def pending(self) -> int:
        """Requests waiting for their answer."""
        return len(self._pending)

    async def send(
        self, method: str, path: str, params: dict[str, str], json: Any, timeout: float
    ) -> RestReply:
        """Send one request and wait for its ``RESTResponse``."""
        if self._closed is not None:
            raise AriConnectionError(f"ARI {method} {path} failed: {self._closed}")
        request_id = f"vf-{next(_ids)}"
        future: asyncio.Future[RestReply] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self._send_text(encode_request(request_id, method, path, params, json))
            self.sent += 1
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise AriTimeoutError(
                f"ARI {method} {path} timed out after {timeout:g}s (over the websocket)"
            ) from None
        finally:
            self._pending.pop(request_id, None)

    def on_response(self, raw: bytes) -> None:
        """One ``RESTResponse`` frame from the socket."""
        try:
            frame = jsonlib.loads(raw)
            request_id = str(frame.get("request_id", ""))
            status = int(frame["status_code"])
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ARI websocket: malformed RESTResponse ignored")
            return
        future = self._pending.get(request_id)
        if future is None or future.done():
            log.debug("ARI websocket: RESTResponse for unknown request %r", request_id)
            return
        body = frame.get("message_body")
        ctype = frame.get("content_type")
        future.set_result(
            RestReply(
                status,
                ctype if isinstance(ctype, str) else None,
                body.encode() if isinstance(body, str) else b"",
            )
        )

    def close(self, reason: str = "the websocket closed") -> None:
        """Fail every waiting request (the socket is gone) and refuse new ones."""
        self._closed = reason
        for future in self._pending.values():
            if not future.done():
                future.set_exception(AriConnectionError(f"ARI request lost: {reason}"))
        self._pending.clear()
