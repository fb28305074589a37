"""Issue 14 item 4 (every wait is bounded), at the end of a call and at shutdown.

``bench/soak.py --calls 3000`` sometimes never finished, its event loop idle: an exception in the
soak's callers unwound the run while calls were up, ``asyncio.run`` cancelled every task, and
each cancelled call handler's ``finally`` then waited for its hang-up to be confirmed, a
retry-until-gone loop against an Asterisk that no longer answered. Nothing cancels a wait that
starts in a ``finally`` after the one cancellation, so the process hung. These tests make
Asterisk (the sandbox, over real HTTP) refuse every hang-up and check that the handler, the
server's drain and ``asyncio.run`` itself end within bounds, while the call stays registered
(never forgotten while its channel is Up) and its hang-up keeps being retried until it works.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import warnings
from pathlib import Path

import pytest
from _leaks_kit import serving_text, until

from voxflow.runtime.config import Settings
from voxflow.sandbox import Sandbox
from voxflow.telephony.app import VoxtraApp
from voxflow.telephony.session import CallSession

WAIT_FLOW = """\
flow leakwait "a menu that waits":
    answers "100"

state start:
    answer
    menu "Press 1." timeout 60s:
        1 -> done
        on noinput, nomatch -> retry
        on exhausted -> done

state done:
    hangup "done"
"""

REFUSE_HANGUPS = {"method": "DELETE", "path": r"^/channels/[^/]+$"}


async def test_a_cancelled_handler_ends_while_asterisk_refuses_the_hangup() -> None:
    async with Sandbox(port=0, preload_sounds=False) as sb:
        app = VoxtraApp(
            sb.ari_url, sb.user, sb.password, retry_initial=0.05, retry_max=0.2, handler_grace=0.5
        )
        handlers: list[asyncio.Task[object]] = []

        @app.default()
        async def handler(call: CallSession) -> None:
            await call.answer()
            task = asyncio.current_task()
            assert task is not None
            handlers.append(task)
            await asyncio.Event().wait()  # a flow step in progress

        await app.start()
        try:
            sim = await sb.place_call(to="100")
            await until(lambda: bool(handlers), 10, "handler running")
            sb.faults.fail_next_requests(10**6, 503, **REFUSE_HANGUPS)
            handlers[0].cancel()  # what asyncio.run does to every task when the program stops
            done, _ = await asyncio.wait(handlers, timeout=5)
            assert done, "the cancelled handler waited for ever for its hang-up"
            # not forgotten: the channel is Up, so the session stays and the hang-up is retried
            assert sim.id in app.sessions and sim.id in sb.pbx.channels
            sb.faults.clear()
            await until(lambda: not app.sessions, 10, "hang-up retried until it worked")
            assert await sim.wait_hangup(5) == 16
        finally:
            sb.faults.clear()
            await app.close()


async def test_drain_ends_while_asterisk_refuses_the_hangups(tmp_path: Path) -> None:
    settings = Settings(grace_period=0.2)
    app = {"retry_initial": 0.05, "retry_max": 0.2, "handler_grace": 0.5}
    async with serving_text(tmp_path, WAIT_FLOW, app=app, settings=settings) as s:
        sims = [await s.sb.place_call(from_=f"+1555010{i}", to="100") for i in range(3)]
        await until(lambda: len(s.server.drivers) == 3, 10, "three calls in the menu")
        s.sb.faults.fail_next_requests(10**6, 503, **REFUSE_HANGUPS)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.wait_for(s.server.drain(), 15)
        assert loop.time() - t0 < 8  # grace 0.2 s + at most 5 s for the hang-ups, not for ever
        assert all(sim.id in s.app.sessions for sim in sims)  # still Up: still registered
        s.sb.faults.clear()
        await until(lambda: not s.app.sessions, 10, "hang-ups retried until they worked")


def test_asyncio_run_returns_when_the_program_fails_with_calls_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The soak's hang, end to end: the main coroutine raises while calls are in progress and
    Asterisk refuses every hang-up; ``asyncio.run`` must return (with the error), not hang."""
    for logger in ("voxflow", "asyncio"):  # records (their exceptions' frames) hold the app
        caplog.set_level(logging.CRITICAL, logger)

    class Boom(Exception):
        pass

    async def main() -> None:
        async with Sandbox(port=0, preload_sounds=False) as sb:
            app = VoxtraApp(
                sb.ari_url, sb.user, sb.password, retry_initial=0.05, retry_max=0.2,
                handler_grace=0.5,
            )  # fmt: skip
            running: list[str] = []

            @app.default()
            async def handler(call: CallSession) -> None:
                await call.answer()
                running.append(call.id)
                await asyncio.Event().wait()

            await app.start()
            for i in range(3):
                await sb.place_call(from_=f"+1555020{i}", to="100")
            await until(lambda: len(running) == 3, 10, "three handlers running")
            sb.faults.fail_next_requests(10**6, 503, **REFUSE_HANGUPS)
            raise Boom  # the app is never closed: asyncio.run cancels everything

    outcome: list[str] = []

    def run() -> None:
        try:
            asyncio.run(main())
            outcome.append("returned")
        except BaseException as exc:  # the thread reports what ended the run (by name only:
            outcome.append(type(exc).__name__)  # its traceback holds the unclosed app)

    thread = threading.Thread(target=run, daemon=True)  # daemon: a hang must not block pytest
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "asyncio.run never returned (a wait in a finally never ended)"
    assert outcome == ["Boom"]
    with warnings.catch_warnings():  # the crashed program never closed its REST client
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
