"""ARI REST client over one aiohttp session.

:meth:`AriRestClient.request` is the generic entry point; the typed helpers wrap the verbs voxflow
uses. Non-2xx answers raise the :class:`~voxflow.errors.AriHTTPError` tree with ARI's ``message``
(or the ``error`` key Asterisk uses for some 500s). Every request has a timeout. Credentials are
sent as an HTTP Basic header and never appear in ``repr``, logs or error messages.
"""

from __future__ import annotations

import base64
import json as jsonlib
import logging
import ssl as ssllib
import time
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

from voxflow import observe
from voxflow.ari.models import Bridge, Channel, LiveRecording, Playback, StoredRecording
from voxflow.errors import (
    AriBadRequest,
    AriConflict,
    AriConnectionError,
    AriError,
    AriForbidden,
    AriHTTPError,
    AriNotFound,
    AriPreconditionFailed,
    AriServerError,
    AriTimeoutError,
    AriUnauthorized,
    AriUnprocessable,
    ConfigError,
)

__all__ = [
    "AriRestClient",
    "RestReply",
    "RestTransport",
    "error_for_status",
    "normalize_base_url",
]

log = logging.getLogger(__name__)

_STATUS_ERRORS: dict[int, type[AriHTTPError]] = {
    400: AriBadRequest,
    401: AriUnauthorized,
    403: AriForbidden,
    404: AriNotFound,
    409: AriConflict,
    412: AriPreconditionFailed,
    422: AriUnprocessable,
}

Params = Mapping[str, Any]


class RestReply(NamedTuple):
    """One ARI answer as a transport got it: status, content type (None if none), body."""

    status: int
    content_type: str | None
    body: bytes


class RestTransport(Protocol):
    """Carries ARI requests another way than HTTP (REST over the ARI websocket)."""

    async def send(
        self, method: str, path: str, params: dict[str, str], json: Any, timeout: float
    ) -> RestReply:
        """Send one request (``path`` starts with '/'); raise ``AriError`` if it cannot."""
        ...


def error_for_status(
    status: int, message: str, *, method: str = "", path: str = ""
) -> AriHTTPError:
    """Build the exception for an ARI error answer."""
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = AriServerError if status >= 500 else AriHTTPError
    return cls(status, message, method=method, path=path)


def normalize_base_url(url: str) -> str:
    """Validate an ARI base URL (``http(s)://host:port/ari``); drop any user:password in it."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"ARI URL must look like http://host:8088/ari, got {_redact_url(url)!r}")
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    path = parts.path.rstrip("/") or "/ari"
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def _unreachable(base_url: str, exc: aiohttp.ClientError) -> str:
    """Why ``base_url`` could not be reached: an untrusted TLS certificate and a failed TLS
    handshake say so and what to do; anything else names the error's class."""
    parts = urlsplit(base_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        why = getattr(exc.certificate_error, "verify_message", None) or exc.certificate_error
        return (
            f"the TLS certificate of {origin} is not trusted ({why}); give the certificate of "
            "its authority with SSL_CERT_FILE=/path/to/ca.pem"
        )
    if isinstance(exc, aiohttp.ClientSSLError):
        return (
            f"TLS handshake with {origin} failed ({type(exc).__name__}); if that port serves "
            "plain HTTP, the URL is http://"
        )
    return f"cannot reach {base_url} ({type(exc).__name__})"


def _encode_params(params: Params | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = str(value)
    return out


def _basic_auth(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _seg(value: str) -> str:
    """Quote one path segment (ids can contain ';', '/' or '@')."""
    return quote(value, safe="")


class AriRestClient:
    """Typed access to the ARI REST API. Use as ``async with AriRestClient(...) as rest:``."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 10.0,
        connector_limit: int = 100,
        ssl: ssllib.SSLContext | bool = True,
        transport: RestTransport | None = None,
        http_fallback: bool = True,
    ) -> None:
        """``ssl``: for https, True verifies with the system CAs, an ``SSLContext`` trusts what
        it is given (e.g. a self-signed Asterisk certificate), False skips verification.
        ``transport``: send requests through it (REST over the ARI websocket) instead of HTTP;
        what it refuses with 406 (binary bodies: recording files) goes over HTTP to
        ``base_url`` if ``http_fallback``."""
        self.base_url = normalize_base_url(base_url)
        self.ssl = ssl
        self.username = username
        if ":" in username:
            raise ConfigError("the ARI username cannot contain ':'")
        self._auth_header = _basic_auth(username, password)
        self.timeout = timeout
        self._connector_limit = connector_limit
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self.transport = transport
        self.http_fallback = http_fallback

    def __repr__(self) -> str:
        return f"AriRestClient({self.base_url!r}, user={self.username!r})"

    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header (for the events websocket). Never log it."""
        return {"Authorization": self._auth_header}

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise AriConnectionError("the ARI REST client is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": self._auth_header},
                connector=aiohttp.TCPConnector(limit=self._connector_limit, ssl=self.ssl),
                raise_for_status=False,
            )
        return self._session

    async def close(self) -> None:
        """Close the HTTP session (idempotent)."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> AriRestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        expect_json: bool = True,
        timeout: float | None = None,
    ) -> Any:
        """Send one request; return decoded JSON (None for 204 or when ``expect_json`` is false,
        bytes for non-JSON bodies when ``expect_json`` is false). Raises the ARI error tree."""
        path = path if path.startswith("/") else "/" + path
        seconds = self.timeout if timeout is None else timeout
        encoded = _encode_params(params)
        started = time.monotonic()
        try:
            reply = await self._send(method, path, encoded, json, seconds)
        except AriError:
            observe.ari_request(method, time.monotonic() - started, 0)
            raise
        observe.ari_request(method, time.monotonic() - started, reply.status)
        status, ctype, body = reply
        log.debug("ARI %s %s -> %d", method, path, status)
        if status >= 300:
            raise error_for_status(status, _error_message(body, status), method=method, path=path)
        if status == 204 or not body:
            return None
        if ctype is not None and ctype.startswith("application/json"):
            try:
                return jsonlib.loads(body)
            except ValueError as exc:
                raise AriServerError(
                    status, "invalid JSON in answer", method=method, path=path
                ) from exc
        return None if expect_json else body

    async def _send(
        self, method: str, path: str, params: dict[str, str], json: Any, seconds: float
    ) -> RestReply:
        """Over the transport (the websocket) if any, else (or when it answers 406) HTTP."""
        if self.transport is not None:
            reply = await self.transport.send(method, path, params, json, seconds)
            if reply.status != 406 or not self.http_fallback:
                return reply
            log.debug("ARI %s %s refused over the websocket (406): using HTTP", method, path)
        return await self._send_http(method, path, params, json, seconds)

    async def _send_http(
        self, method: str, path: str, params: dict[str, str], json: Any, seconds: float
    ) -> RestReply:
        limit = aiohttp.ClientTimeout(total=seconds)
        try:
            async with self._http().request(
                method, self.base_url + path, params=params, json=json, timeout=limit
            ) as resp:
                return RestReply(resp.status, resp.content_type, await resp.read())
        except TimeoutError as exc:
            raise AriTimeoutError(f"ARI {method} {path} timed out after {seconds:g}s") from exc
        except aiohttp.ClientError as exc:
            raise AriConnectionError(
                f"ARI {method} {path} failed: {_unreachable(self.base_url, exc)}"
            ) from None

    # ------------------------------------------------------------------ asterisk

    async def get_info(self) -> dict[str, Any]:
        """``GET /asterisk/info``."""
        result: dict[str, Any] = await self.request("GET", "/asterisk/info")
        return result

    async def ping(self) -> dict[str, Any]:
        """``GET /asterisk/ping``."""
        result: dict[str, Any] = await self.request("GET", "/asterisk/ping")
        return result

    # ------------------------------------------------------------------ applications

    async def get_application(self, app: str, *, timeout: float | None = None) -> dict[str, Any]:
        """``GET /applications/{app}``: ``channel_ids``, ``bridge_ids``... (``timeout``: this
        request's deadline, else the client's)."""
        path = f"/applications/{_seg(app)}"
        result: dict[str, Any] = await self.request("GET", path, timeout=timeout)
        return result

    async def list_applications(self) -> list[dict[str, Any]]:
        """``GET /applications``."""
        result: list[dict[str, Any]] = await self.request("GET", "/applications")
        return result

    async def subscribe(self, app: str, event_source: str | list[str]) -> dict[str, Any]:
        """``POST /applications/{app}/subscription`` (``channel:ID``, ``bridge:ID``...)."""
        result: dict[str, Any] = await self.request(
            "POST", f"/applications/{_seg(app)}/subscription", params={"eventSource": event_source}
        )
        return result

    async def unsubscribe(self, app: str, event_source: str | list[str]) -> dict[str, Any]:
        """``DELETE /applications/{app}/subscription``."""
        result: dict[str, Any] = await self.request(
            "DELETE",
            f"/applications/{_seg(app)}/subscription",
            params={"eventSource": event_source},
        )
        return result

    # ------------------------------------------------------------------ channels

    async def list_channels(self, *, timeout: float | None = None) -> list[Channel]:
        """``GET /channels`` (``timeout``: this request's deadline, else the client's)."""
        data = await self.request("GET", "/channels", timeout=timeout)
        return [Channel.model_validate(c) for c in data or []]

    async def get_channel(self, channel_id: str) -> Channel:
        """``GET /channels/{id}``."""
        return Channel.model_validate(await self.request("GET", f"/channels/{_seg(channel_id)}"))

    async def originate(
        self,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: str | list[str] | None = None,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        caller_id: str | None = None,
        timeout: int | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """``POST /channels``: dial ``endpoint`` into ``app`` (or a dialplan location)."""
        params = {
            "endpoint": endpoint,
            "app": app,
            "appArgs": app_args,
            "context": context,
            "extension": extension,
            "priority": priority,
            "callerId": caller_id,
            "timeout": timeout,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
        }
        body = {"variables": dict(variables)} if variables else None
        return Channel.model_validate(
            await self.request("POST", "/channels", params=params, json=body)
        )

    async def create_channel(
        self, endpoint: str, app: str, *, channel_id: str | None = None, app_args: str | None = None
    ) -> Channel:
        """``POST /channels/create`` (dial later with :meth:`dial`)."""
        params = {"endpoint": endpoint, "app": app, "channelId": channel_id, "appArgs": app_args}
        return Channel.model_validate(await self.request("POST", "/channels/create", params=params))

    async def dial(
        self, channel_id: str, *, caller: str | None = None, timeout: int | None = None
    ) -> None:
        """``POST /channels/{id}/dial``."""
        params = {"caller": caller, "timeout": timeout}
        await self.request("POST", f"/channels/{_seg(channel_id)}/dial", params=params)

    async def answer(self, channel_id: str, *, timeout: float | None = None) -> None:
        """``POST /channels/{id}/answer`` (``timeout``: this request's deadline, else the
        client's)."""
        await self.request("POST", f"/channels/{_seg(channel_id)}/answer", timeout=timeout)

    async def ring(self, channel_id: str) -> None:
        """``POST /channels/{id}/ring``."""
        await self.request("POST", f"/channels/{_seg(channel_id)}/ring")

    async def hangup(
        self,
        channel_id: str,
        *,
        reason: str | None = None,
        reason_code: int | None = None,
        timeout: float | None = None,
    ) -> None:
        """``DELETE /channels/{id}`` (``reason`` "normal"/"busy"..., or Q.850 ``reason_code``;
        ``timeout``: this request's deadline, else the client's)."""
        params = {"reason": reason, "reason_code": reason_code}
        path = f"/channels/{_seg(channel_id)}"
        await self.request("DELETE", path, params=params, timeout=timeout)

    async def hold(self, channel_id: str) -> None:
        """``POST /channels/{id}/hold``."""
        await self.request("POST", f"/channels/{_seg(channel_id)}/hold")

    async def unhold(self, channel_id: str) -> None:
        """``DELETE /channels/{id}/hold``."""
        await self.request("DELETE", f"/channels/{_seg(channel_id)}/hold")

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        """``POST /channels/{id}/moh``."""
        await self.request(
            "POST", f"/channels/{_seg(channel_id)}/moh", params={"mohClass": moh_class}
        )

    async def stop_moh(self, channel_id: str) -> None:
        """``DELETE /channels/{id}/moh``."""
        await self.request("DELETE", f"/channels/{_seg(channel_id)}/moh")

    async def play(
        self,
        channel_id: str,
        media: str | list[str],
        *,
        playback_id: str | None = None,
        lang: str | None = None,
    ) -> Playback:
        """``POST /channels/{id}/play`` (201 + Playback)."""
        params = {"media": media, "playbackId": playback_id, "lang": lang}
        return Playback.model_validate(
            await self.request("POST", f"/channels/{_seg(channel_id)}/play", params=params)
        )

    async def send_dtmf(
        self,
        channel_id: str,
        dtmf: str,
        *,
        between: int | None = None,
        duration: int | None = None,
    ) -> None:
        """``POST /channels/{id}/dtmf``."""
        params = {"dtmf": dtmf, "between": between, "duration": duration}
        await self.request("POST", f"/channels/{_seg(channel_id)}/dtmf", params=params)

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        """``POST /channels/{id}/continue``: leave Stasis for the dialplan."""
        params = {"context": context, "extension": extension, "priority": priority, "label": label}
        await self.request("POST", f"/channels/{_seg(channel_id)}/continue", params=params)

    async def redirect(self, channel_id: str, endpoint: str) -> None:
        """``POST /channels/{id}/redirect`` (same technology only)."""
        await self.request(
            "POST", f"/channels/{_seg(channel_id)}/redirect", params={"endpoint": endpoint}
        )

    async def get_variable(self, channel_id: str, variable: str) -> str:
        """``GET /channels/{id}/variable``."""
        data = await self.request(
            "GET", f"/channels/{_seg(channel_id)}/variable", params={"variable": variable}
        )
        return str((data or {}).get("value", ""))

    async def set_variable(
        self, channel_id: str, variable: str, value: str, *, timeout: float | None = None
    ) -> None:
        """``POST /channels/{id}/variable`` (``timeout``: this request's deadline, else the
        client's)."""
        await self.request(
            "POST",
            f"/channels/{_seg(channel_id)}/variable",
            params={"variable": variable, "value": value},
            timeout=timeout,
        )

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        format: str = "wav",
        max_duration: int | None = None,
        max_silence: int | None = None,
        if_exists: str = "fail",
        beep: bool = False,
        terminate_on: str = "none",
    ) -> LiveRecording:
        """``POST /channels/{id}/record`` (201 + LiveRecording)."""
        params = {
            "name": name,
            "format": format,
            "maxDurationSeconds": max_duration,
            "maxSilenceSeconds": max_silence,
            "ifExists": if_exists,
            "beep": beep,
            "terminateOn": terminate_on,
        }
        return LiveRecording.model_validate(
            await self.request("POST", f"/channels/{_seg(channel_id)}/record", params=params)
        )

    async def snoop(
        self,
        channel_id: str,
        app: str,
        *,
        spy: str = "none",
        whisper: str = "none",
        snoop_id: str | None = None,
        app_args: str | None = None,
    ) -> Channel:
        """``POST /channels/{id}/snoop``."""
        params = {
            "app": app,
            "spy": spy,
            "whisper": whisper,
            "snoopId": snoop_id,
            "appArgs": app_args,
        }
        return Channel.model_validate(
            await self.request("POST", f"/channels/{_seg(channel_id)}/snoop", params=params)
        )

    async def external_media(
        self,
        app: str,
        external_host: str,
        format: str,
        *,
        channel_id: str | None = None,
        encapsulation: str | None = None,
        transport: str | None = None,
        direction: str | None = None,
        data: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """``POST /channels/externalMedia``: ``channelvars`` hold UNICASTRTP_LOCAL_ADDRESS/PORT."""
        params = {
            "app": app,
            "external_host": external_host,
            "format": format,
            "channelId": channel_id,
            "encapsulation": encapsulation,
            "transport": transport,
            "direction": direction,
            "data": data,
        }
        body = {"variables": dict(variables)} if variables else None
        return Channel.model_validate(
            await self.request("POST", "/channels/externalMedia", params=params, json=body)
        )

    # ------------------------------------------------------------------ bridges

    async def list_bridges(self, *, timeout: float | None = None) -> list[Bridge]:
        """``GET /bridges`` (``timeout``: this request's deadline, else the client's)."""
        data = await self.request("GET", "/bridges", timeout=timeout)
        return [Bridge.model_validate(b) for b in data or []]

    async def create_bridge(
        self, *, type: str = "mixing", bridge_id: str | None = None, name: str | None = None
    ) -> Bridge:
        """``POST /bridges``."""
        params = {"type": type, "bridgeId": bridge_id, "name": name}
        return Bridge.model_validate(await self.request("POST", "/bridges", params=params))

    async def get_bridge(self, bridge_id: str) -> Bridge:
        """``GET /bridges/{id}``."""
        return Bridge.model_validate(await self.request("GET", f"/bridges/{_seg(bridge_id)}"))

    async def destroy_bridge(self, bridge_id: str) -> None:
        """``DELETE /bridges/{id}``."""
        await self.request("DELETE", f"/bridges/{_seg(bridge_id)}")

    async def add_channel(
        self, bridge_id: str, channel: str | list[str], *, role: str | None = None
    ) -> None:
        """``POST /bridges/{id}/addChannel``."""
        params = {"channel": channel, "role": role}
        await self.request("POST", f"/bridges/{_seg(bridge_id)}/addChannel", params=params)

    async def remove_channel(self, bridge_id: str, channel: str | list[str]) -> None:
        """``POST /bridges/{id}/removeChannel``."""
        await self.request(
            "POST", f"/bridges/{_seg(bridge_id)}/removeChannel", params={"channel": channel}
        )

    async def play_bridge(
        self, bridge_id: str, media: str | list[str], *, playback_id: str | None = None
    ) -> Playback:
        """``POST /bridges/{id}/play``."""
        params = {"media": media, "playbackId": playback_id}
        return Playback.model_validate(
            await self.request("POST", f"/bridges/{_seg(bridge_id)}/play", params=params)
        )

    async def record_bridge(
        self,
        bridge_id: str,
        name: str,
        *,
        format: str = "wav",
        max_duration: int | None = None,
        max_silence: int | None = None,
        if_exists: str = "fail",
        beep: bool = False,
    ) -> LiveRecording:
        """``POST /bridges/{id}/record`` (records the mix: both sides)."""
        params = {
            "name": name,
            "format": format,
            "maxDurationSeconds": max_duration,
            "maxSilenceSeconds": max_silence,
            "ifExists": if_exists,
            "beep": beep,
        }
        return LiveRecording.model_validate(
            await self.request("POST", f"/bridges/{_seg(bridge_id)}/record", params=params)
        )

    async def start_bridge_moh(self, bridge_id: str, moh_class: str | None = None) -> None:
        """``POST /bridges/{id}/moh``."""
        await self.request(
            "POST", f"/bridges/{_seg(bridge_id)}/moh", params={"mohClass": moh_class}
        )

    async def stop_bridge_moh(self, bridge_id: str) -> None:
        """``DELETE /bridges/{id}/moh``."""
        await self.request("DELETE", f"/bridges/{_seg(bridge_id)}/moh")

    # ------------------------------------------------------------------ playbacks

    async def get_playback(self, playback_id: str) -> Playback:
        """``GET /playbacks/{id}``."""
        return Playback.model_validate(await self.request("GET", f"/playbacks/{_seg(playback_id)}"))

    async def stop_playback(self, playback_id: str) -> None:
        """``DELETE /playbacks/{id}``."""
        await self.request("DELETE", f"/playbacks/{_seg(playback_id)}")

    # ------------------------------------------------------------------ recordings

    async def get_live_recording(self, name: str) -> LiveRecording:
        """``GET /recordings/live/{name}``."""
        return LiveRecording.model_validate(
            await self.request("GET", f"/recordings/live/{_seg(name)}")
        )

    async def stop_recording(self, name: str) -> None:
        """``POST /recordings/live/{name}/stop``: stop and store."""
        await self.request("POST", f"/recordings/live/{_seg(name)}/stop")

    async def cancel_recording(self, name: str) -> None:
        """``DELETE /recordings/live/{name}``: stop and discard."""
        await self.request("DELETE", f"/recordings/live/{_seg(name)}")

    async def list_stored_recordings(self) -> list[StoredRecording]:
        """``GET /recordings/stored``."""
        data = await self.request("GET", "/recordings/stored")
        return [StoredRecording.model_validate(r) for r in data or []]

    async def get_stored_recording(self, name: str) -> StoredRecording:
        """``GET /recordings/stored/{name}``."""
        return StoredRecording.model_validate(
            await self.request("GET", f"/recordings/stored/{_seg(name)}")
        )

    async def get_stored_recording_file(self, name: str, *, timeout: float | None = None) -> bytes:
        """``GET /recordings/stored/{name}/file``: the recording's bytes."""
        data = await self.request(
            "GET", f"/recordings/stored/{_seg(name)}/file", expect_json=False, timeout=timeout
        )
        if isinstance(data, bytes):
            return data
        return b"" if data is None else bytes(str(data), "utf-8")

    async def delete_stored_recording(self, name: str) -> None:
        """``DELETE /recordings/stored/{name}``."""
        await self.request("DELETE", f"/recordings/stored/{_seg(name)}")


def _error_message(body: bytes, status: int) -> str:
    try:
        data = jsonlib.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("message", "error"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
    text = body.decode("utf-8", "replace").strip() if body else ""
    if text and len(text) < 200 and "<" not in text:
        return text
    return f"HTTP {status}"
