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


def _err(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def add_control_routes(app: web.Application, sb: Sandbox) -> None:
    """Register /sandbox/... on ``app``."""

    def guarded(fn: Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]) -> _H:
        async def handler(request: web.Request) -> web.StreamResponse:
            if not check_auth(request, sb.user, sb.password):
                return unauthorized()
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
            try:
                return await fn(request, body)
            except CallEndedError as exc:
                return _err(409, str(exc))
            except (ConfigError, ValueError, TypeError, KeyError) as exc:
                return _err(400, f"bad request: {exc}")

        return handler

    def call_of(request: web.Request) -> SimCall:
        cid = request.match_info["id"]
        call = sb.calls.get(cid)
        if call is None:
            raise web.HTTPNotFound(
                text=json.dumps({"message": "Call not found"}), content_type="application/json"
            )
        return call

    def summary(call: SimCall, *, full: bool) -> dict[str, Any]:
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

    async def place(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        call = await sb.place_call(
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
            return web.json_response({"message": reason, **summary(call, full=True)}, status=409)
        return web.json_response(summary(call, full=False), status=201)

    async def broadcast(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        call = await sb.place_broadcast_call(
            from_=str(body.get("from", "+15551230000")),
            to=str(body.get("to", "100")),
            timeout=float(body.get("timeout", 3.0)),
            app_filter=str(body.get("app_filter", "")),
            args=[str(a) for a in body.get("args", [])],
            notify_claimed=bool(body.get("notify_claimed", False)),
            name=str(body.get("name", "")),
        )
        return web.json_response(summary(call, full=False), status=201)

    async def outbound_ws(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        sb.add_outbound_websocket(
            OutboundWebsocket(
                str(body.get("app", "voxflow")),
                str(body["uri"]),
                str(body.get("username", sb.user)),
                str(body.get("password", sb.password)),
                connection_type=str(body.get("connection_type", "per_call_config")),
                connection_timeout=float(body.get("connection_timeout", 0.5)),
                reconnect_interval=float(body.get("reconnect_interval", 0.5)),
                reconnect_attempts=int(body.get("reconnect_attempts", 4)),
            )
        )
        return web.Response(status=204)

    async def list_calls(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.json_response([summary(c, full=False) for c in sb.calls.values()])

    async def get_call(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.json_response(summary(call_of(request), full=True))

    async def press(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        await call_of(request).press(
            str(body["digits"]),
            duration_ms=int(body.get("duration_ms", 100)),
            gap_ms=int(body.get("gap_ms", 100)),
        )
        return web.Response(status=204)

    async def say(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        snr = body.get("noise_snr_db")
        await call_of(request).say(
            str(body["text"]),
            voice=str(body.get("voice", "en-us")),
            speed=int(body.get("speed", 160)),
            noise_snr_db=None if snr is None else float(snr),
        )
        return web.Response(status=204)

    async def silence(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        await call_of(request).silence(float(body.get("seconds", 1.0)))
        return web.Response(status=204)

    async def hangup(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        await call_of(request).hangup(int(body.get("cause", 16)))
        return web.Response(status=204)

    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        await call_of(request).answer()
        return web.Response(status=204)

    async def audio(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.Response(
            body=wav_bytes(call_of(request).heard_audio()), content_type="audio/wav"
        )

    async def outbound(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        sb.set_outbound_behaviour(str(body["endpoint"]), str(body["behaviour"]))
        return web.Response(status=204)

    async def queues(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        agents = [
            QueueAgent(
                str(a.get("name", "agent")),
                None if a.get("answer_after") is None else float(a["answer_after"]),
                float(a.get("talk", 3.0)),
            )
            for a in body.get("agents", [])
        ]
        sb.add_queue(
            str(body["name"]),
            agents,
            maxlen=int(body.get("maxlen", 0)),
            joinempty=bool(body.get("joinempty", True)),
            leavewhenempty=bool(body.get("leavewhenempty", False)),
        )
        return web.Response(status=204)

    async def faults(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        f = sb.faults
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
            loss=float(body["rtp_loss"]) if "rtp_loss" in body else None,
            reorder=float(body["rtp_reorder"]) if "rtp_reorder" in body else None,
            jitter_ms=float(body["rtp_jitter_ms"]) if "rtp_jitter_ms" in body else None,
        )
        if body.get("clear"):
            f.clear()
        return web.Response(status=204)

    r = app.router
    r.add_post("/sandbox/calls", guarded(place))
    r.add_get("/sandbox/calls", guarded(list_calls))
    r.add_get("/sandbox/calls/{id}", guarded(get_call))
    r.add_post("/sandbox/calls/{id}/press", guarded(press))
    r.add_post("/sandbox/calls/{id}/say", guarded(say))
    r.add_post("/sandbox/calls/{id}/silence", guarded(silence))
    r.add_post("/sandbox/calls/{id}/hangup", guarded(hangup))
    r.add_post("/sandbox/calls/{id}/answer", guarded(answer))
    r.add_get("/sandbox/calls/{id}/audio", guarded(audio))
    r.add_post("/sandbox/outbound", guarded(outbound))
    r.add_post("/sandbox/queues", guarded(queues))
    r.add_post("/sandbox/faults", guarded(faults))
    r.add_post("/sandbox/broadcast-calls", guarded(broadcast))
    r.add_post("/sandbox/outbound-websockets", guarded(outbound_ws))
