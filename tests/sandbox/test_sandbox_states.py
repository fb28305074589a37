"""Values the captures do not show, as docs/sandbox.md settles them: playback states after
stop/pause, a cancelled recording, and hold initiated by the phone."""

from __future__ import annotations

from conftest import RawAri

from voxflow.sandbox import Sandbox


async def test_playback_stop_pause_and_queued_cancel(sandbox: Sandbox, ari: RawAri) -> None:
    call = await sandbox.place_call()
    await ari.next("StasisStart")
    await ari.req("POST", f"/channels/{call.id}/answer")
    await ari.req("POST", f"/channels/{call.id}/play", media="tone:440", playbackId="p1")
    await ari.req("POST", f"/channels/{call.id}/play", media="sound:beep", playbackId="p2")
    assert (await ari.req("GET", "/playbacks/p2"))[1]["state"] == "queued"
    assert (await ari.next("PlaybackStarted"))["playback"]["id"] == "p1"
    assert (await ari.req("POST", "/playbacks/p1/control", operation="pause"))[0] == 204
    assert (await ari.req("GET", "/playbacks/p1"))[1]["state"] == "paused"
    assert (await ari.req("POST", "/playbacks/p1/control", operation="unpause"))[0] == 204
    assert (await ari.req("GET", "/playbacks/p1"))[1]["state"] == "playing"
    assert (await ari.req("POST", "/playbacks/p2/control", operation="pause"))[0] == 409
    assert (await ari.req("DELETE", "/playbacks/p1"))[0] == 204
    finished = await ari.next("PlaybackFinished")
    assert (finished["playback"]["id"], finished["playback"]["state"]) == ("p1", "done")
    assert (await ari.next("PlaybackStarted"))["playback"]["id"] == "p2"  # the queue moves on
    assert (await ari.next("PlaybackFinished"))["playback"]["state"] == "done"
    await ari.req("POST", f"/channels/{call.id}/play", media="tone:440", playbackId="p3")
    await ari.req("POST", f"/channels/{call.id}/play", media="sound:beep", playbackId="p4")
    await ari.next("PlaybackStarted")
    await ari.req("DELETE", "/playbacks/p4")  # still queued
    cancelled = await ari.next("PlaybackFinished")
    assert (cancelled["playback"]["id"], cancelled["playback"]["state"]) == ("p4", "done")
    assert (await ari.req("GET", "/playbacks/p4"))[0] == 404


async def test_cancelled_recording_reports_canceled_and_keeps_no_file(
    sandbox: Sandbox, ari: RawAri
) -> None:
    call = await sandbox.place_call()
    await ari.next("StasisStart")
    await ari.req("POST", f"/channels/{call.id}/answer")
    status, _ = await ari.req("POST", f"/channels/{call.id}/record", name="gone", format="wav")
    assert status == 201
    await ari.next("RecordingStarted")
    assert (await ari.req("DELETE", "/recordings/live/gone"))[0] == 204
    ev = await ari.next("RecordingFinished")
    assert ev["recording"]["state"] == "canceled" and "duration" not in ev["recording"]
    assert (await ari.req("GET", "/recordings/stored/gone"))[0] == 404


async def test_phone_initiated_hold_raises_channel_hold(sandbox: Sandbox, ari: RawAri) -> None:
    call = await sandbox.place_call()
    await ari.next("StasisStart")
    await ari.req("POST", f"/channels/{call.id}/answer")
    await call.hold("default")
    held = await ari.next("ChannelHold")
    assert held["musicclass"] == "default" and held["channel"]["id"] == call.id
    await call.unhold()
    unheld = await ari.next("ChannelUnhold")
    assert set(unheld) == {"type", "timestamp", "channel", "application", "asterisk_id"}
    # ARI's own hold (towards the phone) raises no event: the phone just learns of it.
    assert (await ari.req("POST", f"/channels/{call.id}/hold"))[0] == 204
    await ari.req("POST", f"/channels/{call.id}/variable", variable="X", value="1")
    assert (await ari.next())["type"] == "ChannelVarset"
    assert [e["type"] for e in call.experience()][-3:] == ["held", "unheld", "hold"]
