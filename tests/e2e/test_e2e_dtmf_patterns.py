"""DTMF patterns and unlimited menu retries over real ARI on the sandbox (flows/main_ivr.flow):
an extension typed as three keys is dialled at its third key, wrong keys replay the menu."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _e2e_kit import fast_flows, serving

from voxflow.runtime.events import End


async def test_an_extension_pattern_is_dialled_with_the_keys_pressed(tmp_path: Path) -> None:
    async with serving([fast_flows(tmp_path) / "main_ivr.flow"]) as env:
        call = await env.call("100")
        await env.wait_line(call, "For sales", 20)
        for key in "7777412":  # four wrong keys (no retry cap), then extension 412
            await call.press(key)
            await asyncio.sleep(0.3 if key == "7" else 0.1)
        far = await env.sb.next_outbound(timeout=20)
        assert far.to == "412"
        await call.wait_for("bridge", 20)
        await far.hangup()
        assert await env.result(call) == End("completed", "normal")
        assert env.states(call) == ["main_menu", "extension", "goodbye"]
        assert env.said(call).count("Sorry, I didn't understand.") == 4
