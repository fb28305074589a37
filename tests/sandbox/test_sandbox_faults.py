"""Fault injection (events socket, events, REST, RTP) and ApplicationReplaced, seen by a
plain ARI client."""

from __future__ import annotations

import asyncio
import itertools
import struct
from typing import Any

import aiohttp
import numpy as np
from conftest import RawAri

from voxflow.sandbox import Sandbox


async def _answered_call(sandbox: Sandbox, ari: RawAri) -> str:
    call = await sandbox.place_call()
    await ari.next("StasisStart")
    await ari.req("POST", f"/channels/{call.id}/answer")
    await ari.next("ChannelStateChange")
    return call.id


async def test_drop_events_socket_keeps_channels_and_loses_events(
    sandbox: Sandbox, ari: RawAri
) -> None:
    call = await sandbox.place_call()
    await ari.next("StasisStart")
    assert ari.ws is not None
    assert sandbox.faults.drop_events_socket("voxflow")
    await asyncio.wait_for(ari._reader, 10)  # type: ignore[arg-type]  # the socket ended
    assert ari.ws.closed
    for _ in range(200):
        if not sandbox.pbx.app_active("voxflow"):
            break
        await asyncio.sleep(0.01)
    assert not sandbox.pbx.app_active("voxflow")
    assert not sandbox.faults.drop_events_socket("voxflow")  # nothing left to drop
    # While nobody listens: the channel stays in Stasis and REST still works; events are lost.
    status, ch = await ari.req("GET", f"/channels/{call.id}")
    assert status == 200 and ch["dialplan"]["app_name"] == "Stasis"
    assert (await ari.req("POST", f"/channels/{call.id}/answer"))[0] == 204
    await sandbox.calls[call.id].press("5")
    status, apps = await ari.req("GET", "/applications/voxflow")
    assert status == 200 and call.id in apps["channel_ids"]
    # Reconnect: only what happens from now on arrives (no replay, no new StasisStart).
    await ari.connect()
    await sandbox.wait_app("voxflow")
    await ari.req("POST", f"/channels/{call.id}/play", media="sound:beep", playbackId="p1")
    got = [await ari.next(), await ari.next()]
    assert [e["type"] for e in got] == ["PlaybackStarted", "PlaybackFinished"]
    assert ari.events.empty()


async def test_stall_and_delay_hold_events_in_order(sandbox: Sandbox, ari: RawAri) -> None:
    cid = await _answered_call(sandbox, ari)
    loop = asyncio.get_running_loop()
    sandbox.faults.stall_events(0.6)
    t0 = loop.time()
    for name in ("A", "B", "C"):
        await ari.req("POST", f"/channels/{cid}/variable", variable=name, value="1")
    first = await ari.next(timeout=10)
    assert loop.time() - t0 >= 0.5  # nothing came out during the stall
    rest = [await ari.next(), await ari.next()]
    assert [e["variable"] for e in [first, *rest]] == ["A", "B", "C"]
    sandbox.faults.delay_events(150)
    t0 = loop.time()
    await ari.req("POST", f"/channels/{cid}/variable", variable="D", value="1")
    await ari.req("POST", f"/channels/{cid}/variable", variable="E", value="1")
    got = [await ari.next(), await ari.next()]
    assert loop.time() - t0 >= 0.28  # two events, each held 150 ms
    assert [e["variable"] for e in got] == ["D", "E"]
    sandbox.faults.delay_events(0)


async def test_drop_next_events_loses_exactly_n(sandbox: Sandbox, ari: RawAri) -> None:
    cid = await _answered_call(sandbox, ari)
    sandbox.faults.drop_next_events(2)
    for name in ("A", "B", "C", "D"):
        await ari.req("POST", f"/channels/{cid}/variable", variable=name, value="1")
    got = await ari.collect()
    assert [e["variable"] for e in got] == ["C", "D"]


async def test_fail_next_requests_answers_5xx_then_recovers(sandbox: Sandbox, ari: RawAri) -> None:
    sandbox.faults.fail_next_requests(2, status=503)
    first = await ari.req("GET", "/asterisk/info")
    second = await ari.req("GET", "/channels")
    assert first[0] == second[0] == 503
    assert isinstance(first[1], dict) and first[1]["message"]
    status, info = await ari.req("GET", "/asterisk/info")
    assert status == 200 and info["system"]["version"] == "22.10.1"


async def test_malformed_events_arrive_raw_and_the_socket_lives_on(
    sandbox: Sandbox, ari: RawAri
) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(sandbox.events_url("observer"))
        await sandbox.wait_app("observer")
        texts: list[str] = []
        for kind in ("invalid_json", "no_type", "unknown_type"):
            assert sandbox.faults.send_malformed_event("observer", kind)
            msg = await ws.receive(timeout=10)
            assert msg.type == aiohttp.WSMsgType.TEXT
            texts.append(msg.data)
        assert not sandbox.faults.send_malformed_event("nobody")
        await ws.close()
    import json

    try:
        json.loads(texts[0])
    except ValueError:
        pass
    else:  # pragma: no cover
        raise AssertionError("invalid_json was valid JSON")
    assert "type" not in json.loads(texts[1])
    assert json.loads(texts[2])["type"] == "NoSuchEvent"
    call = await sandbox.place_call()  # the voxflow app's socket is unaffected
    assert (await ari.next("StasisStart"))["channel"]["id"] == call.id


async def test_application_replaced_old_socket_stays_open_and_silent(
    sandbox: Sandbox, ari: RawAri
) -> None:
    async with aiohttp.ClientSession() as s:
        newer = await s.ws_connect(sandbox.events_url("voxflow"))
        replaced = await ari.next(timeout=10)
        assert replaced["type"] == "ApplicationReplaced"
        assert set(replaced) == {"type", "timestamp", "application", "asterisk_id"}
        assert replaced["application"] == "voxflow"
        call = await sandbox.place_call()
        msg = await newer.receive(timeout=10)
        start = msg.json()
        assert start["type"] == "StasisStart" and start["channel"]["id"] == call.id
        await asyncio.sleep(0.3)
        assert ari.ws is not None and not ari.ws.closed  # no close frame for the old one
        assert ari.events.empty()  # and no events either
        await newer.close()


class _Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, int]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        seq = struct.unpack("!H", data[2:4])[0]
        self.arrivals.append((asyncio.get_running_loop().time(), seq))


async def _rtp_run(sandbox: Sandbox, ari: RawAri, seconds: float, **faults: Any) -> list[int]:
    """Sequence numbers, in arrival order, of what a bridged externalMedia peer received
    while the caller spoke for ``seconds``."""
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(_Peer, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        status, em = await ari.req("POST", "/channels/externalMedia", app="voxflow",
                                   external_host=f"127.0.0.1:{port}", format="ulaw")  # fmt: skip
        assert status == 200
        call = await sandbox.place_call()
        await ari.req("POST", f"/channels/{call.id}/answer")
        status, br = await ari.req("POST", "/bridges", type="mixing")
        await ari.req("POST", f"/bridges/{br['id']}/addChannel", channel=f"{em['id']},{call.id}")
        sandbox.faults.set_rtp(seed=11, **faults)
        tone = (np.sin(np.arange(int(8000 * seconds)) * 0.3) * 8000).astype("<i2")
        await call.say_audio(tone.tobytes())
        sandbox.faults.clear()
        await asyncio.sleep(0.3)  # jittered packets still in flight
        await ari.req("DELETE", f"/channels/{em['id']}")
        await ari.req("DELETE", f"/channels/{call.id}")
        return [seq for _, seq in peer.arrivals]
    finally:
        transport.close()


def _inversions(seqs: list[int]) -> int:
    return sum(1 for a, b in itertools.pairwise(seqs) if ((b - a) & 0xFFFF) > 0x8000)


async def test_rtp_faults_loss_reorder_jitter(sandbox: Sandbox, ari: RawAri) -> None:
    clean = await _rtp_run(sandbox, ari, 1.0)
    assert len(clean) >= 45 and _inversions(clean) == 0
    assert len(set(clean)) == len(clean)
    lossy = await _rtp_run(sandbox, ari, 2.0, loss=0.3)
    span = ((lossy[-1] - lossy[0]) & 0xFFFF) + 1
    assert 0.5 < len(lossy) / span < 0.9  # about 30% of the sequence space is missing
    assert _inversions(lossy) == 0
    shuffled = await _rtp_run(sandbox, ari, 2.0, reorder=0.3)
    assert _inversions(shuffled) >= 5  # held packets come after their successors
    assert len(set(shuffled)) == len(shuffled)
    span = ((max(shuffled) - min(shuffled)) & 0xFFFF) + 1
    assert len(shuffled) >= span - 2  # reordered, not lost
    jittery = await _rtp_run(sandbox, ari, 2.0, jitter_ms=60.0)
    assert _inversions(jittery) >= 3  # delays up to 60 ms on a 20 ms cadence reorder
