"""Recording beep, DTMF through bridges (absorbDTMF), muted bridge members, snoop whisper."""

from __future__ import annotations

import asyncio
import io
import wave

import numpy as np
from conftest import RawAri

from voxflow.sandbox import Sandbox, SimCall


def _peak_hz(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.fft.rfftfreq(len(pcm), 1 / 8000)[int(np.argmax(spectrum))])


def _tone(hz: float, seconds: float) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000
    return (np.sin(2 * np.pi * hz * t) * 8000).astype("<i2").tobytes()


async def _answered(sandbox: Sandbox, ari: RawAri, number: str) -> SimCall:
    call = await sandbox.place_call(from_=number)
    await ari.next("StasisStart")
    await ari.req("POST", f"/channels/{call.id}/answer")
    return call


async def test_record_beep_is_heard_and_not_recorded(sandbox: Sandbox, ari: RawAri) -> None:
    call = await _answered(sandbox, ari, "100")
    plain = await _answered(sandbox, ari, "101")
    for c, beep in ((call, "true"), (plain, "false")):
        status, _ = await ari.req("POST", f"/channels/{c.id}/record", name=f"r{c.from_}",
                                  format="wav", maxDurationSeconds="1", beep=beep)  # fmt: skip
        assert status == 201
    await asyncio.gather(call.say_audio(_tone(300, 1.6)), plain.say_audio(_tone(300, 1.6)))
    heard = np.frombuffer(call.heard_audio(), "<i2")
    assert len(heard) and abs(_peak_hz(heard) - 1000) < 20  # the beep, heard by the caller
    assert not plain.heard_audio()  # no beep asked, nothing heard
    for c in (call, plain):
        async with ari.session.get(
            f"{sandbox.ari_url}/recordings/stored/r{c.from_}/file", headers=ari.headers
        ) as r:
            with wave.open(io.BytesIO(await r.read())) as w:
                pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        assert len(pcm) == 8000  # maxDurationSeconds of the caller, the beep not included
        assert abs(_peak_hz(pcm) - 300) < 20


async def _bridged(sandbox: Sandbox, ari: RawAri, **opts: str) -> tuple[SimCall, SimCall]:
    a = await _answered(sandbox, ari, "200")
    b = await _answered(sandbox, ari, "201")
    _, br = await ari.req("POST", "/bridges", type="mixing")
    await ari.req("POST", f"/bridges/{br['id']}/addChannel", channel=a.id, **opts)
    await ari.req("POST", f"/bridges/{br['id']}/addChannel", channel=b.id)
    return a, b


async def test_dtmf_passes_through_a_bridge_unless_absorbed(sandbox: Sandbox, ari: RawAri) -> None:
    a, b = await _bridged(sandbox, ari)
    await a.press("5")
    ev = await ari.next("ChannelDtmfReceived")
    assert (ev["channel"]["id"], ev["digit"]) == (a.id, "5")
    assert [e["digit"] for e in b.experience() if e["type"] == "dtmf"] == ["5"]
    c, d = await _bridged(sandbox, ari, absorbDTMF="true")
    await c.press("7")
    ev = await ari.next("ChannelDtmfReceived")
    assert (ev["channel"]["id"], ev["digit"]) == (c.id, "7")  # the app still sees it
    assert not [e for e in d.experience() if e["type"] == "dtmf"]  # the bridge does not


async def test_muted_member_is_not_mixed(sandbox: Sandbox, ari: RawAri) -> None:
    a, b = await _bridged(sandbox, ari, mute="true")
    await a.say_audio(_tone(440, 0.5))
    await b.say_audio(_tone(300, 0.5))
    assert not b.heard_audio()  # a is muted towards the bridge
    heard = np.frombuffer(a.heard_audio(), "<i2")
    assert abs(_peak_hz(heard) - 300) < 20  # but still hears b


async def test_snoop_whisper_reaches_the_spied_channel(sandbox: Sandbox, ari: RawAri) -> None:
    call = await _answered(sandbox, ari, "300")
    status, snoop = await ari.req("POST", f"/channels/{call.id}/snoop", app="voxflow",
                                  whisper="out", snoopId="snoop-1")  # fmt: skip
    assert status == 200
    await ari.next("StasisStart")
    await ari.req("POST", "/channels/snoop-1/play", media="tone:1000/400")
    await call.wait_for("audio", timeout=10)
    await asyncio.sleep(0.3)
    heard = np.frombuffer(call.heard_audio(), "<i2")
    assert abs(_peak_hz(heard) - 1000) < 20
    await ari.req("DELETE", "/channels/snoop-1")
    await asyncio.sleep(0.1)
    assert call.id not in sandbox.pbx.whisperers
    assert snoop["name"].startswith(f"Snoop/{call.id}-")
