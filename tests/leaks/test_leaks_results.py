"""Issue 14 item 5: FlowServer.results is bounded (the newest calls' outcomes are kept)."""

from __future__ import annotations

from pathlib import Path

from _leaks_kit import clean, serving_text, until

from voxflow.runtime.events import End

SHORT_FLOW = """\
flow short "answer and hang up":
    answers "100"

state start:
    answer
    hangup "done"
"""


async def test_results_keep_only_the_newest_calls(tmp_path: Path) -> None:
    async with serving_text(tmp_path, SHORT_FLOW, server={"results_kept": 5}) as s:
        ids = []
        for i in range(20):
            call = await s.sb.place_call(from_=f"+1555000{i:02d}", to="100")
            await call.wait_hangup(10)
            ids.append(call.id)
        await until(lambda: s.server.results.total == 20 and clean(s), 10, "20 calls done")
        assert len(s.server.results) == 5
        assert list(s.server.results) == ids[-5:]
        assert all(v == End("completed", "done") for v in s.server.results.values())
