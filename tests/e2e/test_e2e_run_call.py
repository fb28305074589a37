"""``voxflow run FLOW --call ENDPOINT``: an outbound flow originated from the CLI, on an ARI
server (the sandbox standing in for Asterisk, over real ARI) and on the embedded sandbox."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import forked
import pytest

from voxflow.sandbox.server import Sandbox

FLOWS = Path(__file__).resolve().parents[2] / "flows"
EXE = Path(sys.executable).with_name("voxflow")


async def _run(*args: str) -> tuple[int, str, str]:
    proc = await forked.spawn(
        "run", str(FLOWS / "appointment_reminder.flow"), "--no-audio", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        prog=str(EXE),
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        if proc.returncode is None:  # timed out: never leave the run behind
            proc.kill()
            await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_call_originates_on_an_ari_server_with_metadata() -> None:
    async with Sandbox(port=0) as sb:
        args = [
            "--ari-url", sb.ari_url, "--ari-user", sb.user, "--ari-password", sb.password,
            "--call", "PJSIP/patient", "--caller-id", "Acme Clinic <100>",
            "--meta", "patient_name=Ann", "--meta", "appointment_time=on Friday at 3pm",
        ]  # fmt: skip
        run = asyncio.ensure_future(_run(*args))
        patient = await sb.next_outbound(timeout=60)
        await patient.wait_for("answered", 30)
        await asyncio.sleep(0.5)  # --no-audio: the question's gather starts at once
        await patient.press("1")  # yes
        code, out, err = await run
    assert patient.to == "patient"
    assert code == 0, out + err
    assert "Hello Ann, this is Acme Clinic with a reminder of your appointment on Friday" in out
    assert "outcome: completed" in out


async def test_call_on_the_embedded_sandbox_follows_the_callee_script(tmp_path: Path) -> None:
    script = tmp_path / "callee.txt"
    script.write_text('wait for "Will you be able to attend" 20s\npress 2\nwait 1s\nhangup\n')
    code, out, err = await _run(
        "--call", "PJSIP/patient", "--meta", "patient_name=Bo", "--caller", str(script)
    )
    assert code == 0, out + err
    assert "Hello Bo" in out and "-> reschedule" in out


async def test_the_callee_hangs_up_when_its_script_ends(tmp_path: Path) -> None:
    script = tmp_path / "callee.txt"
    script.write_text('wait for "Will you be able to attend" 20s\npress 2\nwait 1s\n')
    code, out, err = await _run("--call", "PJSIP/patient", "--caller", str(script))
    assert code == 0, out + err  # bridged to the front desk: ended by the callee hanging up
    assert "dial PJSIP/frontdesk: answered, bridged" in out
    assert "outcome: caller_hangup" in out


@pytest.mark.long
async def test_a_failed_callee_script_fails_the_run(tmp_path: Path) -> None:
    script = tmp_path / "callee.txt"
    script.write_text('wait for "Will you be able to attend" 20s\nexpect "never said"\n')
    code, out, err = await _run("--call", "PJSIP/patient", "--caller", str(script))
    assert code == 1, out + err
    assert "line 2: did not hear 'never said'" in err
    script.write_text('wait for "Will you be able to attend" 20s\npress 2\nwait 2s\nhangup\n'
                      'expect "never said"\n')  # fmt: skip
    code, out, err = await _run("--call", "PJSIP/patient", "--caller", str(script))
    assert code == 1 and "line 5: did not hear 'never said'" in err, out + err


async def test_call_with_bad_metadata_is_a_usage_error() -> None:
    code, _, err = await _run("--call", "PJSIP/patient", "--meta", "not-a-pair")
    assert code == 2 and "--meta must look like key=value" in err
