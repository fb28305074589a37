"""What Asterisk 22 answers when a media set-up request is sent again after the first was served
(a client whose deadline passed), and the fault that serves those requests late.

- ``POST /bridges`` (and ``/bridges/{id}``) with a ``bridgeId`` in use: 409 "Bridge with id 'X'
  already exists" (res/ari/resource_bridges.c, ``ast_bridge_topic_exists``; swagger 409);
- ``POST /channels/externalMedia`` with a ``channelId`` in use: 409 "Channel with given unique ID
  already exists" (``ast_dial_prerun`` fails with AST_CHANNEL_ERROR_ID_EXISTS);
- ``POST /channels/{id}/snoop`` with a ``snoopId`` in use: 500 "Snoop channel could not be
  created" (channel.c refuses the id; res/ari answers every failed snoop so);
- chan_rtp's ``UNICASTRTP_LOCAL_ADDRESS``/``PORT`` are channel variables (a subscribeAll observer
  gets their ChannelVarset), so ``GET /channels/{id}/variable`` reads them."""

from __future__ import annotations

import asyncio
import socket

from conftest import RawAri

from voxflow.sandbox import Sandbox


async def test_a_bridge_id_in_use_is_409_and_the_bridge_is_unchanged(
    sandbox: Sandbox, ari: RawAri
) -> None:
    status, _ = await ari.req("POST", "/bridges", type="mixing", bridgeId="b1", name="mine")
    assert status == 200
    for path, params in (("/bridges", {"bridgeId": "b1"}), ("/bridges/b1", {})):
        status, body = await ari.req("POST", path, type="mixing", name="other", **params)
        assert (status, body) == (409, {"message": "Bridge with id 'b1' already exists"})
    status, body = await ari.req("GET", "/bridges/b1")
    assert (status, body["name"]) == (200, "mine")


async def test_an_external_media_or_snoop_id_in_use_is_refused(
    sandbox: Sandbox, ari: RawAri
) -> None:
    call = await sandbox.place_call()
    await ari.next("StasisStart")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{udp.getsockname()[1]}"
        em = {"app": "voxflow", "external_host": host, "format": "ulaw", "channelId": "em1"}
        status, first = await ari.req("POST", "/channels/externalMedia", **em)
        assert status == 200 and first["name"].startswith(f"UnicastRTP/{host}-")
        status, body = await ari.req("POST", "/channels/externalMedia", **em)
        assert (status, body) == (409, {"message": "Channel with given unique ID already exists"})
        for name in ("UNICASTRTP_LOCAL_ADDRESS", "UNICASTRTP_LOCAL_PORT"):
            status, var = await ari.req("GET", "/channels/em1/variable", variable=name)
            assert (status, var) == (200, {"value": first["channelvars"][name]})
        snoop = {"spy": "in", "app": "voxflow", "snoopId": "sn1"}
        status, body = await ari.req("POST", f"/channels/{call.id}/snoop", **snoop)
        assert status == 200 and body["name"].startswith(f"Snoop/{call.id}-")
        status, body = await ari.req("POST", f"/channels/{call.id}/snoop", **snoop)
        assert (status, body) == (500, {"message": "Snoop channel could not be created"})
        for cid in ("em1", "sn1"):
            assert (await ari.req("DELETE", f"/channels/{cid}"))[0] == 204


async def test_slow_media_setup_serves_at_once_and_answers_late(
    sandbox: Sandbox, ari: RawAri
) -> None:
    """The bridge exists while its answer is held back; ``times`` counts the requests."""
    sandbox.faults.slow_media_setup(0.5, times=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    post = asyncio.ensure_future(ari.req("POST", "/bridges", type="mixing", bridgeId="late"))
    while "late" not in sandbox.pbx.bridges:
        assert not post.done()
        await asyncio.sleep(0.01)
    assert (await post)[0] == 200 and loop.time() - started >= 0.5
    assert sandbox.faults.answer_delay("POST", "/bridges") == 0  # used up
    sandbox.faults.slow_media_setup(0.5)
    paths = ["/channels/externalMedia", "/channels/c1/snoop", "/bridges/b", "/bridges/b/addChannel"]
    assert [sandbox.faults.answer_delay("POST", p) for p in paths] == [0.5] * 4
    assert sandbox.faults.answer_delay("POST", "/channels/c1/play") == 0
    assert sandbox.faults.answer_delay("DELETE", "/bridges/b") == 0
