"""The control API over HTTP, outside /ari: scripted callers and faults for any language.

    POST /sandbox/calls                {"from": "+15551230000", "to": "100", "app": "voxflow",
                                        "dtx": false}
    GET  /sandbox/calls                list of calls
    GET  /sandbox/calls/{id}           {"id", "state", "hangup_cause", "experience": [...]}
    POST /sandbox/calls/{id}/press     {"digits": "12#", "duration_ms": 100, "gap_ms": 100}
    POST /sandbox/calls/{id}/say       {"text": "sales please", "voice": "en-gb+f3", "speed": 160,
                                        "noise_snr_db": 20}
    POST /sandbox/calls/{id}/silence   {"seconds": 2}
    POST /sandbox/calls/{id}/hangup    {"cause": 16}
    POST /sandbox/calls/{id}/answer    (outbound far end ringing)
    GET  /sandbox/calls/{id}/audio     WAV of what the caller heard
    POST /sandbox/outbound             {"endpoint": "PJSIP/alice", "behaviour": "busy"}
    POST /sandbox/queues               {"name": "support", "agents": [{"name": "ann",
                                        "answer_after": 2, "talk": 30}], "maxlen": 0,
                                        "joinempty": true, "leavewhenempty": false}
    POST /sandbox/faults               {"drop_events_socket": "voxflow", "fail_next_requests": 2,
                                        "rtp_loss": 0.05, ...}
    POST /sandbox/broadcast-calls      {"from", "to", "timeout": 3, "app_filter": "^voxflow-",
                                        "args": ["sales"], "notify_claimed": true}
    POST /sandbox/outbound-websockets  {"app": "voxflow", "uri": "ws://127.0.0.1:8765/voxflow",
                                        "connection_type": "per_call_config", "username", ...}

Same credentials as ARI (Basic or ``api_key``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from voxflow.errors import CallEndedError, ConfigError

from .audio import wav_bytes
from .dialplan import QueueAgent
from .outbound import OutboundWebsocket
from .rest import check_auth, unauthorized

if TYPE_CHECKING:
    from .caller import SimCall
    from .server import Sandbox

__all__ = ["add_control_routes"]

_H = Callable[[web.Request], Awaitable[web.StreamResponse]]
_Handler = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


def _err(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


async def _read_body(request: web.Request) -> dict[str, Any] | web.Response:
    """The request's JSON object merged with its query (not ``api_key``), or a 400 response."""
    body: dict[str, Any] = {}
    if request.can_read_body:
        raw = await request.read()
        if raw.strip():
            try:
                loaded = json.loads(raw)
            except ValueError:
                return _err(400, "body must be JSON")
            if not isinstance(loaded, dict):
                return _err(400, "body must be a JSON object")
            body = loaded
    body.update({k: v for k, v in request.query.items() if k != "api_key"})
    return body


def _summary(call: SimCall, *, full: bool) -> dict[str, Any]:
    """A call as the control API shows it; ``full`` adds what the caller experienced."""
    out: dict[str, Any] = {
        "id": call.id,
        "direction": call.direction,
        "from": call.from_,
        "to": call.to,
        "app": call.app,
        "state": call.state,
        "hangup_cause": call.hangup_cause,
    }
    if full:
        out["experience"] = call.experience()
    return out


def _optional_float(body: dict[str, Any], key: str) -> float | None:
    """``body[key]`` as a float, or None when the key is absent."""
    return float(body[key]) if key in body else None


class _ControlApi:
    """The /sandbox/... handlers over one sandbox; each takes the request and its body."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb

    def guarded(self, fn: _Handler) -> _H:
        """Wrap ``fn`` with the sandbox's auth, body parsing and errors mapped to 4xx."""

        async def handler(request: web.Request) -> web.StreamResponse:
            if not check_auth(request, self.sb.user, self.sb.password):
                return unauthorized()
            body = await _read_body(request)
            if isinstance(body, web.Response):
                return body
            try:
                return await fn(request, body)
            except CallEndedError as exc:
                return _err(409, str(exc))
            except (ConfigError, ValueError, TypeError, KeyError) as exc:
                return _err(400, f"bad request: {exc}")

        return handler

    def call_of(self, request: web.Request) -> SimCall:
        """The call named by the URL's ``{id}``, or a JSON 404."""
        call = self.sb.calls.get(request.match_info["id"])
        if call is None:
            raise web.HTTPNotFound(
                text=json.dumps({"message": "Call not found"}), content_type="application/json"
            )
        return call

    async def place(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """POST /sandbox/calls: a caller dials in; 409 with the reason if it ended at once."""
        call = await self.sb.place_call(
            from_=str(body.get("from", "+15551230000")),
            to=str(body.get("to", "100")),
            app=str(body.get("app", "voxflow")),
            name=str(body.get("name", "")),
            args=[str(a) for a in body.get("args", [])],
            wait_app=float(body.get("wait_app", 5.0)),
            dtx=bool(body["dtx"]) if "dtx" in body else None,
            variables={str(k): str(v) for k, v in dict(body.get("variables") or {}).items()},
        )
        if call.ended:
            reason = next(
                (str(e["reason"]) for e in reversed(call.experience()) if e.get("reason")),
                "the call ended before it reached the app",
            )
            return web.json_response({"message": reason, **_summary(call, full=True)}, status=409)
        return web.json_response(_summary(call, full=False), status=201)

    async def broadcast(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """POST /sandbox/broadcast-calls: a call offered to every matching app."""
        call = await self.sb.place_broadcast_call(
            from_=str(body.get("from", "+15551230000")),
            to=str(body.get("to", "100")),
            timeout=float(body.get("timeout", 3.0)),
            app_filter=str(body.get("app_filter", "")),
            args=[str(a) for a in body.get("args", [])],
            notify_claimed=bool(body.get("notify_claimed", False)),
            name=str(body.get("name", "")),
        )
        return web.json_response(_summary(call, full=False), status=201)

    async def outbound_ws(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """POST /sandbox/outbound-websockets: configure an outbound websocket to an app."""
        self.sb.add_outbound_websocket(
            OutboundWebsocket(
                str(body.get("app", "voxflow")),
                str(body["uri"]),
                str(body.get("username", self.sb.user)),
                str(body.get("password", self.sb.password)),
                connection_type=str(body.get("connection_type", "per_call_config")),
                connection_timeout=float(body.get("connection_timeout", 0.5)),
                reconnect_interval=float(body.get("reconnect_interval", 0.5)),
                reconnect_attempts=int(body.get("reconnect_attempts", 4)),
            )
        )
        return web.Response(status=204)

    async def list_calls(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """GET /sandbox/calls: every call, without its experience."""
        return web.json_response([_summary(c, full=False) for c in self.sb.calls.values()])

    async def get_call(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """GET /sandbox/calls/{id}: one call with its experience."""
        return web.json_response(_summary(self.call_of(request), full=True))

    async def press(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """POST /sandbox/calls/{id}/press: the caller presses DTMF digits."""
        await self.call_of(request).press(
            str(body["digits"]),
            duration_ms=int(body.get("duration_ms", 100)),
            gap_ms=int(body.get("gap_ms", 100)),
        )
        return web.Response(status=204)

    async def say(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """POST /sandbox/calls/{id}/say: the caller speaks synthesized text."""
        snr = body.get("noise_snr_db")
        await self.call_of(request).say(
            str(body["text"]),
            voice=str(body.get("voice", "en-us")),
            speed=int(body.get("speed", 160)),
            noise_snr_db=None if snr is None else float(snr),
        )
        return web.Response(status=204)

    async def silence(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """POST /sandbox/calls/{id}/silence: the caller stays silent for a while."""
        await self.call_of(request).silence(float(body.get("seconds", 1.0)))
        return web.Response(status=204)

    async def hangup(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """POST /sandbox/calls/{id}/hangup: the caller hangs up with a cause."""
        await self.call_of(request).hangup(int(body.get("cause", 16)))
        return web.Response(status=204)

    async def answer(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """POST /sandbox/calls/{id}/answer: the ringing far end of an outbound call answers."""
        await self.call_of(request).answer()
        return web.Response(status=204)

    async def audio(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """GET /sandbox/calls/{id}/audio: a WAV of what the caller heard."""
        return web.Response(
            body=wav_bytes(self.call_of(request).heard_audio()), content_type="audio/wav"
        )

    async def outbound(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """POST /sandbox/outbound: how an outbound endpoint behaves when dialled."""
        self.sb.set_outbound_behaviour(str(body["endpoint"]), str(body["behaviour"]))
        return web.Response(status=204)

    async def queues(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """POST /sandbox/queues: a queue with its scripted agents."""
        agents = [
            QueueAgent(
                str(a.get("name", "agent")),
                None if a.get("answer_after") is None else float(a["answer_after"]),
                float(a.get("talk", 3.0)),
            )
            for a in body.get("agents", [])
        ]
        self.sb.add_queue(
            str(body["name"]),
            agents,
            maxlen=int(body.get("maxlen", 0)),
            joinempty=bool(body.get("joinempty", True)),
            leavewhenempty=bool(body.get("leavewhenempty", False)),
            context=str(body.get("context", "")),
        )
        return web.Response(status=204)

    async def faults(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """POST /sandbox/faults: inject event, REST and RTP faults (or ``clear`` them)."""
        f = self.sb.faults
        if "drop_events_socket" in body:
            f.drop_events_socket(str(body["drop_events_socket"]))
        if "stall_events" in body:
            f.stall_events(float(body["stall_events"]))
        if "delay_events_ms" in body:
            f.delay_events(float(body["delay_events_ms"]))
        if "drop_next_events" in body:
            f.drop_next_events(int(body["drop_next_events"]))
        if "fail_next_requests" in body:
            f.fail_next_requests(
                int(body["fail_next_requests"]),
                int(body.get("status", 500)),
                method=body.get("fail_method"),
                path=body.get("fail_path"),
            )
        if "send_malformed_event" in body:
            f.send_malformed_event(str(body["send_malformed_event"]))
        f.set_rtp(
            loss=_optional_float(body, "rtp_loss"),
            reorder=_optional_float(body, "rtp_reorder"),
            jitter_ms=_optional_float(body, "rtp_jitter_ms"),
        )
        if body.get("clear"):
            f.clear()
        return web.Response(status=204)


def add_control_routes(app: web.Application, sb: Sandbox) -> None:
    """Register /sandbox/... on ``app``."""
    api = _ControlApi(sb)
    routes: list[tuple[str, str, _Handler]] = [
        ("POST", "/sandbox/calls", api.place),
        ("GET", "/sandbox/calls", api.list_calls),
        ("GET", "/sandbox/calls/{id}", api.get_call),
        ("POST", "/sandbox/calls/{id}/press", api.press),
        ("POST", "/sandbox/calls/{id}/say", api.say),
        ("POST", "/sandbox/calls/{id}/silence", api.silence),
        ("POST", "/sandbox/calls/{id}/hangup", api.hangup),
        ("POST", "/sandbox/calls/{id}/answer", api.answer),
        ("GET", "/sandbox/calls/{id}/audio", api.audio),
        ("POST", "/sandbox/outbound", api.outbound),
        ("POST", "/sandbox/queues", api.queues),
        ("POST", "/sandbox/faults", api.faults),
        ("POST", "/sandbox/broadcast-calls", api.broadcast),
        ("POST", "/sandbox/outbound-websockets", api.outbound_ws),
    ]
    for method, path, fn in routes:
        add = app.router.add_get if method == "GET" else app.router.add_post
        add(path, api.guarded(fn))
