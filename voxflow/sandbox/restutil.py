"""Small helpers shared by the REST modules: the request wrapper, responses, auth."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from typing import Any

from aiohttp import web

from .model import RestError

__all__ = [
    "Req",
    "check_auth",
    "empty",
    "error_response",
    "json_response",
    "merge_body_params",
    "unauthorized",
]


class Req:
    """One ARI request: merged params, path groups, JSON body (``request`` is None for REST
    over the websocket)."""

    def __init__(
        self,
        request: web.Request | None,
        groups: tuple[str, ...],
        params: dict[str, Any],
        body: Any,
    ) -> None:
        self.request = request
        self.groups = groups
        self.params = params
        self.body = body

    def get(self, name: str, default: str = "") -> str:
        v = self.params.get(name, default)
        return str(v) if v is not None else default

    def num(self, name: str, default: float) -> float:
        v = self.params.get(name)
        if v in (None, ""):
            return default
        try:
            return float(v)
        except (TypeError, ValueError):
            raise RestError(400, f"{name} must be a number") from None

    def bool(self, name: str, default: bool = False) -> bool:
        v = self.params.get(name)
        if v in (None, ""):
            return default
        return str(v).lower() in ("true", "1", "yes")


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(obj), content_type="application/json")


def empty() -> web.Response:
    return web.Response(status=204)


def error_response(status: int, message: str, key: str = "message") -> web.Response:
    return json_response({key: message}, status)


def check_auth(request: web.Request, user: str, password: str) -> bool:
    """HTTP Basic or ``api_key=user:password``."""
    key = request.query.get("api_key")
    if key is not None:
        return _same(key, f"{user}:{password}")
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            raw = base64.b64decode(header[6:].strip()).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return _same(raw, f"{user}:{password}")
    return False


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison (the time taken does not tell how much of a guess matched)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def unauthorized() -> web.Response:
    resp = error_response(401, "Authentication required")
    resp.headers["WWW-Authenticate"] = 'Basic realm="Asterisk REST Interface"'
    return resp


def merge_body_params(params: dict[str, Any], body: Any) -> None:
    """As Asterisk does: a JSON object body's scalar fields stand for query parameters the
    query did not give, and its ``variables`` object is passed whole."""
    if not isinstance(body, dict):
        return
    for k, v in body.items():
        if k != "variables" and not isinstance(v, dict | list):
            params.setdefault(k, v)
    if isinstance(body.get("variables"), dict):
        params["variables"] = body["variables"]
