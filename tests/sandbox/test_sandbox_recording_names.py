"""A recording name that is taken: Asterisk answers ``POST /channels/{id}/record`` with 409
"Recording '<name>' already exists and can not be overwritten" (swagger: 409; source:
``stasis_app_control_record`` sets EEXIST for a live recording of that name, whatever
``ifExists``, and for a stored one with ``ifExists=fail``), before queueing anything."""

from __future__ import annotations

from conftest import RawAri

from voxflow.sandbox import Sandbox

TAKEN = {"message": "Recording 'msg' already exists and can not be overwritten"}


async def test_a_live_or_stored_name_is_refused_with_409(sandbox: Sandbox, ari: RawAri) -> None:
    call = await sandbox.place_call()
    await ari.next("StasisStart")
    assert (await ari.req("POST", f"/channels/{call.id}/answer"))[0] == 204
    rec = f"/channels/{call.id}/record"
    status, body = await ari.req("POST", rec, name="msg", format="wav")
    assert status == 201 and body["state"] == "queued"
    await ari.next("RecordingStarted")
    for if_exists in ("fail", "overwrite", "append"):  # live: refused whatever ifExists says
        assert await ari.req("POST", rec, name="msg", format="wav", ifExists=if_exists) == (
            409,
            TAKEN,
        )
    assert (await ari.req("POST", "/recordings/live/msg/stop"))[0] == 204
    await ari.next("RecordingFinished")
    assert await ari.req("POST", rec, name="msg", format="wav") == (409, TAKEN)  # stored
    status, _ = await ari.req("POST", rec, name="msg", format="wav", ifExists="overwrite")
    assert status == 201
    await ari.next("RecordingStarted")
    assert (await ari.req("POST", "/recordings/live/msg/stop"))[0] == 204
    await ari.next("RecordingFinished")
    status, _ = await ari.req("POST", rec, name="msg-r1", format="wav")
    assert status == 201
