"""Inbound calls, answer, play, DTMF and hang-up through real ARI (REST + websocket)."""

from __future__ import annotations

import asyncio
import io
import wave

import aiohttp
import numpy as np
from conftest import RawAri

from voxflow.sandbox import Sandbox


async def test_inbound_call_arrives_as_stasis_start_in_ring(sandbox: Sandbox, ari: RawAri) -> None:
    call = await sandbox.place_call(from_="+15551230000", to="200", name="Alice")
    ev = await ari.next()
    assert ev["type"] == "StasisStart"
    assert ev["application"] == "voxflow"
    ch = ev["channel"]
    assert ch["id"] == call.id
    assert ch["state"] == "Ring"
    assert ch["name"].startswith("PJSIP/")
    assert ch["caller"] == {"name": "Alice", "number": "+15551230000"}
    assert ch["dialplan"]["exten"] == "200"
    assert ch["dialplan"]["app_name"] == "Stasis"
    assert ev["args"] == []


async def test_answer_play_dtmf_hangup_sequence(sandbox: Sandbox, ari: RawAri) -> None:
    call = await sandbox.place_call()
    await ari.next("StasisStart")
    status, _ = await ari.req("POST", f"/channels/{call.id}/answer")
    assert status == 204
    ev = await ari.next()
    assert (ev["type"], ev["channel"]["state"]) == ("ChannelStateChange", "Up")
    status, body = await ari.req("POST", f"/channels/{call.id}/play", media="sound:hello-world")
    assert status == 201 and body["state"] == "queued"
    started = await ari.next()
    assert started["type"] == "PlaybackStarted"
    assert started["playback"]["state"] == "playing"
    finished = await ari.next()
    assert finished["type"] == "PlaybackFinished"
    assert finished["playback"]["state"] == "done"
    await call.press("5#", duration_ms=80, gap_ms=50)
    d1, d2 = await ari.next(), await ari.next()
    assert [(d1["digit"], d1["duration_ms"]), (d2["digit"], d2["duration_ms"])] == [
        ("5", 80),
        ("#", 80),
    ]
    status, _ = await ari.req("DELETE", f"/channels/{call.id}")
    assert status == 204
    events = await ari.collect()
    assert [e["type"] for e in events] == ["ChannelHangupRequest", "StasisEnd"]
    assert events[0]["cause"] == 32 and events[0]["soft"] is True
    assert await call.wait_hangup(5) == 16
    kinds = [e["type"] for e in call.experience()]
    assert kinds[0] == "answered"
    assert "audio" in kinds and kinds[-1] == "hangup"
    heard = np.frombuffer(call.heard_audio(), dtype="<i2")
    assert len(heard) > 8000 * 0.5 and np.abs(heard).max() > 1000
    status, body = await ari.req("DELETE", f"/channels/{call.id}")
    assert (status, body) == (404, {"message": "Channel not found"})


async def test_caller_hangup_ends_stasis_with_cause_16(sandbox: Sandbox, ari: RawAri) -> None:
    call = await sandbox.place_call()
    await ari.next("StasisStart")
    await call.hangup()
    ev = await ari.next()
    assert ev["type"] == "ChannelHangupRequest" and ev["cause"] == 16 and "soft" not in ev
    assert (await ari.next())["type"] == "StasisEnd"
    status, _ = await ari.req("GET", f"/channels/{call.id}")
    assert status == 404


async def test_missing_sound_fails_and_unknown_scheme_never_finishes(
    sandbox: Sandbox, ari: RawAri
) -> None:
    call = await sandbox.place_call()
    await ari.next("StasisStart")
    await ari.req("POST", f"/channels/{call.id}/answer")
    await ari.next("ChannelStateChange")
    await ari.req("POST", f"/channels/{call.id}/play", media="sound:this-does-not-exist")
    assert (await ari.next())["type"] == "PlaybackStarted"
    fin = await ari.next()
    assert fin["type"] == "PlaybackFinished" and fin["playback"]["state"] == "failed"
    status, body = await ari.req("POST", f"/channels/{call.id}/play", media="bogus:xyz")
    assert status == 201
    assert (await ari.next())["type"] == "PlaybackStarted"
    status, _ = await ari.req("GET", f"/playbacks/{body['id']}")
    assert status == 404
    assert await ari.collect(quiet=0.5) == []


async def test_no_app_connected_call_fails(sandbox: Sandbox) -> None:
    # the shipped [voxflow-in] tries Stasis() again 10 times, 0.5 s apart (shortened here)
    sandbox.pbx.contexts.back_wait = 0.01
    call = await sandbox.place_call(app="nobody", wait_app=0)
    await call.wait_hangup(5)
    assert call.experience()[-1]["type"] == "hangup"
    assert call.channel is not None and call.channel.variables["VOXFLOW_TRIES"] == "10"


async def test_no_app_connected_call_to_another_extension_fails_at_once(sandbox: Sandbox) -> None:
    call = await sandbox.place_call(to="s", app="nobody", wait_app=0)  # not [voxflow-in]'s
    assert call.ended
    assert call.experience()[-1]["type"] == "hangup"


async def test_auth_and_routing_errors(sandbox: Sandbox) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(sandbox.ari_url + "/asterisk/info") as r:
            assert r.status == 401
            assert await r.json() == {"message": "Authentication required"}
            assert r.headers["WWW-Authenticate"].startswith("Basic")
        key = f"api_key={sandbox.user}:{sandbox.password}"
        async with s.get(sandbox.ari_url + "/asterisk/info?" + key) as r:
            assert r.status == 200
            assert (await r.json())["system"]["version"] == "22.10.1"
        async with s.get(sandbox.ari_url + "/no/such/resource?" + key) as r:
            assert (r.status, await r.json()) == (404, {"message": "Resource not found"})
        async with s.patch(sandbox.ari_url + "/channels?" + key) as r:
            assert (r.status, await r.json()) == (405, {"message": "Invalid method"})
        async with s.post(sandbox.ari_url + "/channels?endpoint=Bogus/1&app=voxflow&" + key) as r:
            assert (r.status, await r.json()) == (500, {"error": "Allocation failed"})
        async with s.post(sandbox.ari_url + "/channels?endpoint=PJSIP/a&" + key) as r:
            assert (await r.json())["message"] == "Application or extension must be specified"
        bad = sandbox.events_url("voxflow").replace(sandbox.password, "wrong")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s2:
            try:
                await s2.ws_connect(bad)
            except aiohttp.WSServerHandshakeError as exc:
                assert exc.status == 401
            else:  # pragma: no cover
                raise AssertionError("handshake with a bad key succeeded")
            try:
                await s2.ws_connect(sandbox.events_url("x").replace("app=x&", ""))
            except aiohttp.WSServerHandshakeError as exc:
                assert exc.status == 400
            else:  # pragma: no cover
                raise AssertionError("handshake without app succeeded")


async def test_originate_busy_noanswer_congestion_and_answer(sandbox: Sandbox, ari: RawAri) -> None:
    expected = {"busy": ("BUSY", 17), "congestion": ("CONGESTION", 34)}
    for name, (status_txt, cause) in expected.items():
        status, body = await ari.req("POST", "/channels", endpoint=f"PJSIP/{name}", app="voxflow")
        assert status == 200 and body["state"] == "Down"
        events = await ari.collect()
        assert [e["type"] for e in events] == ["Dial", "Dial", "ChannelDestroyed"]
        assert [e["dialstatus"] for e in events[:2]] == ["", status_txt]
        assert events[2]["cause"] == cause
    status, body = await ari.req(
        "POST", "/channels", endpoint="PJSIP/noanswer", app="voxflow", timeout="1"
    )
    events = await ari.collect(quiet=1.5)
    assert [e.get("dialstatus", e["type"]) for e in events] == [
        "",
        "ChannelStateChange",
        "RINGING",
        "NOANSWER",
        "ChannelDestroyed",
    ]
    status, body = await ari.req(
        "POST", "/channels", endpoint="PJSIP/alice", app="voxflow", appArgs="out,1"
    )
    far = sandbox.calls[body["id"]]
    assert far.direction == "outbound" and far is sandbox.outbound_calls[-1]
    events = await ari.collect()
    assert [e["type"] for e in events] == [
        "Dial",
        "ChannelStateChange",
        "Dial",
        "ChannelStateChange",
        "Dial",
        "ChannelVarset",
        "StasisStart",
    ]
    assert events[-1]["args"] == ["out", "1"] and events[-1]["channel"]["state"] == "Up"
    await far.say_audio((np.ones(1600, dtype="<i2") * 3000).tobytes())
    await ari.req("DELETE", f"/channels/{body['id']}")
    events = await ari.collect()
    assert [e["type"] for e in events] == [
        "ChannelHangupRequest",
        "StasisEnd",
        "ChannelVarset",
        "ChannelDestroyed",
    ]
    assert far.ended


async def test_bridge_mixes_audio_and_records_wav(sandbox: Sandbox, ari: RawAri) -> None:
    a = await sandbox.place_call(from_="111")
    b = await sandbox.place_call(from_="222")
    for c in (a, b):
        await ari.req("POST", f"/channels/{c.id}/answer")
    status, br = await ari.req("POST", "/bridges", type="mixing", bridgeId="br1")
    assert status == 200 and br["id"] == "br1" and br["bridge_type"] == "mixing"
    assert (await ari.req("POST", "/bridges/br1/addChannel", channel=f"{a.id},{b.id}"))[0] == 204
    status, _ = await ari.req(
        "POST", "/bridges/br1/record", name="mix", format="wav", maxDurationSeconds="2"
    )
    assert status == 201
    tone = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 8000).astype("<i2").tobytes()
    await a.say_audio(tone)
    heard = np.frombuffer(b.heard_audio(), dtype="<i2")
    assert np.abs(heard).max() > 4000  # b heard a through the bridge
    assert not a.heard_audio() or np.abs(np.frombuffer(a.heard_audio(), "<i2")).max() < 100
    ev = await ari.next("RecordingFinished", timeout=10)
    assert ev["recording"]["duration"] == 2
    status, data = await ari.req("GET", "/recordings/stored/mix")
    assert data == {"name": "mix", "format": "wav"}
    async with ari.session.get(
        sandbox.ari_url + "/recordings/stored/mix/file", headers=ari.headers
    ) as r:
        raw = await r.read()
    with wave.open(io.BytesIO(raw)) as w:
        assert w.getframerate() == 8000 and w.getnframes() == 16000
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert np.abs(pcm).max() > 4000
    part = [e for e in b.experience() if e["type"] == "bridge"][-1]
    assert part["partners"] and part["partners"][0].startswith("PJSIP/")
    await asyncio.sleep(0)


async def test_bridge_recording_ends_after_max_silence_of_a_quiet_line(
    sandbox: Sandbox, ari: RawAri
) -> None:
    a = await sandbox.place_call(from_="111")
    b = await sandbox.place_call(from_="222")
    for c in (a, b):
        await ari.req("POST", f"/channels/{c.id}/answer")
    await ari.req("POST", "/bridges", type="mixing", bridgeId="br2")
    await ari.req("POST", "/bridges/br2/addChannel", channel=f"{a.id},{b.id}")
    status, _ = await ari.req(
        "POST", "/bridges/br2/record", name="quiet", format="wav", maxSilenceSeconds="1"
    )
    assert status == 201
    tone = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 8000).astype("<i2")
    # then a quiet line: A-law's smallest code (+-8) and low hiss, never digital zero
    quiet = np.where(np.arange(8000 * 5) % 2, 8, -8).astype("<i2")
    quiet[::3] += np.random.default_rng(3).integers(-40, 41, len(quiet[::3])).astype("<i2")
    talking = asyncio.create_task(a.say_audio(np.concatenate([tone, quiet]).tobytes()))
    try:
        ev = await ari.next("RecordingFinished", timeout=20)
        # 1 s of tone: ended by its 1 s of silence (the quiet line goes on for 5 s), trimmed
        assert ev["recording"]["duration"] == 1
    finally:
        await asyncio.wait_for(talking, 30)
    async with ari.session.get(
        sandbox.ari_url + "/recordings/stored/quiet/file", headers=ari.headers
    ) as r:
        raw = await r.read()
    with wave.open(io.BytesIO(raw)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    # Recording starts at the POST: the ticks before the caller's first frame reaches the bridge
    # (one or two on a loaded machine) are recorded as silence, as Asterisk does; then exactly
    # the 1 s of tone, and the quiet line after it trimmed.
    lead = len(pcm) - 8000
    assert lead >= 0 and lead % 160 == 0 and not pcm[:lead].any()
    assert np.array_equal(pcm[lead:], tone)


async def test_an_other_channel_id_that_prefixes_the_channel_id_is_409(
    sandbox: Sandbox, ari: RawAri
) -> None:
    # observed-behaviour.md (externalMedia side finding): neither id exists, yet Asterisk 22
    # refuses abcd/abc and x-1/x; the reverse (abc/abcd) works
    for cid, other in (("abcd", "abc"), ("x-1", "x")):
        status, body = await ari.req(
            "POST", "/channels", endpoint="Local/100@voxflow-in", app="voxflow",
            channelId=cid, otherChannelId=other,
        )  # fmt: skip
        assert (status, body) == (409, {"message": "Channel with given unique ID already exists"})
        assert (await ari.req("GET", f"/channels/{cid}"))[0] == 404
    status, body = await ari.req(
        "POST", "/channels", endpoint="Local/100@voxflow-in", app="voxflow",
        channelId="abc", otherChannelId="abcd",
    )  # fmt: skip
    assert status == 200 and body["id"] == "abc"


async def test_answer_on_an_up_channel_is_204_and_changes_nothing(
    sandbox: Sandbox, ari: RawAri
) -> None:
    """Asterisk's ast_raw_answer does nothing on an Up channel and returns 0 (res/ari answers
    204): no second ChannelStateChange. What makes repeating an answer that timed out safe."""
    call = await sandbox.place_call()
    await ari.next("StasisStart")
    assert (await ari.req("POST", f"/channels/{call.id}/answer"))[0] == 204
    assert (await ari.next())["type"] == "ChannelStateChange"
    assert (await ari.req("POST", f"/channels/{call.id}/answer"))[0] == 204
    assert [e["type"] for e in await ari.collect()] == []
    status, body = await ari.req("GET", f"/channels/{call.id}")
    assert (status, body["state"]) == (200, "Up")


async def test_a_playback_id_given_twice_is_accepted_and_plays_twice(
    sandbox: Sandbox, ari: RawAri
) -> None:
    """res_stasis_playback.c links a playback whatever its id (no check in playback_create or
    ari_channels_handle_play; the container allows duplicates): the same playbackId sent again
    is a 201 and plays again. Why a play that timed out is not sent again."""
    call = await sandbox.place_call()
    await ari.next("StasisStart")
    await ari.req("POST", f"/channels/{call.id}/answer")
    await ari.next("ChannelStateChange")
    for _ in range(2):
        status, body = await ari.req(
            "POST", f"/channels/{call.id}/play", media="sound:beep", playbackId="pb-1"
        )
        assert (status, body["id"]) == (201, "pb-1")
    kinds = []
    while len(kinds) < 4:
        ev = await ari.next()
        if ev["type"].startswith("Playback"):
            kinds.append((ev["type"], ev["playback"]["id"], ev["playback"]["state"]))
    assert kinds == [
        ("PlaybackStarted", "pb-1", "playing"),
        ("PlaybackFinished", "pb-1", "done"),
        ("PlaybackStarted", "pb-1", "playing"),
        ("PlaybackFinished", "pb-1", "done"),
    ]
    status, _ = await ari.req("GET", "/playbacks/pb-1")
    assert status == 404
