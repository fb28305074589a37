"""ARI REST handlers for playbacks, recordings, sounds, endpoints, user events and device
states (mixed into :class:`voxflow.sandbox.rest.AriRest`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .model import RestError
from .recfiles import RECORDING_FORMATS, stored_path
from .restutil import Req, empty, json_response

if TYPE_CHECKING:
    from .pbx import Pbx

__all__ = ["RestMisc"]


class RestMisc:
    """Handlers that are not about channels and bridges."""

    @property
    def pbx(self) -> Pbx:
        raise NotImplementedError

    # --- playbacks and recordings ------------------------------------------------------------

    async def get_playback(self, q: Req) -> web.Response:
        pb = self.pbx.playbacks.get(q.groups[0])
        if pb is None:
            raise RestError(404, "Playback not found")
        return json_response(pb.json())

    async def stop_playback(self, q: Req) -> web.Response:
        self.pbx.stop_playback(q.groups[0])
        return empty()

    async def control_playback(self, q: Req) -> web.Response:
        op = q.get("operation")
        if not op:
            raise RestError(400, "Missing parameter operation")
        self.pbx.control_playback(q.groups[0], op)
        return empty()

    def _stored(self, name: str) -> Any:
        p = stored_path(self.pbx.recordings_dir, name)
        if p is None:
            raise RestError(404, "Recording not found")
        return p

    async def stored_list(self, q: Req) -> web.Response:
        d = self.pbx.recordings_dir
        out = []
        if d.is_dir():
            for p in sorted(d.rglob("*")):
                if p.is_file() and p.suffix[1:] in RECORDING_FORMATS:
                    out.append(
                        {"name": str(p.relative_to(d).with_suffix("")), "format": p.suffix[1:]}
                    )
        return json_response(out)

    async def stored_get(self, q: Req) -> web.Response:
        p = self._stored(q.groups[0])
        return json_response({"name": q.groups[0], "format": p.suffix[1:]})

    async def stored_delete(self, q: Req) -> web.Response:
        self._stored(q.groups[0]).unlink()
        return empty()

    async def stored_file(self, q: Req) -> web.Response:
        p = self._stored(q.groups[0])
        ctype = "audio/wav" if p.suffix in (".wav", ".wav16") else "application/octet-stream"
        return web.Response(body=p.read_bytes(), content_type=ctype)

    async def stored_copy(self, q: Req) -> web.Response:
        src = self._stored(q.groups[0])
        dest = q.get("destinationRecordingName")
        if not dest:
            raise RestError(400, "destinationRecordingName is required")
        if ".." in dest.split("/") or dest.startswith("/"):
            raise RestError(403, "Destination is not allowed")
        if stored_path(self.pbx.recordings_dir, dest) is not None:
            raise RestError(409, "A recording with the same name already exists on the system")
        target = self.pbx.recording_file(dest, src.suffix[1:])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(src.read_bytes())
        return json_response({"name": dest, "format": src.suffix[1:]})

    def _live(self, name: str) -> Any:
        rec = self.pbx.live_recordings.get(name)
        if rec is None:
            raise RestError(404, "Recording not found")
        return rec

    async def live_get(self, q: Req) -> web.Response:
        return json_response(self._live(q.groups[0]).json())

    async def live_cancel(self, q: Req) -> web.Response:
        self.pbx.finish_recording(self._live(q.groups[0]), cancel=True)
        return empty()

    async def live_stop(self, q: Req) -> web.Response:
        self.pbx.finish_recording(self._live(q.groups[0]))
        return empty()

    async def live_pause(self, q: Req) -> web.Response:
        rec = self._live(q.groups[0])
        rec.state = "paused"
        return empty()

    async def live_unpause(self, q: Req) -> web.Response:
        rec = self._live(q.groups[0])
        if rec.state != "paused":
            raise RestError(409, "Recording not in session")
        rec.state = "recording"
        return empty()

    async def live_mute(self, q: Req) -> web.Response:
        self._live(q.groups[0]).muted = True
        return empty()

    async def live_unmute(self, q: Req) -> web.Response:
        self._live(q.groups[0]).muted = False
        return empty()

    # --- sounds, endpoints, user events, device states ---------------------------------------

    async def sounds(self, q: Req) -> web.Response:
        fmts = [{"language": "en", "format": "slin"}]
        return json_response([{"id": n, "formats": fmts} for n in self.pbx.sounds.names()])

    async def sound(self, q: Req) -> web.Response:
        name = q.groups[0]
        if name not in self.pbx.sounds.names():
            raise RestError(404, "Sound not found")
        return json_response({"id": name, "formats": [{"language": "en", "format": "slin"}]})

    async def endpoints(self, q: Req) -> web.Response:
        return json_response([])

    async def endpoints_tech(self, q: Req) -> web.Response:
        if q.groups[0] not in ("PJSIP", "SIP", "Local"):
            raise RestError(404, "No Endpoints found - invalid tech " + q.groups[0])
        return json_response([])

    async def endpoint(self, q: Req) -> web.Response:
        tech, res = q.groups
        if tech not in ("PJSIP", "SIP"):
            raise RestError(404, "Endpoint not found")
        ids = [c.id for c in self.pbx.channels.values() if c.name.startswith(f"{tech}/{res}-")]
        return json_response(
            {"technology": tech, "resource": res, "state": "online", "channel_ids": ids}
        )

    async def user_event(self, q: Req) -> web.Response:
        name = q.groups[0]
        app = q.get("application")
        if not app:
            raise RestError(400, "Missing parameter application")
        if app not in self.pbx.apps:
            raise RestError(404, "Application not found")
        variables = {}
        if isinstance(q.body, dict) and isinstance(q.body.get("variables"), dict):
            variables = {str(k): str(v) for k, v in q.body["variables"].items()}
        fields: dict[str, Any] = {"eventname": name, "userevent": {**variables, "eventname": name}}
        for src in [s for s in q.get("source").split(",") if s]:
            kind, _, ident = src.partition(":")
            if kind == "channel":
                fields["channel"] = self.pbx.get_channel(ident).json()
            elif kind == "bridge":
                fields["bridge"] = self.pbx.get_bridge(ident).json()
            else:
                raise RestError(400, "Invalid event source")
        self.pbx.emit("ChannelUserevent", fields, apps=[app])
        return empty()

    async def device_list(self, q: Req) -> web.Response:
        return json_response([{"name": n, "state": s} for n, s in self.pbx.device_states.items()])

    def _device(self, name: str) -> str:
        if not name.startswith("Stasis:"):
            raise RestError(409, "Device state is not controlled by ARI")
        return name

    async def device_get(self, q: Req) -> web.Response:
        name = q.groups[0]
        return json_response({"name": name, "state": self.pbx.device_states.get(name, "UNKNOWN")})

    async def device_put(self, q: Req) -> web.Response:
        name = self._device(q.groups[0])
        state = q.get("deviceState")
        valid = (
            "NOT_INUSE",
            "INUSE",
            "BUSY",
            "INVALID",
            "UNAVAILABLE",
            "RINGING",
            "RINGINUSE",
            "ONHOLD",
            "UNKNOWN",
        )
        if state not in valid:
            raise RestError(400, "Invalid device state")
        self.pbx.device_states[name] = state
        apps = [a.name for a in self.pbx.apps.values() if name in a.device_names or a.subscribe_all]
        self.pbx.emit(
            "DeviceStateChanged", {"device_state": {"name": name, "state": state}}, apps=apps
        )
        return empty()

    async def device_del(self, q: Req) -> web.Response:
        name = self._device(q.groups[0])
        if name not in self.pbx.device_states:
            raise RestError(404, "Device not found")
        del self.pbx.device_states[name]
        return empty()
