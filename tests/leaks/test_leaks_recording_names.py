"""Issue 14 item 9: the sandbox's record endpoint stays inside its recordings directory as
Asterisk's does (``<dir>/<name>``, ``ast_safe_mkdir``: 400 "Recording name invalid" outside), and
``safe_recording_name`` matches the whole name (no trailing newline)."""

from __future__ import annotations

import base64
from pathlib import Path

import aiohttp
import pytest

from voxflow.sandbox import Sandbox
from voxflow.telephony.recording import safe_recording_name


async def _record(sb: Sandbox, session: aiohttp.ClientSession, cid: str, name: str) -> int:
    token = base64.b64encode(f"{sb.user}:{sb.password}".encode()).decode()
    async with session.post(
        f"{sb.ari_url}/channels/{cid}/record",
        params={"name": name, "format": "wav", "maxDurationSeconds": "1"},
        headers={"Authorization": f"Basic {token}"},
    ) as r:
        return r.status


async def test_record_names_cannot_leave_the_recordings_directory(tmp_path: Path) -> None:
    recdir = tmp_path / "rec"
    (tmp_path / "elsewhere").mkdir()
    (recdir / "sub").mkdir(parents=True)
    (recdir / "out").symlink_to(tmp_path / "elsewhere")
    async with Sandbox(port=0, recordings_dir=recdir, preload_sounds=False) as sb:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(sb.events_url("voxflow"))
            call = await sb.place_call(to="100")
            for name in ("../../escaped", "../escaped", "out/escaped", "sub/../../escaped"):
                assert await _record(sb, session, call.id, name) == 400, name
            assert await _record(sb, session, call.id, "/abs/inside") == 201  # <dir>//abs/...
            assert await _record(sb, session, call.id, "sub/fine") == 201
            await call.hangup()
            await ws.close()
    assert _wavs(tmp_path) == ["rec/abs/inside.wav", "rec/sub/fine.wav"]


def _wavs(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.wav"))


@pytest.mark.parametrize("name", ["msg\n", "msg\nx", "../x", "/x", "", "a" * 129, ".hidden"])
def test_safe_recording_name_refuses(name: str) -> None:
    with pytest.raises(ValueError, match="invalid recording name"):
        safe_recording_name(name)


def test_safe_recording_name_accepts_plain_names() -> None:
    assert safe_recording_name("vm-2024_01.a") == "vm-2024_01.a"
