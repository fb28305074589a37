"""Events handled per CPU-second: voxflow's ARI events client vs asyncari and aioari.

A local aiohttp server serves the swagger (which asyncari/aioari load at start-up) and an events
websocket that replays a stream built from the captured Asterisk events of one call, replicated
over many concurrent calls (ids rewritten, calls interleaved). Each client runs in its own
subprocess (so its CPU time is its own) and consumes the same stream from the same server in the
same run; CPU time is counted from the first event to the end marker.

    .venv/bin/python bench/ari_events.py [--calls 400] [--rounds 3]

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

API_DOCS = Path("/work/shared/ari/api-docs")
CAPTURE = Path("/work/shared/ari/captures/events-sample.json")
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


def make_server(stream: list[str], port_holder: list[int]) -> web.Application:
    async def docs(request: web.Request) -> web.Response:
        name = request.match_info["name"].replace(".{format}", ".json")
        path = API_DOCS / name
        if not path.exists():
            return web.json_response({"message": "Resource not found"}, status=404)
        text = path.read_text().replace(
            "http://localhost:8088/ari", f"http://127.0.0.1:{port_holder[0]}/ari"
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

    app = web.Application()
    app.router.add_get("/ari/api-docs/{name}", docs)
    app.router.add_get("/ari/events", events)
    return app


# ---------------------------------------------------------------------- clients (subprocess)


async def client_voxflow(url: str) -> tuple[int, float]:
    from voxflow.ari.dispatch import Dispatcher
    from voxflow.ari.events import AriEventStream
    from voxflow.ari.models import AriEvent, ChannelUserevent

    dispatcher = Dispatcher()
    done = asyncio.Event()
    count = 0
    t0 = 0.0
    per_channel: dict[str, int] = {}

    def on_event(event: AriEvent) -> None:
        nonlocal count, t0
        if count == 0:
            t0 = time.process_time()
        count += 1
        for cid in dispatcher.route(event):
            per_channel[cid] = per_channel.get(cid, 0) + 1
        if isinstance(event, ChannelUserevent) and event.eventname == END:
            done.set()

    stream = AriEventStream(url, {"Authorization": "Basic eDp5"}, "voxflow", on_event=on_event)
    await stream.start()
    await done.wait()
    cpu = time.process_time() - t0
    await stream.close()
    return count, cpu


async def client_aioari(url: str) -> tuple[int, float]:
    import aioari

    client = await aioari.connect(url.removesuffix("ari"), "x", "y")
    count = 0
    t0 = 0.0
    done = asyncio.Event()

    def on_any(*args: Any) -> None:
        nonlocal count, t0
        if count == 0:
            t0 = time.process_time()
        count += 1
        event = args[-1] if args else {}
        if isinstance(event, dict) and event.get("eventname") == END:
            done.set()

    for kind in _event_types():
        client.on_event(kind, on_any)
    runner = asyncio.ensure_future(client.run(apps="voxflow"))
    await done.wait()
    cpu = time.process_time() - t0
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    return count, cpu


async def client_asyncari(url: str) -> tuple[int, float]:
    import asyncari

    count = 0
    t0 = 0.0
    async with asyncari.connect(url.removesuffix("ari"), "voxflow", "x", "y") as ari:
        async for msg in ari:
            if count == 0:
                t0 = time.process_time()
            count += 1
            if msg["type"] == "ChannelUserevent" and msg._get("eventname") == END:
                break
    return count, time.process_time() - t0


def _event_types() -> list[str]:
    return sorted({json.loads(s)["type"] for s in build_stream(1)})


def run_client(kind: str, url: str) -> None:
    fn = {"voxflow": client_voxflow, "aioari": client_aioari, "asyncari": client_asyncari}[kind]
    count, cpu = asyncio.run(fn(url))
    print(json.dumps({"events": count, "cpu": cpu}))


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


async def main(calls: int, rounds: int) -> None:
    stream = build_stream(calls)
    port: list[int] = [0]
    runner = web.AppRunner(make_server(stream, port))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port[0] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port[0]}/ari"
    print(f"stream: {len(stream)} events ({calls} concurrent calls), {rounds} rounds")
    rates: dict[str, list[float]] = {"voxflow": [], "asyncari": [], "aioari": []}
    errors: dict[str, str] = {}
    try:
        for _ in range(rounds):
            for kind in rates:
                if kind in errors:
                    continue
                res = await measure(kind, url, timeout=300)
                if "error" in res:
                    errors[kind] = res["error"]
                    continue
                if res["events"] != len(stream):
                    errors[kind] = f"handled {res['events']} of {len(stream)} events"
                    continue
                rates[kind].append(res["events"] / max(res["cpu"], 1e-9))
    finally:
        await runner.cleanup()
    med = {k: statistics.median(v) for k, v in rates.items() if v}
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
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.client:
        run_client(args.client, args.url)
    else:
        asyncio.run(main(args.calls, args.rounds))
