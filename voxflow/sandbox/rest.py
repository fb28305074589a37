"""ARI REST under /ari: routing, auth and handlers, answering like Asterisk 22.

Our own small router (not aiohttp's) so unknown paths give 404 "Resource not found" and
known paths with another method give 405 "Invalid method", exactly as Asterisk does.
Query parameters and JSON body fields are merged (Asterisk accepts both).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from aiohttp import web

from .model import Bridge, Channel, RestError
from .rest_misc import RestMisc
from .restutil import (
    Req,
    check_auth,
    empty,
    error_response,
    json_response,
    merge_body_params,
    unauthorized,
)
from .rtp import PAYLOAD_TYPES

if TYPE_CHECKING:
    from .pbx import Pbx
    from .server import Sandbox

__all__ = ["AriRest", "check_auth", "unauthorized"]

log = logging.getLogger(__name__)

Handler = Callable[["Req"], Awaitable[web.StreamResponse]]
_SEG = r"([^/]+)"


class AriRest(RestMisc):
    """The /ari REST surface over one Sandbox."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = []
        # (method, path) of the latest requests by how they came: HTTP or over a websocket.
        self.http_log: deque[tuple[str, str]] = deque(maxlen=10_000)
        self.ws_log: deque[tuple[str, str]] = deque(maxlen=10_000)
        self._build()

    @property
    def pbx(self) -> Pbx:
        return self.sb.pbx

    def route(self, path: str, **methods: Handler) -> None:
        pattern = re.compile("^" + path.replace("{}", _SEG) + "$")
        self.routes.append((pattern, {m.upper(): h for m, h in methods.items()}))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Entry point for every /ari request except the events websocket."""
        if not check_auth(request, self.sb.user, self.sb.password):
            return unauthorized()
        path = request.match_info.get("tail", "")
        path = "/" + path.strip("/")
        self.http_log.append((request.method, path))
        try:
            params, body = await self._params(request)
        except RestError as exc:
            return error_response(exc.status, exc.message, exc.key)
        return await self.dispatch(request.method, path, params, body)

    async def dispatch(
        self, method: str, path: str, params: dict[str, Any], body: Any, *, quoted: bool = False
    ) -> web.StreamResponse:
        """Route one request (HTTP or REST over the websocket) to its handler.
        ``quoted``: path segments are percent-encoded (decoded after matching)."""
        fault = self.sb.faults.take_request_failure(method, path)
        if fault is not None:
            return error_response(fault, "Internal Server Error")
        await self.sb.faults.hold(method, path)  # Faults.late_requests
        late = self.sb.faults.answer_delay(method, path)
        answer = await self._route(method, path, params, body, quoted)
        if late:
            await asyncio.sleep(late)  # served now, answered late (Faults.slow_requests)
        return answer

    async def _route(
        self, method: str, path: str, params: dict[str, Any], body: Any, quoted: bool
    ) -> web.StreamResponse:
        for pattern, methods in self.routes:
            m = pattern.match(path)
            if not m:
                continue
            handler = methods.get(method)
            if handler is None:
                return error_response(405, "Invalid method")
            groups = tuple(unquote(g) for g in m.groups()) if quoted else m.groups()
            try:
                return await handler(Req(None, groups, params, body))
            except RestError as exc:
                return error_response(exc.status, exc.message, exc.key)
        return error_response(404, "Resource not found")

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], Any]:
        params: dict[str, Any] = {}
        for k in request.query:
            if k != "api_key":
                params[k] = ",".join(request.query.getall(k))
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                ctype = request.content_type
                if ctype == "application/x-www-form-urlencoded":
                    form = await request.post()
                    params.update({k: str(v) for k, v in form.items()})
                else:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise RestError(400, "Failed to parse JSON body") from None
                    merge_body_params(params, body)
        return params, body

    # --- table -----------------------------------------------------------------------------

    def _build(self) -> None:
        r = self.route
        r("/asterisk/info", get=self.info)
        r("/asterisk/ping", get=self.ping)
        r("/asterisk/variable", get=self.get_global, post=self.set_global)
        r("/asterisk/modules/{}", get=self.module)
        r("/applications", get=self.apps)
        r("/applications/{}", get=self.app)
        r("/applications/{}/subscription", post=self.subscribe, delete=self.unsubscribe)
        r("/channels", get=self.list_channels, post=self.originate)
        r("/channels/create", post=self.create_channel)
        r("/channels/externalMedia", post=self.external_media)
        r("/channels/{}", get=self.get_channel, post=self.originate_id, delete=self.hangup)
        r("/channels/{}/answer", post=self.answer)
        r("/channels/{}/ring", post=self.ring, delete=self.ring_stop)
        r("/channels/{}/dial", post=self.dial)
        r("/channels/{}/continue", post=self.continue_)
        r("/channels/{}/redirect", post=self.redirect)
        r("/channels/{}/dtmf", post=self.dtmf)
        r("/channels/{}/hold", post=self.hold, delete=self.unhold)
        r("/channels/{}/moh", post=self.moh, delete=self.moh_stop)
        r("/channels/{}/silence", post=self.silence, delete=self.silence_stop)
        r("/channels/{}/mute", post=self.noop_chan, delete=self.noop_chan)
        r("/channels/{}/play", post=self.play_channel)
        r("/channels/{}/play/{}", post=self.play_channel)
        r("/channels/{}/record", post=self.record_channel)
        r("/channels/{}/variable", get=self.get_var, post=self.set_var)
        r("/channels/{}/snoop", post=self.snoop)
        r("/channels/{}/snoop/{}", post=self.snoop)
        r("/channels/{}/rtp_statistics", get=self.rtp_stats)
        r("/bridges", get=self.list_bridges, post=self.create_bridge)
        r("/bridges/{}", get=self.get_bridge, post=self.create_bridge, delete=self.destroy_bridge)
        r("/bridges/{}/addChannel", post=self.add_channel)
        r("/bridges/{}/removeChannel", post=self.remove_channel)
        r("/bridges/{}/moh", post=self.bridge_moh, delete=self.bridge_moh_stop)
        r("/bridges/{}/play", post=self.play_bridge)
        r("/bridges/{}/play/{}", post=self.play_bridge)
        r("/bridges/{}/record", post=self.record_bridge)
        r("/playbacks/{}", get=self.get_playback, delete=self.stop_playback)
        r("/playbacks/{}/control", post=self.control_playback)
        r("/recordings/stored", get=self.stored_list)
        r("/recordings/stored/{}", get=self.stored_get, delete=self.stored_delete)
        r("/recordings/stored/{}/file", get=self.stored_file)
        r("/recordings/stored/{}/copy", post=self.stored_copy)
        r("/recordings/live/{}", get=self.live_get, delete=self.live_cancel)
        r("/recordings/live/{}/stop", post=self.live_stop)
        r("/recordings/live/{}/pause", post=self.live_pause, delete=self.live_unpause)
        r("/recordings/live/{}/mute", post=self.live_mute, delete=self.live_unmute)
        r("/sounds", get=self.sounds)
        r("/sounds/{}", get=self.sound)
        r("/endpoints", get=self.endpoints)
        r("/endpoints/{}", get=self.endpoints_tech)
        r("/endpoints/{}/{}", get=self.endpoint)
        r("/events/user/{}", post=self.user_event)
        r("/events/claim", post=self.claim)
        r("/deviceStates", get=self.device_list)
        r("/deviceStates/{}", get=self.device_get, put=self.device_put, delete=self.device_del)

    async def claim(self, q: Req) -> web.Response:
        """POST /events/claim?channelId=&application= (StasisBroadcast, Asterisk 22.10+)."""
        self.sb.broadcasts.claim(q.get("channelId"), q.get("application"))
        return empty()

    # --- asterisk ----------------------------------------------------------------------------

    async def info(self, q: Req) -> web.Response:
        ts = self.sb.started_ts
        return json_response(
            {
                "build": {
                    "os": "Linux",
                    "kernel": "sandbox",
                    "machine": "x86_64",
                    "options": "OPTIONAL_API",
                    "date": ts,
                    "user": "voxflow",
                },
                "system": {"version": "22.10.1", "entity_id": self.pbx.asterisk_id},
                "config": {
                    "name": "",
                    "default_language": "en",
                    "setid": {"user": "", "group": ""},
                },
                "status": {"startup_time": ts, "last_reload_time": ts},
            }
        )

    async def ping(self, q: Req) -> web.Response:
        return json_response(
            {"ping": "pong", "timestamp": self.pbx.now_ts(), "asterisk_id": self.pbx.asterisk_id}
        )

    async def get_global(self, q: Req) -> web.Response:
        name = q.get("variable")
        if not name:
            raise RestError(400, "Variable name is required")
        return json_response({"value": self.pbx.global_vars.get(name, "")})

    async def set_global(self, q: Req) -> web.Response:
        name = q.get("variable")
        if not name:
            raise RestError(400, "Variable name is required")
        self.pbx.global_vars[name] = q.get("value")
        return empty()

    async def module(self, q: Req) -> web.Response:
        name = q.groups[0]
        if name != "res_ari.so":
            raise RestError(404, "Module could not be found in running modules")
        return json_response(
            {
                "name": name,
                "description": "Asterisk RESTful Interface",
                "use_count": 1,
                "status": "Running",
                "support_level": "core",
            }
        )

    # --- applications ------------------------------------------------------------------------

    async def apps(self, q: Req) -> web.Response:
        return json_response([self.pbx.app_json(n) for n in sorted(self.pbx.apps)])

    def _app(self, name: str) -> str:
        if name not in self.pbx.apps:
            raise RestError(404, "Application not found")
        return name

    async def app(self, q: Req) -> web.Response:
        return json_response(self.pbx.app_json(self._app(q.groups[0])))

    def _sources(self, q: Req) -> list[tuple[str, str]]:
        raw = q.get("eventSource")
        if not raw:
            raise RestError(400, "Missing parameter eventSource")
        out = []
        for src in raw.split(","):
            kind, _, ident = src.partition(":")
            if kind not in ("channel", "bridge", "endpoint", "deviceState") or not ident:
                raise RestError(400, "Invalid event source URI scheme")
            out.append((kind, ident))
        return out

    async def subscribe(self, q: Req) -> web.Response:
        name = self._app(q.groups[0])
        for kind, ident in self._sources(q):
            if kind == "channel":
                ch = self.pbx.channels.get(ident)
                if ch is None:
                    raise RestError(422, "Event source does not exist")
                ch.subs.add(name)
                ch.explicit_subs.add(name)
            elif kind == "bridge":
                br = self.pbx.bridges.get(ident)
                if br is None:
                    raise RestError(422, "Event source does not exist")
                br.explicit_subs.add(name)
            elif kind == "endpoint":
                self.pbx.apps[name].endpoint_ids.add(ident)
            else:
                self.pbx.apps[name].device_names.add(ident)
        return json_response(self.pbx.app_json(name))

    async def unsubscribe(self, q: Req) -> web.Response:
        name = self._app(q.groups[0])
        for kind, ident in self._sources(q):
            ch = self.pbx.channels.get(ident) if kind == "channel" else None
            br = self.pbx.bridges.get(ident) if kind == "bridge" else None
            if (kind == "channel" and (ch is None or name not in ch.subs | ch.explicit_subs)) or (
                kind == "bridge" and (br is None or br.destroyed)
            ):  # (continue-outcomes.json: a channel gone since)
                raise RestError(422, "Event source was not subscribed to")
            if ch is not None:
                ch.explicit_subs.discard(name)
                if ch.app != name:
                    ch.subs.discard(name)
            elif br is not None:
                br.explicit_subs.discard(name)
            elif kind == "endpoint":
                self.pbx.apps[name].endpoint_ids.discard(ident)
            elif kind == "deviceState":
                self.pbx.apps[name].device_names.discard(ident)
        return json_response(self.pbx.app_json(name))

    # --- channels ----------------------------------------------------------------------------

    async def list_channels(self, q: Req) -> web.Response:
        return json_response([c.json() for c in self.pbx.channels.values() if not c.hungup])

    async def get_channel(self, q: Req) -> web.Response:
        return json_response(self.pbx.get_channel(q.groups[0]).json())

    async def originate(self, q: Req) -> web.Response:
        return json_response(self.pbx.originate(q.params).json())

    async def originate_id(self, q: Req) -> web.Response:
        q.params["channelId"] = q.groups[0]
        return json_response(self.pbx.originate(q.params).json())

    async def create_channel(self, q: Req) -> web.Response:
        return json_response(self.pbx.originate(q.params, dial_now=False).json())

    async def dial(self, q: Req) -> web.Response:
        ch = self.pbx.stasis_channel(q.groups[0])
        timeout = q.num("timeout", 0)
        if ch.tech == "Local":
            if ch.variables.get("__dialed"):
                raise RestError(409, "Channel is already dialed")
            ch.variables["__dialed"] = "1"
            self.pbx.dial_local_created(ch, timeout)
        else:
            self.pbx.dial(ch, timeout)
        return empty()

    async def hangup(self, q: Req) -> web.Response:
        ch = self.pbx.get_channel(q.groups[0])
        cause = self.pbx.hangup_cause(q.get("reason") or None, q.get("reason_code") or None)
        self.pbx.hangup(ch, cause, soft=True)
        return empty()

    async def answer(self, q: Req) -> web.Response:
        self.pbx.answer(self.pbx.stasis_channel(q.groups[0]))
        return empty()

    async def ring(self, q: Req) -> web.Response:
        ch = self.pbx.stasis_channel(q.groups[0])
        if ch.far is not None:
            ch.far.far_event("ringing", {})
        if ch.tech == "Local" and ch.peer is not None and ch.peer.state == "Down":
            self.pbx.set_state(ch.peer, "Ringing")
        return empty()

    async def ring_stop(self, q: Req) -> web.Response:
        self.pbx.stasis_channel(q.groups[0])
        return empty()

    async def continue_(self, q: Req) -> web.Response:
        ch = self.pbx.stasis_channel(q.groups[0])
        context, exten, label = q.get("context"), q.get("extension"), q.get("label")
        if label:  # resolved now: an unknown one is refused, the channel stays in Stasis
            self.pbx.label_priority(context or ch.context, exten or ch.exten, label)
        self.pbx.continue_in_dialplan(ch, context, exten, int(q.num("priority", 0)), label)
        return empty()

    async def redirect(self, q: Req) -> web.Response:
        self.pbx.redirect(self.pbx.stasis_channel(q.groups[0]), q.get("endpoint"))
        return empty()

    async def dtmf(self, q: Req) -> web.Response:
        ch = self.pbx.stasis_channel(q.groups[0])
        digits = q.get("dtmf")
        if not digits:
            raise RestError(400, "DTMF is required")
        digits = self.pbx.normalise_dtmf(digits)
        self.pbx.send_dtmf(
            ch,
            digits,
            before=int(q.num("before", 0)),
            between=int(q.num("between", 100)),
            duration=int(q.num("duration", 100)),
            after=int(q.num("after", 0)),
        )
        return empty()

    async def hold(self, q: Req) -> web.Response:
        ch = self.pbx.stasis_channel(q.groups[0])
        ch.on_hold = True
        self.pbx.far_event(ch, "hold")
        return empty()

    async def unhold(self, q: Req) -> web.Response:
        ch = self.pbx.stasis_channel(q.groups[0])
        ch.on_hold = False
        self.pbx.far_event(ch, "unhold")
        return empty()

    async def moh(self, q: Req) -> web.Response:
        ch = self.pbx.stasis_channel(q.groups[0])
        ch.moh = q.get("mohClass") or "default"
        self.pbx.far_event(ch, "moh", state="started", moh_class=ch.moh)
        self.pbx.wake_media()
        return empty()

    async def moh_stop(self, q: Req) -> web.Response:
        ch = self.pbx.stasis_channel(q.groups[0])
        if ch.moh is not None:
            ch.moh = None
            self.pbx.far_event(ch, "moh", state="stopped")
        return empty()

    async def silence(self, q: Req) -> web.Response:
        self.pbx.stasis_channel(q.groups[0]).silenced = True
        return empty()

    async def silence_stop(self, q: Req) -> web.Response:
        self.pbx.stasis_channel(q.groups[0]).silenced = False
        return empty()

    async def noop_chan(self, q: Req) -> web.Response:
        self.pbx.stasis_channel(q.groups[0])
        return empty()

    def _media(self, q: Req) -> list[str]:
        media = [m for m in q.get("media").split(",") if m] if q.get("media") else []
        if not media:
            raise RestError(400, "media is required")
        return media

    async def play_channel(self, q: Req) -> web.Response:
        ch = self.pbx.stasis_channel(q.groups[0])
        return self._play(q, ch)

    async def play_bridge(self, q: Req) -> web.Response:
        return self._play(q, self.pbx.get_bridge(q.groups[0]))

    def _play(self, q: Req, target: Channel | Bridge) -> web.Response:
        pid = q.groups[1] if len(q.groups) > 1 else (q.get("playbackId") or None)
        pb = self.pbx.play(
            target,
            self._media(q),
            playback_id=pid,
            lang=q.get("lang", "en"),
            offsetms=int(q.num("offsetms", 0)),
            skipms=int(q.num("skipms", 3000)),
        )
        body = pb.json()
        body["state"] = "queued"
        resp = json_response(body, 201)
        resp.headers["Location"] = f"/playbacks/{quote(pb.id)}"
        return resp

    def _record(self, q: Req, target: Channel | Bridge) -> web.Response:
        fmt = q.get("format")
        if not fmt:
            raise RestError(400, "format is required")
        rec = self.pbx.start_recording(
            target,
            name=q.get("name"),
            fmt=fmt,
            max_duration=q.num("maxDurationSeconds", 0),
            max_silence=q.num("maxSilenceSeconds", 0),
            if_exists=q.get("ifExists", "fail") or "fail",
            terminate_on=q.get("terminateOn", "none") or "none",
            beep=q.bool("beep"),
        )
        body = rec.json()
        # Asterisk answers from a snapshot racing its control thread: a channel with media
        # flowing has already started ("recording"); an idle channel or a bridge is "queued".
        flowing = isinstance(target, Channel) and (
            target.spoken is not None or (target.far is not None and target.far.wants_tick)
        )
        body["state"] = "recording" if flowing and rec.state == "recording" else "queued"
        body.pop("cause", None)
        resp = json_response(body, 201)
        resp.headers["Location"] = f"/recordings/live/{quote(rec.name)}"
        return resp

    async def record_channel(self, q: Req) -> web.Response:
        # resource_channels.c checks these before it looks the channel up
        for param, what in (
            ("maxDurationSeconds", "max_duration"),
            ("maxSilenceSeconds", "max_silence"),
        ):
            if q.num(param, 0) < 0:
                raise RestError(400, f"{what}_seconds cannot be negative")
        return self._record(q, self.pbx.stasis_channel(q.groups[0]))

    async def record_bridge(self, q: Req) -> web.Response:
        return self._record(q, self.pbx.get_bridge(q.groups[0]))

    _READ_ONLY_VARS = (
        "CHANNEL(name)",
        "CHANNEL(state)",
        "CALLERID(num)",
        "CALLERID(name)",
        "CHANNEL(language)",
        "UNIQUEID",
        "EXTEN",
        "CONTEXT",
    )

    async def get_var(self, q: Req) -> web.Response:
        ch = self.pbx.get_channel(q.groups[0])
        name = q.get("variable")
        if not name:
            raise RestError(400, "Variable name is required")
        computed = {
            "CHANNEL(name)": ch.name,
            "CHANNEL(state)": ch.state,
            "CALLERID(num)": ch.caller[1],
            "CALLERID(name)": ch.caller[0],
            "CHANNEL(language)": ch.language,
            "UNIQUEID": ch.id,
            "EXTEN": ch.exten,
            "CONTEXT": ch.context,
        }
        if name in computed:
            return json_response({"value": computed[name]})
        if name.startswith("__") or name not in ch.variables:
            raise RestError(404, "Provided variable was not found")
        return json_response({"value": ch.variables[name]})

    async def set_var(self, q: Req) -> web.Response:
        ch = self.pbx.stasis_channel(q.groups[0])
        name = q.get("variable")
        if not name:
            raise RestError(400, "Variable name is required")
        self.pbx.set_var(ch, name, q.get("value"))
        return empty()

    async def snoop(self, q: Req) -> web.Response:
        target = self.pbx.stasis_channel(q.groups[0])
        sid = q.groups[1] if len(q.groups) > 1 else (q.get("snoopId") or None)
        args = [a for a in q.get("appArgs").split(",") if a]
        ch = self.pbx.snoop(
            target,
            spy=q.get("spy", "none") or "none",
            whisper=q.get("whisper", "none") or "none",
            app=q.get("app"),
            args=args,
            sid=sid,
        )
        return json_response(ch.json())

    async def rtp_stats(self, q: Req) -> web.Response:
        self.pbx.get_channel(q.groups[0])
        raise RestError(404, "RTP info not found")

    async def external_media(self, q: Req) -> web.Response:
        app = q.get("app")
        if not app:
            raise RestError(400, "app is required")
        fmt = q.get("format")
        if not fmt:
            raise RestError(400, "format is required")
        host = q.get("external_host")
        encap = q.get("encapsulation", "rtp") or "rtp"
        transport = q.get("transport", "udp") or "udp"
        if not host:
            raise RestError(
                400, "external_host is required for all but websocket server connections"
            )
        if encap != "rtp" or transport != "udp":
            raise RestError(501, "Only RTP over UDP is supported by the voxflow sandbox")
        if fmt not in PAYLOAD_TYPES:
            raise RestError(422, f"Unsupported format '{fmt}' (ulaw, alaw, slin16)")
        h, _, port = host.rpartition(":")
        if not h or not port.isdigit():
            raise RestError(400, "external_host must be host:port")
        cid = q.get("channelId") or None
        if cid:
            self.pbx.check_new_id(cid)
        try:
            far, local = self.sb.rtp.open(self.sb.host_for_rtp, fmt, (h, int(port)))
        except OSError as exc:
            raise RestError(500, f"Failed to create RTP instance: {exc}") from None
        try:
            answer = self.pbx.external_media(
                app=app, host=host, fmt=fmt, cid=cid, far=far, local=local
            )
        except RestError:
            far.close()
            raise
        return json_response(answer)

    # --- bridges -----------------------------------------------------------------------------

    async def list_bridges(self, q: Req) -> web.Response:
        return json_response([b.json() for b in self.pbx.bridges.values()])

    async def get_bridge(self, q: Req) -> web.Response:
        return json_response(self.pbx.get_bridge(q.groups[0]).json())

    async def create_bridge(self, q: Req) -> web.Response:
        bid = q.groups[0] if q.groups else (q.get("bridgeId") or None)
        br = self.pbx.create_bridge(bid, q.get("type", "mixing"), q.get("name"))
        return json_response(br.json())

    async def destroy_bridge(self, q: Req) -> web.Response:
        self.pbx.destroy_bridge(self.pbx.get_bridge(q.groups[0]))
        return empty()

    def _channels_param(self, q: Req) -> list[str]:
        ids = [c for c in q.get("channel").split(",") if c]
        if not ids:
            raise RestError(400, "Missing parameter channel")
        return ids

    async def add_channel(self, q: Req) -> web.Response:
        br = self.pbx.get_bridge(q.groups[0])
        chans = []
        for cid in self._channels_param(q):
            ch = self.pbx.channels.get(cid)
            if ch is None or ch.hungup:
                raise RestError(400, "Channel not found")
            if not ch.in_stasis:
                raise RestError(422, "Channel not in Stasis application")
            if ch.recordings:
                raise RestError(409, f"Channel {ch.id} currently recording")
            chans.append(ch)
        self.pbx.add_to_bridge(br, chans)
        for ch in chans:
            ch.bridge_role = q.get("role")
            ch.absorb_dtmf = q.bool("absorbDTMF")
            ch.bridge_muted = q.bool("mute")
        return empty()

    async def remove_channel(self, q: Req) -> web.Response:
        br = self.pbx.get_bridge(q.groups[0])
        for cid in self._channels_param(q):
            ch = self.pbx.channels.get(cid)
            if ch is None or ch.hungup:
                raise RestError(400, "Channel not found")
            self.pbx.remove_from_bridge(br, ch)
        return empty()

    async def bridge_moh(self, q: Req) -> web.Response:
        self.pbx.bridge_moh(self.pbx.get_bridge(q.groups[0]), q.get("mohClass") or "default")
        return empty()

    async def bridge_moh_stop(self, q: Req) -> web.Response:
        self.pbx.bridge_moh(self.pbx.get_bridge(q.groups[0]), None)
        return empty()
