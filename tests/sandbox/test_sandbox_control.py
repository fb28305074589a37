"""The HTTP control API (/sandbox/...) and the standalone ``voxflow sandbox`` command, driven
exactly as the README shows (curl-equivalent requests, a websocket events client)."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import shutil
import signal
import sys
import wave
from pathlib import Path
from typing import Any

import aiohttp
import forked
import pytest
from conftest import RawAri

from voxflow.sandbox import Sandbox

AUTH = {"Authorization": "Basic " + base64.b64encode(b"voxflow:voxflow").decode()}
VOXFLOW = Path(sys.executable).with_name("voxflow")


async def _json(r: aiohttp.ClientResponse) -> Any:
    return await r.json(content_type=None)


async def test_control_api_places_scripts_and_reports_a_call(sandbox: Sandbox, ari: RawAri) -> None:
    base = sandbox.base_url
    async with aiohttp.ClientSession(headers=AUTH) as s:
        async with s.post(f"{base}/sandbox/calls", json={"from": "+15551230000", "to": "200"}) as r:
            assert r.status == 201
            placed = await _json(r)
        cid = placed["id"]
        assert placed["state"] == "ringing" and placed["to"] == "200"
        start = await ari.next("StasisStart")
        assert start["channel"]["id"] == cid
        assert start["channel"]["caller"]["number"] == "+15551230000"
        assert start["channel"]["dialplan"]["exten"] == "200"
        await ari.req("POST", f"/channels/{cid}/answer")
        await ari.req("POST", f"/channels/{cid}/play", media="sound:beep")
        async with s.post(f"{base}/sandbox/calls/{cid}/press", json={"digits": "4#"}) as r:
            assert r.status == 204
        digits = [await ari.next("ChannelDtmfReceived") for _ in range(2)]
        assert [d["digit"] for d in digits] == ["4", "#"]
        async with s.post(f"{base}/sandbox/calls/{cid}/silence", json={"seconds": 0.1}) as r:
            assert r.status == 204
        if shutil.which("espeak-ng"):
            async with s.post(f"{base}/sandbox/calls/{cid}/say", json={"text": "yes"}) as r:
                assert r.status == 204
        async with s.get(f"{base}/sandbox/calls") as r:
            assert [c["id"] for c in await _json(r)] == [cid]
        async with s.post(f"{base}/sandbox/calls/{cid}/hangup", json={"cause": 17}) as r:
            assert r.status == 204
        assert (await ari.next("StasisEnd"))["channel"]["id"] == cid
        async with s.get(f"{base}/sandbox/calls/{cid}") as r:
            assert r.status == 200
            report = await _json(r)
        assert (report["state"], report["hangup_cause"]) == ("ended", 17)
        kinds = [e["type"] for e in report["experience"]]
        assert kinds[0] == "answered" and kinds[-1] == "hangup"
        assert [e["digit"] for e in report["experience"] if e["type"] == "pressed"] == ["4", "#"]
        played = [e for e in report["experience"] if e["type"] == "playback"]
        assert [(p["uri"], p["state"]) for p in played] == [
            ("sound:beep", "playing"), ("sound:beep", "done")
        ]  # fmt: skip
        times = [e["t"] for e in report["experience"]]
        assert times == sorted(times)
        audio = [e for e in report["experience"] if e["type"] == "audio"]
        assert audio and audio[0]["end"] > audio[0]["start"]  # the beep, with its timing
        async with s.get(f"{base}/sandbox/calls/{cid}/audio") as r:
            assert r.status == 200 and r.content_type == "audio/wav"
            with wave.open(io.BytesIO(await r.read())) as w:
                assert (w.getframerate(), w.getnchannels()) == (8000, 1)
                assert w.getnframes() >= 8000 * 0.2  # the 250 ms beep was heard
        # Errors: clear answers, nothing crashes.
        async with s.post(f"{base}/sandbox/calls/{cid}/press", json={"digits": "1"}) as r:
            assert r.status == 409  # the call has ended
        async with s.get(f"{base}/sandbox/calls/nope") as r:
            assert (r.status, await _json(r)) == (404, {"message": "Call not found"})
        async with s.post(f"{base}/sandbox/calls", data="{not json") as r:
            assert (r.status, await _json(r)) == (400, {"message": "body must be JSON"})
        async with s.post(f"{base}/sandbox/calls/{cid}/press", json={}) as r:
            assert r.status == 400 and "digits" in (await _json(r))["message"]
        bad = {"endpoint": "x", "behaviour": "?"}
        async with s.post(f"{base}/sandbox/outbound", json=bad) as r:
            assert r.status == 400
        body = {"app": "nobody", "wait_app": 0, "to": "s"}  # not an extension of [voxflow-in]
        async with s.post(f"{base}/sandbox/calls", json=body) as r:
            failed = await _json(r)
        # A call placed before the app connected is refused with the reason and a real id.
        assert r.status == 409 and failed["state"] == "ended"
        assert failed["message"] == "Stasis app 'nobody' doesn't exist"
        assert failed["id"]
        async with s.get(f"{base}/sandbox/calls/{failed['id']}") as r:
            assert r.status == 200 and (await _json(r))["state"] == "ended"
        # Into [voxflow-in], it rings while Stasis() is tried again, then ends with the reason.
        sandbox.pbx.contexts.back_wait = 0.01
        async with s.post(f"{base}/sandbox/calls", json={"app": "nobody", "wait_app": 0}) as r:
            ringing = await _json(r)
        assert r.status == 201
        await sandbox.calls[ringing["id"]].wait_hangup(5)
        async with s.get(f"{base}/sandbox/calls/{ringing['id']}") as r:
            tried = await _json(r)
        assert tried["state"] == "ended"
        reasons = [e.get("reason") for e in sandbox.calls[ringing["id"]].experience()]
        assert "Stasis app 'nobody' doesn't exist" in reasons
    async with aiohttp.ClientSession() as anon, anon.get(f"{base}/sandbox/calls") as r:
        assert r.status == 401


async def test_control_api_outbound_behaviour_and_faults(sandbox: Sandbox, ari: RawAri) -> None:
    base = sandbox.base_url
    async with aiohttp.ClientSession(headers=AUTH) as s:
        async with s.post(f"{base}/sandbox/outbound",
                          json={"endpoint": "PJSIP/bob", "behaviour": "busy"}) as r:  # fmt: skip
            assert r.status == 204
        status, _ = await ari.req("POST", "/channels", endpoint="PJSIP/bob", app="voxflow")
        assert status == 200
        gone = await ari.next("ChannelDestroyed")
        assert gone["cause"] == 17
        async with s.post(f"{base}/sandbox/faults", json={"fail_next_requests": 1}) as r:
            assert r.status == 204
        assert (await ari.req("GET", "/channels"))[0] == 500
        assert (await ari.req("GET", "/channels"))[0] == 200
        async with s.post(f"{base}/sandbox/faults", json={"rtp_loss": 0.5, "delay_events_ms": 5}):
            pass
        assert sandbox.faults.rtp.loss == 0.5 and sandbox.faults.delay_ms == 5
        async with s.post(f"{base}/sandbox/faults", json={"clear": True}):
            pass
        assert sandbox.faults.rtp.loss == 0.0 and sandbox.faults.delay_ms == 0


async def test_control_api_queues_and_call_variables(sandbox: Sandbox, ari: RawAri) -> None:
    base = sandbox.base_url
    async with aiohttp.ClientSession(headers=AUTH) as s:
        body = {"name": "desk", "agents": [{"name": "ann", "answer_after": 0.1, "talk": 0.1}]}
        async with s.post(f"{base}/sandbox/queues", json=body) as r:
            assert r.status == 204
        async with s.post(f"{base}/sandbox/queues", json={"agents": []}) as r:
            assert r.status == 400  # no name
        call = {"to": "100", "variables": {"VOXFLOW_QUEUE": "desk", "VOXFLOW_APP": "voxflow"}}
        async with s.post(f"{base}/sandbox/calls", json=call) as r:
            cid = (await _json(r))["id"]
    await ari.next("StasisStart")
    await ari.req("POST", f"/channels/{cid}/variable", variable="VOXFLOW_QUEUE_OPTIONS", value="c")
    await ari.req("POST", f"/channels/{cid}/continue", context="voxflow-queue", extension="queue")
    back = await ari.next("StasisStart")
    assert back["args"][:2] == ["queue-return", "CONTINUE"] and back["channel"]["id"] == cid
    assert sandbox.pbx.contexts.queues["desk"].agents[0].name == "ann"


@pytest.mark.skipif(not VOXFLOW.exists(), reason="voxflow script not installed in the venv")
async def test_cli_serves_readme_examples_and_exits_cleanly_on_sigint() -> None:
    proc = await forked.spawn(
        "sandbox", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        prog=str(VOXFLOW),
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 90)).decode()
        m = re.search(r"ARI at (http://127\.0\.0\.1:(\d+))/ari", line)
        assert m, line
        base = m.group(1)
        async with aiohttp.ClientSession(headers=AUTH) as s:
            # curl -u voxflow:voxflow http://127.0.0.1:8088/ari/asterisk/info
            async with s.get(f"{base}/ari/asterisk/info") as r:
                assert r.status == 200 and (await r.json())["system"]["version"] == "22.10.1"
            # The README's websocket client.
            url = f"ws://127.0.0.1:{m.group(2)}/ari/events?app=voxflow&api_key=voxflow:voxflow"
            async with aiohttp.ClientSession() as plain, plain.ws_connect(url) as ws:
                # curl -X POST .../sandbox/calls -H 'Content-Type: application/json' -d '{...}'
                async with s.post(
                    f"{base}/sandbox/calls",
                    headers={**AUTH, "Content-Type": "application/json"},
                    data='{"from": "+15551230000", "to": "100", "app": "voxflow"}',
                ) as r:
                    assert r.status == 201
                    cid = (await r.json())["id"]
                async with s.post(f"{base}/ari/channels/{cid}/answer") as r:
                    assert r.status == 204
                async with s.post(f"{base}/ari/channels/{cid}/play?media=sound:hello-world") as r:
                    assert r.status == 201
                # curl ... /press -d '{"digits": "1#"}' (curl's default form content type)
                async with s.post(
                    f"{base}/sandbox/calls/{cid}/press",
                    headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
                    data='{"digits": "1#"}',
                ) as r:
                    assert r.status == 204
                types: list[str] = []
                while types.count("ChannelDtmfReceived") < 2:
                    msg = await ws.receive(timeout=30)
                    types.append(msg.json()["type"])
                assert types[:3] == ["StasisStart", "ChannelStateChange", "PlaybackStarted"]
                async with s.get(f"{base}/sandbox/calls/{cid}") as r:
                    report = await r.json()
                assert report["id"] == cid
                assert [e["digit"] for e in report["experience"] if e["type"] == "pressed"] == [
                    "1", "#"
                ]  # fmt: skip
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), 60)
        err = (await proc.stderr.read()).decode()
        assert code == 0, err
        assert "Traceback" not in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
