"""Benchmark the sandbox: concurrent calls with signalling, and with bidirectional RTP.

    .venv/bin/python bench/sandbox.py [--calls 2000] [--rtp 100,250,500] [--seconds 10]
        [--repeat 3] [--pin]

Signalling: N inbound calls placed at once, each answered, played a prompt and hung up
over real ARI (REST + events websocket); prints wall time, sandbox CPU per call.
RTP: N externalMedia channels bridged to scripted callers (the sandbox is single-threaded, so
it uses one core at a time; ``--pin`` pins it to CPU 0 and the peer to CPU 1); a child process
plays the external side (one UDP socket per channel, paced 20 ms frames). Prints the
p50/p99/max lateness of packets the sandbox sends (goal p99 <= 2 ms), measured for every packet
against its absolute scheduled time, the packets skipped after stalls, and the sandbox CPU
share. Each size runs ``--repeat`` times (the machine may be shared); medians are printed last.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import resource
import socket
import statistics
import struct
import time

import aiohttp

from voxflow.sandbox import Sandbox


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def signalling(n: int) -> None:
    async with (
        Sandbox(port=0, record_heard=False) as sb,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=50)) as s,
    ):
        auth = {
            "Authorization": "Basic " + __import__("base64").b64encode(b"voxflow:voxflow").decode()
        }
        ws = await s.ws_connect(sb.events_url("voxflow"))
        await sb.wait_app()
        ended = 0
        done = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        async def reader() -> None:
            nonlocal ended
            async for msg in ws:
                ev = json.loads(msg.data)
                if ev["type"] == "StasisStart":
                    cid = ev["channel"]["id"]
                    tasks.add(asyncio.create_task(drive(cid)))
                elif ev["type"] == "StasisEnd":
                    ended += 1
                    if ended == n:
                        done.set()

        async def drive(cid: str) -> None:
            base = f"{sb.ari_url}/channels/{cid}"
            async with s.post(base + "/answer", headers=auth):
                pass
            async with s.post(base + "/play", params={"media": "sound:beep"}, headers=auth):
                pass
            async with s.delete(base, headers=auth):
                pass

        task = asyncio.create_task(reader())
        c0, t0 = _cpu(), time.perf_counter()
        calls = [await sb.place_call(from_=f"+1555{i:07d}") for i in range(n)]
        await asyncio.wait_for(done.wait(), 300)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        task.cancel()
        await ws.close()
        assert all(c.ended for c in calls)
        print(
            f"signalling: {n} concurrent calls answered+played+hung up in {wall:.2f} s wall; "
            f"process CPU {cpu:.2f} s ({cpu / n * 1000:.2f} ms/call, sandbox and test client "
            f"together on one event loop)"
        )


def _pin(cpu: int) -> set[int] | None:
    """Pin this process to one CPU when there are two or more; returns the old affinity."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return None
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    return old


def _peer(
    socks: list[tuple[socket.socket, int]],
    seconds: float,
    q: mp.Queue,  # type: ignore[type-arg]
    pin: bool,
) -> None:
    """Child process (forked, inherits the bound sockets): the external side of every
    externalMedia channel."""
    if pin:
        _pin(1)  # keep the peer off the sandbox's core
    for sk, _ in socks:
        sk.setblocking(False)
    payload = bytes([0x55]) * 160
    received = 0
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        for i, (sk, remote) in enumerate(socks):
            sk.sendto(
                struct.pack("!BBHII", 0x80, 0, n & 0xFFFF, n * 160, i) + payload,
                ("127.0.0.1", remote),
            )
            while True:
                try:
                    sk.recv(2048)
                    received += 1
                except BlockingIOError:
                    break
        n += 1
        time.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
    q.put((n * len(socks), received))


async def rtp(n: int, seconds: float, pin: bool = False) -> tuple[float, float, float, float]:
    """One run; returns (p50 ms, p99 ms, max ms, CPU share of one core)."""
    async with (
        Sandbox(port=0, record_heard=False, measure_rtp=True, precise_rtp=True) as sb,
        aiohttp.ClientSession() as s,
    ):
        auth = {
            "Authorization": "Basic " + __import__("base64").b64encode(b"voxflow:voxflow").decode()
        }
        ws = await s.ws_connect(sb.events_url("voxflow"))
        await sb.wait_app()
        pairs = []
        for i in range(n):
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            probe.bind(("127.0.0.1", 0))
            own = probe.getsockname()[1]
            async with s.post(
                f"{sb.ari_url}/channels/externalMedia",
                headers=auth,
                params={
                    "app": "voxflow",
                    "external_host": f"127.0.0.1:{own}",
                    "format": "ulaw",
                    "channelId": f"em{i}",
                },
            ) as r:
                em = await r.json()
            call = await sb.place_call(from_=f"{i}")
            async with s.post(f"{sb.ari_url}/channels/{call.id}/answer", headers=auth):
                pass
            async with s.post(
                f"{sb.ari_url}/bridges/b{i}/addChannel",
                headers=auth,
                params={"channel": f"em{i},{call.id}"},
            ) as r:
                if r.status == 404:
                    async with s.post(f"{sb.ari_url}/bridges/b{i}", headers=auth):
                        pass
                    async with s.post(
                        f"{sb.ari_url}/bridges/b{i}/addChannel",
                        headers=auth,
                        params={"channel": f"em{i},{call.id}"},
                    ):
                        pass
            pairs.append((probe, int(em["channelvars"]["UNICASTRTP_LOCAL_PORT"])))
        assert sb.rtp_lateness is not None
        sb.rtp_lateness.samples.clear()
        q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        proc = mp.get_context("fork").Process(target=_peer, args=(pairs, seconds, q, pin))
        gc.collect()
        gc.freeze()  # setup's objects are long-lived: keep them out of every collection
        proc.start()
        affinity = _pin(0) if pin else None
        c0, t0 = _cpu(), time.perf_counter()
        await asyncio.sleep(0.5)  # the fork itself stalls the loop: measure from here
        sb.rtp_lateness.samples.clear()
        sb.tick_lateness.clear()
        skipped0 = sb.rtp.skipped_packets
        await asyncio.get_running_loop().run_in_executor(None, proc.join)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        sent_by_peer, got_by_peer = q.get()
        late = sorted(x * 1000 for x in sb.rtp_lateness.samples)

        def p(f: float) -> float:
            return late[min(len(late) - 1, int(f * len(late)))]

        print(
            f"rtp: {n} bridged externalMedia calls for {seconds:.0f} s: sandbox sent "
            f"{len(late)} packets, lateness p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms, "
            f"max {late[-1]:.2f} ms; {sb.rtp.skipped_packets - skipped0} packets skipped "
            f"(periods the process stalled); peer sent {sent_by_peer}, received {got_by_peer}; "
            f"sandbox process CPU {cpu / wall * 100:.0f}% of one core"
        )
        await ws.close()
        for sk, _ in pairs:
            sk.close()
        gc.unfreeze()
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
        return p(0.5), p(0.99), late[-1], cpu / wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rtp", default="100,250,500", help="comma-separated call counts")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pin", action="store_true", help="pin the sandbox to CPU 0, the peer to 1")
    a = ap.parse_args()
    sizes = [int(x) for x in a.rtp.split(",") if x.strip() and int(x) > 0]
    print(
        f"command: .venv/bin/python bench/sandbox.py --calls {a.calls} --rtp {a.rtp} "
        f"--seconds {a.seconds:g} --repeat {a.repeat}{' --pin' if a.pin else ''}"
    )
    if a.calls:
        asyncio.run(signalling(a.calls))
    results: dict[int, list[tuple[float, float, float, float]]] = {}
    for _ in range(a.repeat):
        for n in sizes:
            results.setdefault(n, []).append(asyncio.run(rtp(n, a.seconds, a.pin)))
    for n, runs in results.items():
        med = [statistics.median(r[i] for r in runs) for i in range(4)]
        print(
            f"rtp median of {len(runs)} runs, {n} calls: lateness p50 {med[0]:.2f} ms, "
            f"p99 {med[1]:.2f} ms, max {med[2]:.2f} ms, sandbox CPU {med[3] * 100:.0f}% of one core"
        )


if __name__ == "__main__":
    main()
