"""Events handled per CPU-second: voxflow's ARI events client vs asyncari and aioari.

A local aiohttp server serves the swagger (which asyncari/aioari load at start-up) and an events
websocket that replays a stream built from the captured Asterisk events of one call, replicated
over many concurrent calls (ids rewritten, calls interleaved). Each client runs in its own
subprocess (so its CPU time is its own) and consumes the same stream from the same server in the
same run; CPU time is counted from the first event to the end marker. Every client does the same
job (typed objects routed to per-call handlers, see the comment above the clients) and the driver
checks that they delivered the same events and digits.

    .venv/bin/python bench/ari_events.py [--calls 2000] [--rounds 5] [--feed paced,backlog]
    .venv/bin/python bench/ari_events.py --modes --calls 500 --rounds 3

``--modes`` compares voxflow's CPU per call for the same recorded call in the classic mode (one
events websocket for every call, the paced feed) and Asterisk 22's per-call outbound websockets
(``mode="per_call"``: this driver plays Asterisk, opening one websocket per call to a worker that
runs voxflow's websocket server and links, answers the worker's REST request over the socket,
sends the call's events after ``ApplicationRegistered`` and closes); at most 100 calls' sockets
are open at once.

Two feeds, each printed: ``paced`` writes one frame per event (as Asterisk does); a client
faster than this Python server is then woken every few events, so its CPU per event is mostly
epoll/recv/loop wake-ups. ``backlog`` queues the whole stream in the socket first, which measures
each client's own cost of handling an event.

Where the time goes per event (backlog, 2000 calls, 30,001 events, 2-core box), voxflow ~3.6 us:
frame decode in data_received ~0.35 (voxflow.ari.wsconn: no awaited receive() per message) +
msgspec decode of the routing fields into per-type structs ~0.5 + building the lazy pydantic
event and its nested channel/playback ~0.8 + the parser and stream wrappers ~0.3 + the job below
(route + handler reads) ~1.0 + loop, recv and GC. aioari ~9.5 us = aiohttp read ~1.6 + json.loads
~4 + swagger objects, listener lists and a coroutine per event ~4. A 5x lead would need < 1.9 us
per event, of which the same job takes ~1.0 and msgspec alone ~0.5: out of reach while every event
is a pydantic object (see docs/ari-performance.md).

asyncari and aioari come from the optional ``bench`` extra: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

# ../shared sits beside the checkout (as in CI); the captures are what a real Asterisk 22 sent.
SHARED = Path(__file__).resolve().parents[2] / "shared"
API_DOCS = SHARED / "ari" / "api-docs"
CAPTURE = SHARED / "ari" / "captures" / "events-sample.json"
END = "bench-end"


def build_stream(calls: int) -> list[str]:
    """The events of captured call 1795502929.1, replicated for ``calls`` interleaved calls."""
    template = [
        e
        for e in json.loads(CAPTURE.read_text())
        if "1795502929.1" in json.dumps(e) and e.get("type") != "ApplicationReplaced"
    ]
    per_call = [json.dumps(e) for e in template]
    out: list[str] = []
    for step, raw in enumerate(per_call):
        for n in range(calls):
            out.append(
                raw.replace("1795502929.1", f"bench-{n}").replace("pb-A-1", f"pb-{n}-{step}")
            )
    out.append(
        json.dumps(
            {
                "type": "ChannelUserevent",
                "eventname": END,
                "userevent": {},
                "application": "voxflow",
                "timestamp": "2026-11-24T06:48:49.689+0000",
            }
        )
    )
    return out


def ws_frame(text: str) -> bytes:
    """One unmasked, unfragmented server-to-client TEXT frame (RFC 6455 5.2)."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 1 << 16:
        header = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return header + payload


def make_server(stream: list[str], port_holder: list[int]) -> web.Application:
    async def docs(request: web.Request) -> web.Response:
        name = request.match_info["name"].replace(".{format}", ".json")
        path = API_DOCS / name
        if not path.exists():
            return web.json_response({"message": "Resource not found"}, status=404)
        prefix = request.path.partition("/api-docs/")[0]  # /ari or /backlog/ari
        text = path.read_text().replace(
            "http://localhost:8088/ari", f"http://127.0.0.1:{port_holder[0]}{prefix}"
        )
        return web.Response(text=text, content_type="application/json")

    async def events(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        try:
            for raw in stream:
                await ws.send_str(raw)
            async for _ in ws:
                pass
        except ConnectionError:
            pass  # the client closed first
        return ws

    backlog = b"".join(ws_frame(raw) for raw in stream)

    async def events_backlog(request: web.Request) -> web.StreamResponse:
        # The whole stream handed to the kernel at once (in 64 KiB writes): the client always
        # has a backlog to read, so what is measured is its handling cost, not the server's pace.
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        try:
            for start in range(0, len(backlog), 1 << 16):
                transport.write(backlog[start : start + (1 << 16)])
            async for _ in ws:
                pass
        except ConnectionError:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ari/api-docs/{name}", docs)
    app.router.add_get("/ari/events", events)
    app.router.add_get("/backlog/ari/events", events_backlog)
    app.router.add_get("/backlog/ari/api-docs/{name}", docs)
    return app


# ---------------------------------------------------------------------- clients (subprocess)
#
# The SAME job in every client, what a call application needs: each event is decoded into the
# library's typed objects, routed to the handler object of the call (channel) it concerns, and the
# handler reads the fields it needs. StasisStart creates a call's handler, StasisEnd removes it,
# playback events reach the call of the playback's target channel. Each client reports how many
# events were delivered to call handlers and the DTMF digits they collected, and the driver checks
# that all three agree.
#
# - voxflow: AriEventStream (pydantic models validated from the frame bytes, a literal
#   discriminator on ``type``) + Dispatcher.route() (the pure router VoxtraApp uses) + a dict of
#   call handlers, exactly as VoxtraApp._on_event feeds CallSession._on_event.
# - aioari: client.on_channel_event()/on_playback_event() for each event type in the stream (the
#   library builds Channel/Playback objects from the event), routed by ``channel.id`` /
#   ``playback.json["target_uri"]`` through the same kind of dict. (Per-object
#   ``channel.on_event()`` registration would be slower: every listener filters every event.)
# - asyncari: ``async for msg in client`` yields EventMessage objects whose fields are already
#   Channel/Playback objects (and asyncari has dispatched them to the objects' own handlers);
#   routed by ``msg.channel.id`` / the playback's target through the same kind of dict.


class Call:
    """One call's handler: reads what an application reads."""

    __slots__ = ("delivered", "digits", "id", "playback_state", "state")

    def __init__(self, cid: str) -> None:
        self.id = cid
        self.delivered = 0
        self.digits: list[str] = []
        self.state = ""
        self.playback_state = ""


class Calls:
    """The registry of call handlers, the same for the three clients."""

    def __init__(self) -> None:
        self.live: dict[str, Call] = {}
        self.delivered = 0
        self.digits = 0

    def start(self, cid: str) -> Call:
        call = self.live[cid] = Call(cid)
        return call

    def end(self, cid: str) -> None:
        call = self.live.pop(cid, None)
        if call is not None:
            self.delivered += call.delivered
            self.digits += len(call.digits)

    def result(self) -> dict[str, int]:
        for cid in list(self.live):
            self.end(cid)
        return {"delivered": self.delivered, "digits": self.digits}


async def client_voxflow(url: str) -> tuple[int, float, dict[str, int]]:
    from voxflow.ari.dispatch import Dispatcher
    from voxflow.ari.events import AriEventStream
    from voxflow.ari.models import (
        AriEvent,
        ChannelDtmfReceived,
        ChannelEvent,
        ChannelUserevent,
        PlaybackEvent,
        StasisEnd,
        StasisStart,
    )

    dispatcher = Dispatcher()
    calls = Calls()
    live = calls.live
    done = asyncio.Event()
    count = 0
    t0 = 0.0

    def on_call_event(call: Call, event: AriEvent) -> None:
        call.delivered += 1
        if isinstance(event, ChannelDtmfReceived):
            call.digits.append(event.digit)
        elif isinstance(event, ChannelEvent):
            call.state = event.channel.state
        elif isinstance(event, PlaybackEvent):
            call.playback_state = event.playback.state

    def on_event(event: AriEvent) -> None:
        nonlocal count, t0
        if count == 0:
            t0 = time.process_time()
        count += 1
        if isinstance(event, StasisStart):
            on_call_event(calls.start(event.channel.id), event)
            return
        for cid in dispatcher.route(event):
            call = live.get(cid)
            if call is not None:
                on_call_event(call, event)
        if isinstance(event, StasisEnd):
            calls.end(event.channel.id)
            dispatcher.forget_channel(event.channel.id)
        elif isinstance(event, ChannelUserevent) and event.eventname == END:
            done.set()

    stream = AriEventStream(url, {"Authorization": "Basic eDp5"}, "voxflow", on_event=on_event)
    await stream.start()
    await done.wait()
    cpu = time.process_time() - t0
    await stream.close()
    return count, cpu, calls.result()


async def client_aioari(url: str) -> tuple[int, float, dict[str, int]]:
    import aioari

    client = await aioari.connect(url.removesuffix("ari"), "x", "y")
    calls = Calls()
    live = calls.live
    count = 0
    t0 = 0.0
    done = asyncio.Event()

    def counted() -> None:
        nonlocal count, t0
        if count == 0:
            t0 = time.process_time()
        count += 1

    def on_channel(channel: Any, event: dict[str, Any]) -> None:
        counted()
        kind = event["type"]
        if isinstance(channel, dict):  # several Channel fields (StasisStart: replace_channel)
            channel = channel["channel"]
        if channel is None:  # a ChannelUserevent without a channel: the end marker
            if event.get("eventname") == END:
                done.set()
            return
        call = calls.start(channel.id) if kind == "StasisStart" else live.get(channel.id)
        if call is None:
            return
        call.delivered += 1
        if kind == "ChannelDtmfReceived":
            call.digits.append(event["digit"])
        else:
            call.state = channel.json["state"]
        if kind == "StasisEnd":
            calls.end(channel.id)

    def on_playback(playback: Any, event: dict[str, Any]) -> None:
        counted()
        kind, _, target = playback.json["target_uri"].partition(":")
        call = live.get(target) if kind == "channel" else None
        if call is not None:
            call.delivered += 1
            call.playback_state = playback.json["state"]

    def on_user(event: dict[str, Any]) -> None:
        counted()
        if event.get("eventname") == END:
            done.set()

    for kind, key in _event_types():
        if key == "channel":
            client.on_channel_event(kind, on_channel)
        elif key == "playback":
            client.on_playback_event(kind, on_playback)
        else:
            client.on_event(kind, on_user)
    runner = asyncio.ensure_future(client.run(apps="voxflow"))
    await done.wait()
    cpu = time.process_time() - t0
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    await client.close()
    return count, cpu, calls.result()


async def client_asyncari(url: str) -> tuple[int, float, dict[str, int]]:
    import asyncari

    calls = Calls()
    live = calls.live
    count = 0
    t0 = 0.0
    async with asyncari.connect(url.removesuffix("ari"), "voxflow", "x", "y") as ari:
        async for msg in ari:
            if count == 0:
                t0 = time.process_time()
            count += 1
            kind = msg.type
            channel = getattr(msg, "channel", None)
            if channel is not None:
                call = calls.start(channel.id) if kind == "StasisStart" else live.get(channel.id)
                if call is not None:
                    call.delivered += 1
                    if kind == "ChannelDtmfReceived":
                        call.digits.append(msg.digit)
                    else:
                        call.state = channel.json["state"]
                    if kind == "StasisEnd":
                        calls.end(channel.id)
                continue
            playback = getattr(msg, "playback", None)
            if playback is not None:
                target_kind, _, target = playback.json["target_uri"].partition(":")
                call = live.get(target) if target_kind == "channel" else None
                if call is not None:
                    call.delivered += 1
                    call.playback_state = playback.json["state"]
                continue
            if kind == "ChannelUserevent" and msg._get("eventname") == END:
                break
    return count, time.process_time() - t0, calls.result()


def build_call(n: int) -> list[str]:
    """Call ``n``'s own events (as in build_stream), for its per-call socket."""
    template = [
        e
        for e in json.loads(CAPTURE.read_text())
        if "1795502929.1" in json.dumps(e) and e.get("type") != "ApplicationReplaced"
    ]
    return [
        json.dumps(e).replace("1795502929.1", f"bench-{n}").replace("pb-A-1", f"pb-{n}-{step}")
        for step, e in enumerate(template)
    ]


async def worker_per_call(calls: int) -> tuple[int, float, dict[str, int]]:
    """voxflow in per-call mode: AriLinks (websocket server + links) feeding the same job."""
    from voxflow.ari.dispatch import Dispatcher
    from voxflow.ari.models import (
        AriEvent,
        Channel,
        ChannelDtmfReceived,
        ChannelEvent,
        PlaybackEvent,
        StasisEnd,
        StasisStart,
    )
    from voxflow.ari.rest import AriRestClient
    from voxflow.telephony.links import AriLink, AriLinks

    dispatcher = Dispatcher()
    job = Calls()
    live = job.live
    done = asyncio.Event()
    count = 0
    ended = 0
    t0 = 0.0

    def on_event(link: AriLink, event: AriEvent) -> None:
        nonlocal count, t0, ended
        if count == 0:
            t0 = time.process_time()
        count += 1
        call: Call | None
        if isinstance(event, StasisStart):
            call = job.start(event.channel.id)
        else:
            found = [live[c] for c in dispatcher.route(event) if c in live]
            call = found[0] if found else None
        if call is not None:
            call.delivered += 1
            if isinstance(event, ChannelDtmfReceived):
                call.digits.append(event.digit)
            elif isinstance(event, ChannelEvent):
                call.state = event.channel.state
            elif isinstance(event, PlaybackEvent):
                call.playback_state = event.playback.state
        if isinstance(event, StasisEnd):
            job.end(event.channel.id)
            dispatcher.forget_channel(event.channel.id)
            ended += 1
            if ended == calls:
                done.set()

    class Owner:
        """What VoxtraApp does for the links, reduced to the benchmark's job."""

        def on_link_event(self, link: AriLink, event: AriEvent) -> None:
            on_event(link, event)

        def on_link_lost(self, app_name: str) -> None:
            return None

        def on_link_down(self, app_name: str) -> None:
            return None

        def app_in_use(self, app_name: str) -> bool:
            return False

        def awaits_link(self, app_name: str) -> bool:
            return False

        def resync_app(self, app_name: str, channel_ids: set[str]) -> list[str]:
            return [c for c in channel_ids if c not in live]

        adopt_link_orphans = False

        def adopt_link_orphan(self, channel: Channel, app_name: str) -> bool:
            return False

        async def remove_stale_bridges(
            self, rest: AriRestClient, app_name: str, bridge_ids: set[str]
        ) -> list[str]:
            return []

    links = AriLinks(
        Owner(),
        mode="per_call",
        listen_auth=("x", "y"),
        http=("", "x", "y"),
        listen=("127.0.0.1", 0),
        link_grace=0,
    )
    await links.start()
    print(json.dumps({"port": links.server.port}), flush=True)
    await done.wait()
    cpu = time.process_time() - t0
    await links.close()
    return count, cpu, job.result()


async def play_asterisk_per_call(port: int, calls: int) -> None:
    """Open one websocket per call to the worker, as Asterisk's per_call_config does."""
    import aiohttp

    auth = {"Authorization": "Basic eDp5"}
    gate = asyncio.Semaphore(100)

    async def one(session: aiohttp.ClientSession, n: int) -> None:
        name = f"voxflow:PJSIP/bench-{n}"
        async with (
            gate,
            session.ws_connect(
                f"ws://127.0.0.1:{port}/voxflow", protocols=("ari",), headers=auth
            ) as ws,
        ):
            reg = {"type": "ApplicationRegistered", "application": name}
            await ws.send_str(json.dumps(reg))
            answered = asyncio.Event()

            async def answer() -> None:
                async for msg in ws:
                    req = json.loads(msg.data)
                    reply = {
                        "type": "RESTResponse",
                        "request_id": req.get("request_id", ""),
                        "transaction_id": req.get("transaction_id", ""),
                        "status_code": 200,
                        "reason_phrase": "OK",
                        "uri": req.get("uri", ""),
                        "content_type": "application/json",
                        "message_body": json.dumps({"name": name, "channel_ids": []}),
                    }
                    await ws.send_str(json.dumps(reply))
                    answered.set()

            reader = asyncio.ensure_future(answer())
            for raw in build_call(n):
                await ws.send_str(raw)
            await asyncio.wait_for(answered.wait(), 30)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session, n) for n in range(calls)))


async def measure_per_call(calls: int, timeout: float) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--client",
        "voxflow-per-call",
        "--calls",
        str(calls),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        first = await asyncio.wait_for(proc.stdout.readline(), 30)
        port = json.loads(first)["port"]
        await asyncio.wait_for(play_asterisk_per_call(port, calls), timeout)
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except (TimeoutError, ValueError, KeyError) as exc:
        proc.kill()
        await proc.wait()
        return {"error": f"per-call run failed: {type(exc).__name__}"}
    if proc.returncode != 0:
        lines = [ln for ln in err.decode(errors="replace").splitlines() if "Error" in ln]
        return {"error": f"exit {proc.returncode}: {(lines or ['?'])[-1].strip()[:200]}"}
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def compare_modes(calls: int, rounds: int) -> None:
    """CPU per call: classic (one socket, paced feed) vs per-call outbound websockets."""
    stream = build_stream(calls)
    per_call_events = len(build_call(0))
    port: list[int] = [0]
    runner = web.AppRunner(make_server(stream, port))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port[0] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port[0]}/ari"
    cpu: dict[str, list[float]] = {"classic": [], "per_call": []}
    jobs: dict[str, tuple[int, int]] = {}
    print(f"{calls} calls of {per_call_events} events, {rounds} rounds (voxflow only)")
    try:
        for _ in range(rounds):
            for mode in cpu:
                if mode == "classic":
                    res = await measure("voxflow", url, timeout=300)
                else:
                    res = await measure_per_call(calls, timeout=300)
                if "error" in res:
                    print(f"{mode}: {res['error']}")
                    continue
                jobs[mode] = (res["delivered"], res["digits"])
                cpu[mode].append(res["cpu"] / calls)
    finally:
        await runner.cleanup()
    for mode, (delivered, digits) in jobs.items():
        print(f"{mode:9s} delivered {delivered} events to call handlers, {digits} DTMF digits")
    if len(set(jobs.values())) > 1:
        print("WARNING: the modes did not do the same job (see above)")
    med = {m: statistics.median(v) for m, v in cpu.items() if v}
    for mode, value in med.items():
        print(f"{mode:9s} {value * 1e6:10,.0f} us CPU per call (median of {len(cpu[mode])})")
    if len(med) == 2:
        print(f"per_call / classic: {med['per_call'] / med['classic']:.2f}x")


def _event_types() -> list[tuple[str, str]]:
    out: dict[str, str] = {}
    for raw in build_stream(1):
        event = json.loads(raw)
        key = "channel" if "channel" in event else "playback" if "playback" in event else ""
        out[event["type"]] = out.get(event["type"]) or key
    return sorted(out.items())


def run_client(kind: str, url: str, calls: int) -> None:
    if kind == "voxflow-per-call":
        count, cpu, job = asyncio.run(worker_per_call(calls))
        print(json.dumps({"events": count, "cpu": cpu, **job}))
        return
    fn = {"voxflow": client_voxflow, "aioari": client_aioari, "asyncari": client_asyncari}[kind]
    count, cpu, job = asyncio.run(fn(url))
    print(json.dumps({"events": count, "cpu": cpu, **job}))


# ---------------------------------------------------------------------- driver


async def measure(kind: str, url: str, timeout: float) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--client",
        kind,
        "--url",
        url,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return {"error": f"timed out after {timeout:.0f}s"}
    if proc.returncode != 0:
        lines = [ln for ln in err.decode(errors="replace").splitlines() if "Error" in ln]
        return {"error": f"exit {proc.returncode}: {(lines or ['?'])[-1].strip()[:200]}"}
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


FEEDS = {
    # Asterisk's way: one websocket write per event, as fast as the (Python) server goes. A client
    # faster than the server is woken for every few events, so its CPU per event is mostly
    # wake-ups (epoll + recv + loop), bounded by the server's pace rather than its own work.
    "paced": "",
    # The stream already queued in the socket: the client's own cost of handling an event.
    "backlog": "/backlog",
}


async def main(calls: int, rounds: int, feeds: list[str]) -> None:
    stream = build_stream(calls)
    port: list[int] = [0]
    runner = web.AppRunner(make_server(stream, port))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port[0] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"stream: {len(stream)} events ({calls} concurrent calls), {rounds} rounds")
    try:
        for feed in feeds:
            url = f"http://127.0.0.1:{port[0]}{FEEDS[feed]}/ari"
            print(f"\n{feed} feed:")
            await run_feed(url, len(stream), rounds)
    finally:
        await runner.cleanup()


async def run_feed(url: str, events: int, rounds: int) -> None:
    rates: dict[str, list[float]] = {"voxflow": [], "asyncari": [], "aioari": []}
    errors: dict[str, str] = {}
    jobs: dict[str, tuple[int, int]] = {}
    for _ in range(rounds):
        for kind in rates:
            if kind in errors:
                continue
            res = await measure(kind, url, timeout=300)
            if "error" in res:
                errors[kind] = res["error"]
                continue
            if res["events"] != events:
                errors[kind] = f"handled {res['events']} of {events} events"
                continue
            jobs[kind] = (res["delivered"], res["digits"])
            rates[kind].append(res["events"] / max(res["cpu"], 1e-9))
    med = {k: statistics.median(v) for k, v in rates.items() if v}
    for kind, (delivered, digits) in jobs.items():
        print(f"{kind:9s} delivered {delivered} events to call handlers, {digits} DTMF digits")
    if len(set(jobs.values())) > 1:
        print("WARNING: the clients did not do the same job (see above)")
    for kind in rates:
        if kind in med:
            print(f"{kind:9s} {med[kind]:12,.0f} events/CPU-s (median of {len(rates[kind])})")
        else:
            print(f"{kind:9s} not measured: {errors.get(kind, 'no result')}")
    for other in ("asyncari", "aioari"):
        if "voxflow" in med and other in med:
            print(f"voxflow / {other}: {med['voxflow'] / med[other]:.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--client")
    parser.add_argument("--url")
    parser.add_argument("--feed", default="paced,backlog", help="paced, backlog or both")
    parser.add_argument(
        "--modes", action="store_true", help="voxflow CPU per call: classic vs per-call websockets"
    )
    args = parser.parse_args()
    if args.client:
        run_client(args.client, args.url, args.calls)
    elif args.modes:
        asyncio.run(compare_modes(args.calls, args.rounds))
    else:
        asyncio.run(main(args.calls, args.rounds, args.feed.split(",")))
