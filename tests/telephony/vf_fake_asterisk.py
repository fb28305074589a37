"""A small ARI peer for telephony tests: real HTTP + websocket bytes, Asterisk's observed ordering
(events before the REST answer, StasisEnd without ChannelDestroyed for dialplan calls, soft hangup
cause 32, PlaybackFinished failed for missing sounds, no PlaybackFinished for unknown schemes).
Used until the sandbox (voxflow/sandbox) provides the full emulator."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

USER, PASSWORD = "voxflow", "fake-pw"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


@dataclass
class FakeChannel:
    id: str
    name: str
    caller: str
    exten: str
    state: str = "Ring"
    originated: bool = False
    in_stasis: bool = True
    bridge: str | None = None
    dtmf_sent: list[str] = field(default_factory=list)
    continued: tuple[str, str] | None = None
    moh: bool = False
    variables: dict[str, str] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "protocol_id": "",
            "caller": {"name": "", "number": self.caller},
            "connected": {"name": "", "number": ""},
            "accountcode": "",
            "dialplan": {
                "context": "voxflow-in",
                "exten": self.exten,
                "priority": 2,
                "app_name": "Stasis",
                "app_data": "voxflow",
            },
            "creationtime": _now(),
            "language": "en",
        }


class FakeAsterisk:
    """``async with FakeAsterisk() as fa:`` then ``fa.ari_url``; drive calls with place_call etc."""

    def __init__(self, *, play_seconds: float = 0.05, answer_delay: float = 0.02) -> None:
        self.play_seconds = play_seconds
        self.answer_delay = answer_delay
        self.channels: dict[str, FakeChannel] = {}
        self.bridges: dict[str, set[str]] = {}
        self.playbacks: dict[str, str] = {}
        self.recordings: dict[str, dict[str, Any]] = {}
        self.stored: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.ws: dict[str, web.WebSocketResponse] = {}
        self.connects = 0
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: TestServer | None = None

    # ------------------------------------------------------------------ server

    async def __aenter__(self) -> FakeAsterisk:
        app = web.Application()
        app.router.add_get("/ari/events", self._events)
        app.router.add_route("*", "/ari/{tail:.*}", self._rest)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for ws in list(self.ws.values()):
            await ws.close()
        assert self._server is not None
        await self._server.close()

    @property
    def ari_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.port}/ari"

    def _authorized(self, request: web.Request) -> bool:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {token}"

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.json_response({"message": "Authentication required"}, status=401)
        app = request.query.get("app", "")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        old = self.ws.get(app)
        if old is not None and not old.closed:
            await old.send_str(json.dumps({"type": "ApplicationReplaced", "application": app}))
        self.ws[app] = ws
        self.connects += 1
        async for msg in ws:
            if msg.type is WSMsgType.CLOSE:
                break
        if self.ws.get(app) is ws:
            del self.ws[app]
        return ws

    async def emit(self, event: dict[str, Any], app: str = "voxflow") -> None:
        """Send one event to the app's socket; dropped (as Asterisk does) when none is open."""
        event = {**event, "timestamp": _now(), "application": app, "asterisk_id": "fa"}
        ws = self.ws.get(app)
        if ws is not None and not ws.closed:
            await ws.send_str(json.dumps(event))

    async def send_raw(self, text: str, app: str = "voxflow") -> None:
        ws = self.ws.get(app)
        if ws is not None:
            await ws.send_str(text)

    async def drop_socket(self, app: str = "voxflow") -> None:
        ws = self.ws.pop(app, None)
        if ws is not None:
            await ws.close()

    def _later(self, delay: float, fn: Any, *args: Any) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            await fn(*args)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ caller side

    async def place_call(self, to: str = "100", from_: str = "+15551230000") -> FakeChannel:
        n = next(self._ids)
        chan = FakeChannel(id=f"fa-{n}.2", name=f"PJSIP/caller-{n:08x}", caller=from_, exten=to)
        self.channels[chan.id] = chan
        await self.emit({"type": "StasisStart", "args": [], "channel": chan.json()})
        return chan

    async def press(self, cid: str, digits: str) -> None:
        chan = self.channels.get(cid)
        if chan is None:
            return
        for digit in digits:
            await self.emit(
                {
                    "type": "ChannelDtmfReceived",
                    "digit": digit,
                    "duration_ms": 100,
                    "channel": chan.json(),
                }
            )

    async def caller_hangup(self, cid: str) -> None:
        chan = self.channels.pop(cid, None)
        if chan is None:
            return
        await self._leave_bridge(chan)
        await self.emit({"type": "ChannelHangupRequest", "cause": 16, "channel": chan.json()})
        await self.emit({"type": "StasisEnd", "channel": chan.json()})

    # ------------------------------------------------------------------ REST

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.json_response({"message": "Authentication required"}, status=401)
        path = request.path.removeprefix("/ari")
        q = dict(request.query)
        self.requests.append((request.method, path, q))
        parts = [p for p in path.split("/") if p]
        m = request.method
        try:
            return await self._route(m, parts, q, request)
        except KeyError:
            return web.json_response({"message": "Resource not found"}, status=404)

    async def _route(
        self, m: str, parts: list[str], q: dict[str, str], request: web.Request
    ) -> web.StreamResponse:
        nf = web.json_response({"message": "Channel not found"}, status=404)
        if parts == ["asterisk", "info"]:
            return web.json_response({"system": {"version": "22.10.1", "entity_id": "fa"}})
        if parts == ["channels"] and m == "GET":
            return web.json_response([c.json() for c in self.channels.values()])
        if parts[:1] == ["applications"] and m == "GET":
            ids = [c.id for c in self.channels.values() if c.in_stasis]
            return web.json_response({"name": parts[1], "channel_ids": ids, "bridge_ids": []})
        if parts == ["bridges"] and m == "GET":
            return web.json_response(
                [{"id": b, "channels": sorted(ms)} for b, ms in self.bridges.items()]
            )
        if parts == ["channels"] and m == "POST":
            return await self._originate(q, request)
        if parts[0] == "channels":
            chan = self.channels.get(parts[1])
            if chan is None:
                return nf
            return await self._channel_op(m, parts[2:], q, chan)
        if parts[0] == "bridges":
            return await self._bridge_op(m, parts[1:], q)
        if parts[0] == "playbacks":
            pid = parts[1]
            if pid not in self.playbacks:
                return web.json_response({"message": "Playback not found"}, status=404)
            if m == "DELETE":
                await self._finish_playback(pid, "done")
                return web.Response(status=204)
            return web.json_response({"id": pid, "state": "playing"})
        if parts[:2] == ["recordings", "live"] and parts[3:] == ["stop"]:
            name = parts[2]
            if name not in self.recordings:
                return web.json_response({"message": "Recording not found"}, status=404)
            await self._finish_recording(name)
            return web.Response(status=204)
        if parts[:2] == ["recordings", "stored"] and parts[3:] == ["file"]:
            data = self.stored.get(parts[2])
            if data is None:
                return web.json_response({"message": "Recording not found"}, status=404)
            return web.Response(body=data, content_type="audio/wav")
        return web.json_response({"message": "Resource not found"}, status=404)

    async def _channel_op(
        self, m: str, rest: list[str], q: dict[str, str], chan: FakeChannel
    ) -> web.StreamResponse:
        if not rest and m == "DELETE":
            self.channels.pop(chan.id, None)
            await self._leave_bridge(chan)
            await self.emit(
                {"type": "ChannelHangupRequest", "cause": 32, "soft": True, "channel": chan.json()}
            )
            await self.emit({"type": "StasisEnd", "channel": chan.json()})
            if chan.originated:
                await self.emit(
                    {
                        "type": "ChannelDestroyed",
                        "cause": 16,
                        "cause_txt": "Normal Clearing",
                        "channel": chan.json(),
                    }
                )
            return web.Response(status=204)
        if not rest:
            return web.json_response(chan.json())
        op = rest[0]
        if op == "answer":
            if chan.state != "Up":
                chan.state = "Up"
                await self.emit({"type": "ChannelStateChange", "channel": chan.json()})
            return web.Response(status=204)
        if op == "play":
            pid = q.get("playbackId") or f"pb-{next(self._ids)}"
            media = q["media"]
            self.playbacks[pid] = chan.id
            pb = {
                "id": pid,
                "media_uri": media,
                "target_uri": f"channel:{chan.id}",
                "language": "en",
                "state": "playing",
            }
            await self.emit({"type": "PlaybackStarted", "playback": pb})
            if media.startswith("bogus:"):
                self.playbacks.pop(pid)
            elif "does-not-exist" in media:
                await self._finish_playback(pid, "failed")
            else:
                self._later(self.play_seconds, self._finish_playback, pid, "done")
            return web.json_response({**pb, "state": "queued"}, status=201)
        if op == "dtmf":
            chan.dtmf_sent.append(q["dtmf"])
            return web.Response(status=204)
        if op in ("moh", "hold"):
            chan.moh = m == "POST"
            return web.Response(status=204)
        if op == "variable":
            chan.variables[q["variable"]] = q.get("value", "")
            return web.Response(status=204)
        if op == "continue":
            chan.continued = (q.get("context", ""), q.get("extension", ""))
            chan.in_stasis = False
            self.channels.pop(chan.id, None)
            await self._leave_bridge(chan)
            await self.emit({"type": "StasisEnd", "channel": chan.json()})
            return web.Response(status=204)
        if op == "record":
            return await self._record(q, f"channel:{chan.id}")
        return web.json_response({"message": "Resource not found"}, status=404)

    async def _record(self, q: dict[str, str], target: str) -> web.StreamResponse:
        name = q["name"]
        if name in self.recordings and q.get("ifExists", "fail") == "fail":
            return web.json_response({"message": "Recording already exists"}, status=409)
        rec = {
            "name": name,
            "format": q.get("format", "wav"),
            "target_uri": target,
            "state": "recording",
            "started": asyncio.get_running_loop().time(),
        }
        self.recordings[name] = rec
        await self.emit({"type": "RecordingStarted", "recording": _rec_json(rec)})
        return web.json_response({**_rec_json(rec), "state": "queued"}, status=201)

    async def _finish_recording(self, name: str) -> None:
        rec = self.recordings.pop(name)
        duration = int(asyncio.get_running_loop().time() - rec["started"])
        self.stored[name] = b"RIFF" + name.encode() + b"\0" * 36
        await self.emit(
            {
                "type": "RecordingFinished",
                "recording": {**_rec_json(rec), "state": "done", "duration": duration},
            }
        )

    async def _finish_playback(self, pid: str, state: str) -> None:
        cid = self.playbacks.pop(pid, None)
        if cid is None:
            return
        pb = {
            "id": pid,
            "media_uri": "",
            "target_uri": f"channel:{cid}",
            "language": "en",
            "state": state,
        }
        await self.emit({"type": "PlaybackFinished", "playback": pb})

    async def _bridge_op(self, m: str, rest: list[str], q: dict[str, str]) -> web.StreamResponse:
        if not rest and m == "POST":
            bid = q.get("bridgeId") or f"br-{next(self._ids)}"
            self.bridges[bid] = set()
            return web.json_response({"id": bid, "bridge_type": "mixing", "channels": []})
        bid = rest[0]
        if bid not in self.bridges:
            return web.json_response({"message": "Bridge not found"}, status=404)
        if len(rest) == 1 and m == "DELETE":
            for cid in sorted(self.bridges[bid]):
                chan = self.channels.get(cid)
                if chan is not None:
                    await self._leave_bridge(chan)
            self.bridges.pop(bid, None)
            return web.Response(status=204)
        op = rest[1]
        if op == "addChannel":
            for cid in q["channel"].split(","):
                chan = self.channels.get(cid)
                if chan is None:
                    return web.json_response({"message": "Channel not found"}, status=400)
                chan.bridge = bid
                self.bridges[bid].add(cid)
                await self.emit(
                    {"type": "ChannelEnteredBridge", "bridge": {"id": bid}, "channel": chan.json()}
                )
            return web.Response(status=204)
        if op == "removeChannel":
            chan = self.channels.get(q["channel"])
            if chan is None or chan.bridge != bid:
                return web.json_response({"message": "Channel not in this bridge"}, status=422)
            await self._leave_bridge(chan)
            return web.Response(status=204)
        if op == "record":
            return await self._record(q, f"bridge:{bid}")
        return web.json_response({"message": "Resource not found"}, status=404)

    async def _leave_bridge(self, chan: FakeChannel) -> None:
        bid, chan.bridge = chan.bridge, None
        if bid is None or bid not in self.bridges:
            return
        self.bridges[bid].discard(chan.id)
        await self.emit(
            {"type": "ChannelLeftBridge", "bridge": {"id": bid}, "channel": chan.json()}
        )

    async def _originate(self, q: dict[str, str], request: web.Request) -> web.StreamResponse:
        endpoint = q.get("endpoint", "")
        tech, _, resource = endpoint.partition("/")
        if tech not in ("PJSIP", "SIP", "Local"):
            return web.json_response({"error": "Allocation failed"}, status=500)
        cid = q.get("channelId") or f"fa-out-{next(self._ids)}"
        chan = FakeChannel(
            id=cid,
            name=f"{endpoint}-{next(self._ids):08x}",
            caller="",
            exten=resource,
            state="Down",
            originated=True,
            in_stasis=False,
        )
        self.channels[cid] = chan
        self._later(self.answer_delay, self._far_end, chan, resource)
        return web.json_response(chan.json())

    async def _far_end(self, chan: FakeChannel, behaviour: str) -> None:
        dial = {"type": "Dial", "peer": chan.json(), "dialstring": chan.exten, "forward": ""}
        await self.emit({**dial, "dialstatus": ""})
        causes = {
            "busy": ("BUSY", 17),
            "noanswer": ("NOANSWER", 19),
            "congestion": ("CONGESTION", 34),
        }
        if behaviour in causes:
            status, cause = causes[behaviour]
            if behaviour == "noanswer":
                await self.emit({**dial, "dialstatus": "RINGING"})
            await self.emit({**dial, "dialstatus": status})
            self.channels.pop(chan.id, None)
            await self.emit(
                {
                    "type": "ChannelDestroyed",
                    "cause": cause,
                    "cause_txt": "x",
                    "channel": chan.json(),
                }
            )
            return
        await self.emit({**dial, "dialstatus": "RINGING"})
        chan.state = "Up"
        await self.emit({"type": "ChannelStateChange", "channel": chan.json()})
        await self.emit({**dial, "dialstatus": "ANSWER", "peer": chan.json()})
        chan.in_stasis = True
        await self.emit(
            {"type": "StasisStart", "args": ["voxflow-outbound"], "channel": chan.json()}
        )


def _rec_json(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: rec[k] for k in ("name", "format", "target_uri", "state")}
