"""Several voxflow workers behind Asterisk 22's scale-out interfaces, on the sandbox.

Per-call outbound websockets through a round-robin TCP balancer (what HAProxy in tcp mode or DNS
round robin does), StasisBroadcast claims between competing workers, and a worker killed mid-call
in each mode. What the caller experiences when its worker dies (defined in docs/asterisk/):

- classic: the call stays up in Stasis, silent, until the caller hangs up (Asterisk drops events
  while no socket serves the app).
- persistent: silent until a worker connects for the app (Asterisk reconnects every
  reconnect_interval); that worker finds the channel in its app with no session and hangs it up.
- per call: Asterisk reconnects the call's socket (reconnect_attempts): the balancer sends it to a
  live worker, which hangs the orphan up; with no worker left the call is hung up after the tries.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from tcp_balancer import Balancer
from vf_sandbox_util import SHORT, WAIT, started_sandbox, until

from voxflow.ari.rest import AriRestClient
from voxflow.sandbox import Sandbox, SimCall
from voxflow.sandbox.outbound import OutboundWebsocket
from voxflow.telephony.app import VoxtraApp
from voxflow.telephony.session import CallSession


class Worker:
    """One voxflow worker: answers, plays a short tone, and keeps the call for ``hold`` s."""

    def __init__(
        self, name: str, mode: str, app_name: str = "voxflow", hold: float = 0.0, **app_kw: Any
    ):
        self.name = name
        self.app = VoxtraApp(
            "",
            "asterisk",
            "secret",
            app_name,
            mode=mode,
            listen=("127.0.0.1", 0),
            event_wait=2.0,
            retry_initial=0.01,
            retry_max=0.05,
            link_grace=1.0,
            handler_grace=0.2,
            **app_kw,
        )
        self.served: list[str] = []
        self.hold = hold

        @self.app.default()
        async def handle(call: CallSession) -> None:
            self.served.append(call.id)
            await call.answer()
            await call.play_file(f"sound:{SHORT}")
            if self.hold:
                await asyncio.sleep(self.hold)

    @property
    def port(self) -> int:
        assert self.app.links is not None
        return self.app.links.server.port

    def kill(self) -> None:
        """The process dies: its sockets drop, nothing is cleaned up on Asterisk's side."""
        links = self.app.links
        assert links is not None
        links.server.stop_listening()
        for conn in list(links.server.connections):
            conn.abort()
        for session in list(self.app.sessions.values()):
            session._left_stasis = True
            session._gone()


@contextlib.asynccontextmanager
async def workers(n: int, mode: str, **kw: Any) -> AsyncIterator[list[Worker]]:
    ws = [Worker(f"w{i}", mode, **kw) for i in range(n)]
    for w in ws:
        await w.app.start()
    try:
        yield ws
    finally:
        for w in ws:
            await w.app.close()


def outbound(port: int, kind: str, app: str = "voxflow") -> OutboundWebsocket:
    return OutboundWebsocket(
        app,
        f"ws://127.0.0.1:{port}/voxflow",
        "asterisk",
        "secret",
        connection_type=kind,
        reconnect_interval=0.05,
        reconnect_attempts=4,
        close_after_end=0.1,
    )


@contextlib.asynccontextmanager
async def sandbox() -> AsyncIterator[Sandbox]:
    sb = await started_sandbox()
    try:
        yield sb
    finally:
        await sb.stop()


def heard_tone_then_hangup(call: SimCall) -> bool:
    # a "dialplan" STASISSTATUS=FAILED note: a loaded box's balancer missed the first tries,
    # and [voxflow-in] tried Stasis() again (the call was still served)
    kinds = [e["type"] for e in call.experience() if e["type"] != "dialplan"]
    return kinds[:2] == ["answered", "playback"] and kinds[-1] == "hangup"


async def test_per_call_sockets_spread_calls_over_three_workers_none_lost() -> None:
    n = 30
    async with sandbox() as sb, workers(3, "per_call") as ws, Balancer([w.port for w in ws]) as lb:
        sb.add_outbound_websocket(outbound(lb.port, "per_call_config"))
        calls = await asyncio.gather(
            *(sb.place_call(from_=f"+1555000{i:04d}", to="100", app="voxflow") for i in range(n))
        )
        causes = await asyncio.gather(*(c.wait_hangup(WAIT) for c in calls))
        assert causes == [16] * n
        served = Counter(cid for w in ws for cid in w.served)
        assert sorted(served) == sorted(c.id for c in calls)  # none lost
        assert set(served.values()) == {1}  # each served by exactly one worker
        assert all(heard_tone_then_hangup(c) for c in calls)
        assert sb.outbound.connects == n
        if sb.outbound.failures == 0:
            assert sorted(len(w.served) for w in ws) == [n // 3] * 3  # round robin
        else:  # a loaded box's tries that timed out moved the balancer's turn on
            assert all(w.served for w in ws)
        await until(lambda: not sb.outbound.sockets)  # each closed after its StasisEnd
        await until(lambda: all(not w.app.sessions for w in ws))
        # a per-call link's REST client goes with its call (closed after it, on a loaded machine)
        assert all(w.app.links is not None for w in ws)
        await until(lambda: all(w.app.links is not None and not w.app.links._clients for w in ws))


async def test_broadcast_calls_are_claimed_once_among_three_workers() -> None:
    n = 12
    async with sandbox() as sb:
        apps = [VoxtraApp(sb.ari_url, sb.user, sb.password, f"voxflow-{i}") for i in range(3)]
        served: dict[str, list[str]] = {a.app_name: [] for a in apps}
        for a in apps:

            async def handle(call: CallSession, name: str = a.app_name) -> None:
                served[name].append(call.id)
                await call.answer()
                await call.play_file(f"sound:{SHORT}")

            a.default()(handle)
            await a.start()
        try:
            calls = await asyncio.gather(
                *(
                    sb.place_broadcast_call(to="100", timeout=2.0, app_filter="^voxflow-")
                    for _ in range(n)
                )
            )
            assert await asyncio.gather(*(c.wait_hangup(WAIT) for c in calls)) == [16] * n
            winners = Counter(cid for ids in served.values() for cid in ids)
            assert sorted(winners) == sorted(c.id for c in calls) and set(winners.values()) == {1}
            claims = Counter(cid for cid, _, status in sb.broadcasts.claims if status == 204)
            assert claims == Counter({c.id: 1 for c in calls})  # one 204 per call
            assert sum(a.claims_won for a in apps) == n
            assert sum(a.claims_lost for a in apps) == 2 * n  # the others got 409 and let go
            assert all(heard_tone_then_hangup(c) for c in calls)
            assert all(e["type"] != "dialplan" for c in calls for e in c.experience())
        finally:
            for a in apps:
                await a.close()


async def test_a_persistent_worker_claims_broadcast_calls_over_its_socket() -> None:
    async with sandbox() as sb, workers(1, "persistent") as (w,):
        sb.add_outbound_websocket(outbound(w.port, "persistent"))
        await sb.wait_app("voxflow")
        call = await sb.place_broadcast_call(to="100", timeout=2.0, app_filter="^voxflow$")
        assert await call.wait_hangup(WAIT) == 16
        assert w.served == [call.id] and w.app.claims_won == 1
        assert ("POST", "/events/claim") in sb.rest_api.ws_log
        assert ("POST", "/events/claim") not in sb.rest_api.http_log


async def test_per_call_worker_killed_mid_call_the_next_worker_hangs_up_the_orphan() -> None:
    async with (
        sandbox() as sb,
        workers(2, "per_call", hold=30.0) as (a, b),
        Balancer([a.port, b.port]) as lb,
    ):
        sb.add_outbound_websocket(outbound(lb.port, "per_call_config"))
        call = await sb.place_call(to="100", app="voxflow")
        await until(lambda: bool(a.served))  # round robin: the first call went to a
        await call.wait_for("playback", WAIT, state="done")
        a.kill()
        assert await call.wait_hangup(WAIT) == 16  # the caller hears the call end
        assert b.served == [] and b.app.links is not None and b.app.links.orphans_hung_up == 1
        assert sb.outbound.connects == 2  # Asterisk reconnected the call's socket, to b


async def test_per_call_worker_killed_and_no_worker_left_the_call_ends_after_the_tries() -> None:
    async with sandbox() as sb, workers(1, "per_call", hold=30.0) as (a,):
        sb.add_outbound_websocket(outbound(a.port, "per_call_config"))
        call = await sb.place_call(to="100", app="voxflow")
        await call.wait_for("playback", WAIT, state="done")
        a.kill()
        assert await call.wait_hangup(WAIT) == 16
        assert sb.outbound.failures == 1  # reconnect_attempts exhausted


async def test_persistent_worker_killed_mid_call_its_successor_hangs_up_the_orphan() -> None:
    async with (
        sandbox() as sb,
        workers(2, "persistent", hold=30.0) as (a, b),
        Balancer([a.port, b.port]) as lb,
    ):
        sb.add_outbound_websocket(outbound(lb.port, "persistent"))
        await sb.wait_app("voxflow")
        call = await sb.place_call(to="100", app="voxflow")
        await call.wait_for("playback", WAIT, state="done")
        assert a.served == [call.id]
        a.kill()
        assert await call.wait_hangup(WAIT) == 16  # b connected, found the orphan, hung it up
        assert b.app.links is not None and b.app.links.orphans_hung_up == 1


async def test_the_successors_listing_answered_late_still_finds_the_orphan() -> None:
    """Overloaded Asterisk: the successor's GET /applications/voxflow (its resync after the
    link registered) is answered after its deadline. It was given up at once (logged at
    debug), the dead worker's call was never hung up: a hung call. The GET goes again with
    twice the deadline."""
    async with (
        sandbox() as sb,
        workers(2, "persistent", hold=30.0, request_timeout=0.4) as (a, b),
        Balancer([a.port, b.port]) as lb,
    ):
        sb.add_outbound_websocket(outbound(lb.port, "persistent"))
        await sb.wait_app("voxflow")
        call = await sb.place_call(to="100", app="voxflow")
        await call.wait_for("playback", WAIT, state="done")
        sb.faults.slow_requests(0.6, method="GET", path="^/applications/voxflow$")
        a.kill()
        assert await call.wait_hangup(WAIT) == 16  # b heard the late listing, hung it up
        assert b.app.links is not None and b.app.links.orphans_hung_up == 1


async def test_a_dropped_persistent_link_that_comes_back_keeps_the_call() -> None:
    async with sandbox() as sb, workers(1, "persistent", hold=0.5) as (w,):
        sb.add_outbound_websocket(outbound(w.port, "persistent"))
        await sb.wait_app("voxflow")
        call = await sb.place_call(to="100", app="voxflow")
        await call.wait_for("playback", WAIT, state="done")
        links = w.app.links
        assert links is not None
        for conn in list(links.server.connections):
            conn.abort()  # the network drops; Asterisk reconnects within link_grace
        assert await call.wait_hangup(WAIT) == 16  # the handler ended and hung up as usual
        assert w.served == [call.id] and links.orphans_hung_up == 0


async def test_a_call_entering_while_the_link_resyncs_is_not_settled_as_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A call that enters Stasis after Asterisk listed the app's channels, but before the
    worker read that list, is not in it: it is new, not a call that ended while the link was
    down (it was once settled so: its handler stopped and the caller was left in silence)."""
    async with sandbox() as sb, workers(1, "persistent") as (w,):
        calls: list[SimCall] = []
        listed = AriRestClient.get_application

        async def list_then_a_call_enters(
            self: AriRestClient, name: str, *, timeout: float | None = None
        ) -> dict[str, Any]:
            info = await listed(self, name, timeout=timeout)  # the list, taken before the call
            if not calls:
                calls.append(await sb.place_call(to="100", app="voxflow"))
                await until(lambda: calls[0].id in w.served)  # its StasisStart was handled
            return info

        monkeypatch.setattr(AriRestClient, "get_application", list_then_a_call_enters)
        sb.add_outbound_websocket(outbound(w.port, "persistent"))
        await until(lambda: bool(calls))
        await calls[0].wait_for("playback", WAIT, state="done")
        assert await calls[0].wait_hangup(WAIT) == 16  # the handler ended and hung up as usual


async def test_classic_worker_killed_mid_call_the_caller_hears_silence_until_hanging_up() -> None:
    async with sandbox() as sb:
        app = VoxtraApp(
            sb.ari_url, sb.user, sb.password, "voxflow", event_wait=2.0, handler_grace=0.2
        )
        served: list[str] = []

        @app.default()
        async def handle(call: CallSession) -> None:
            served.append(call.id)
            await call.answer()
            await call.play_file(f"sound:{SHORT}")
            await asyncio.sleep(30)

        await app.start()
        try:
            call = await sb.place_call(to="100", app="voxflow")
            await call.wait_for("playback", WAIT, state="done")
            await app.events.close()  # the process dies: its socket goes, nothing is cleaned up
            for session in list(app.sessions.values()):
                session._left_stasis = True
                session._gone()
            await until(lambda: not sb.pbx.app_active("voxflow"))
            await asyncio.sleep(0.3)
            assert not call.ended and call.id in sb.pbx.channels  # up, in Stasis, silent
            await call.hangup()
            await until(lambda: call.id not in sb.pbx.channels)
        finally:
            await app.close()


async def test_a_call_that_ended_while_the_persistent_link_was_down_is_settled() -> None:
    async with sandbox() as sb, workers(1, "persistent", hold=30.0) as (w,):
        cfg = outbound(w.port, "persistent")
        cfg.reconnect_interval = 0.5
        sb.add_outbound_websocket(cfg)
        await sb.wait_app("voxflow")
        call = await sb.place_call(to="100", app="voxflow")
        await call.wait_for("playback", WAIT, state="done")
        links = w.app.links
        assert links is not None
        for conn in list(links.server.connections):
            conn.abort()
        await until(lambda: not sb.pbx.app_active("voxflow"))
        await call.hangup()  # its StasisEnd is lost: no socket serves the app
        await until(lambda: sb.pbx.app_active("voxflow"))  # Asterisk reconnected
        await until(lambda: not w.app.sessions)  # the resync found the channel gone
        assert links.orphans_hung_up == 0


async def test_asterisk_with_the_wrong_password_is_refused_and_the_call_fails() -> None:
    async with sandbox() as sb, workers(1, "per_call") as (w,):
        cfg = outbound(w.port, "per_call_config")
        cfg.password = "not-the-secret"
        sb.add_outbound_websocket(cfg)
        sb.pbx.contexts.back_wait = 0.01  # [voxflow-in]'s Wait(0.5) between its 11 Stasis()
        call = await sb.place_call(to="100", app="voxflow")
        assert await call.wait_hangup(WAIT) == 16
        assert call.experience()[0] == {**call.experience()[0], "STASISSTATUS": "FAILED"}
        links = w.app.links
        assert links is not None and links.server.refused == 4 * 11  # every connection: 401
        assert w.served == []


async def test_a_draining_worker_refuses_new_links_and_closes_one_that_registers() -> None:
    async with workers(1, "per_call") as (a,), aiohttp.ClientSession() as http:
        links = a.app.links
        assert links is not None
        auth = {"Authorization": "Basic " + base64.b64encode(b"asterisk:secret").decode()}
        url = f"ws://127.0.0.1:{a.port}/voxflow"
        ws = await http.ws_connect(url, protocols=("ari",), headers=auth)  # before the drain
        links.refuse()
        with pytest.raises(OSError):  # a load balancer's connection is refused: it redispatches
            await asyncio.open_connection("127.0.0.1", a.port)
        registered = {
            "type": "ApplicationRegistered",
            "application": "voxflow:PJSIP/caller-00000001",
            "timestamp": "2026-12-01T18:00:00.000+0000",
            "asterisk_id": "00:00:00:00:00:01",
        }
        await ws.send_str(json.dumps(registered))
        msg = await ws.receive(timeout=WAIT)  # closed before anything is done with its calls
        assert msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.ERROR,
        )
        assert links.by_app == {}
        await ws.close()


async def test_a_request_made_while_the_link_is_down_waits_for_it_to_come_back() -> None:
    """A REST call made while the call's link is down (Asterisk re-connects within the grace)
    waits for the link and goes through on the new one: it failed at once, and the flow ran
    its error handling for a call that was fine."""
    async with sandbox() as sb, workers(1, "persistent") as (w,):
        outcome: list[str] = []
        links = w.app.links
        assert links is not None

        @w.app.default()
        async def handle(call: CallSession) -> None:
            await call.answer()
            await call.play_file(f"sound:{SHORT}")
            for conn in list(links.server.connections):
                conn.abort()  # the network drops; Asterisk reconnects after reconnect_interval
            await until(lambda: not links.up("voxflow"))
            try:
                await call.play_file(f"sound:{SHORT}")
            except Exception as exc:
                outcome.append(f"{type(exc).__name__}: {exc}")
            else:
                outcome.append("played")

        cfg = outbound(w.port, "persistent")
        cfg.reconnect_interval = 0.5
        sb.add_outbound_websocket(cfg)
        await sb.wait_app("voxflow")
        call = await sb.place_call(to="100", app="voxflow")
        assert await call.wait_hangup(WAIT) == 16
        assert outcome == ["played"]
        heard = call.experience()
        done = [e for e in heard if e["type"] == "playback" and e.get("state") == "done"]
        assert len(done) == 2, heard
