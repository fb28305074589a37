"""REST over the ARI websocket as Asterisk 22.10.1 answers it: ``RESTRequest`` -> ``RESTResponse``.

Accepted on the inbound ``/ari/events`` socket and on outbound connections alike. The answers
reproduce ``captures/outbound-websocket.json``: ``uri`` relative to ``/ari/`` (a leading slash is
405 "Invalid method"), parameters from the uri's query, ``query_strings`` and a JSON
``message_body``; 204 without ``content_type``/``message_body``; an unknown ``type`` is 400
"Unknown request type." (uri ""), an unknown method 400 "Unknown or missing 'method' property.",
a binary resource (``recordings/stored/X/file``) 406 "Not Acceptable.  Use HTTP GET".
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from .restutil import merge_body_params

if TYPE_CHECKING:
    from .rest import AriRest

__all__ = ["rest_over_ws"]

_METHODS = frozenset({"GET", "POST", "PUT", "DELETE"})
_BINARY = re.compile(r"^recordings/stored/[^/]+/file$")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _answer(
    frame: dict[str, Any],
    app: str,
    ts: str,
    asterisk_id: str,
    status: int,
    reason: str,
    uri: str,
    body: str | None,
) -> str:
    out: dict[str, Any] = {
        "type": "RESTResponse",
        "transaction_id": str(frame.get("transaction_id") or ""),
        "request_id": str(frame.get("request_id") or ""),
        "status_code": status,
        "reason_phrase": reason,
        "uri": uri,
    }
    if body is not None:
        out["content_type"] = "application/json"
        out["message_body"] = body
    out.update({"application": app, "timestamp": ts, "asterisk_id": asterisk_id})
    return json.dumps(out)


def _params(frame: dict[str, Any], query: str) -> tuple[dict[str, Any], Any]:
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    for item in frame.get("query_strings") or []:
        if isinstance(item, dict) and "name" in item:
            params[str(item["name"])] = str(item.get("value", ""))
    body: Any = None
    raw = frame.get("message_body")
    if isinstance(raw, str) and raw.strip():
        body = json.loads(raw)
        merge_body_params(params, body)
    return params, body


async def rest_over_ws(rest: AriRest, text: str | bytes, app: str) -> str | None:
    """The ``RESTResponse`` for one frame received on an ARI socket serving ``app``; None for a
    frame that is not JSON (Asterisk ignores it)."""
    pbx = rest.pbx
    ts, aid = pbx.now_ts(), pbx.asterisk_id
    try:
        frame = json.loads(text)
    except ValueError:
        return None
    if not isinstance(frame, dict):
        return None
    if frame.get("type") != "RESTRequest":
        body = json.dumps({"message": "Unknown request type."})
        return _answer(frame, app, ts, aid, 400, "Bad request", "", body)
    uri = str(frame.get("uri") or "")
    method = str(frame.get("method") or "").upper()
    if method not in _METHODS:
        body = json.dumps({"message": "Unknown or missing 'method' property."})
        return _answer(frame, app, ts, aid, 400, "Bad request", uri, body)
    if uri.startswith("/"):
        body = json.dumps({"message": "Invalid method"})
        return _answer(frame, app, ts, aid, 405, "Method Not Allowed", uri, body)
    path, _, query = uri.partition("?")
    if _BINARY.match(path.strip("/")):
        return _answer(frame, app, ts, aid, 406, "Not Acceptable.  Use HTTP GET", path, None)
    try:
        params, body_json = _params(frame, query)
    except ValueError:
        body = json.dumps({"message": "Failed to parse JSON body"})
        return _answer(frame, app, ts, aid, 400, "Bad Request", path, body)
    rest.ws_log.append((method, "/" + path.strip("/")))
    resp = await rest.dispatch(method, "/" + path.strip("/"), params, body_json, quoted=True)
    text_body = resp.text if isinstance(resp, web.Response) and resp.status != 204 else None
    if text_body == "":
        text_body = None
    return _answer(frame, app, ts, aid, resp.status, _reason(resp.status), path, text_body)
