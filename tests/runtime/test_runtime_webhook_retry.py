"""Webhook retries (issue 20): a failed delivery is tried again with the same body and
``Idempotency-Key`` when the failure may pass (connection error, 5xx, 429 with its
``Retry-After``), with exponential backoff and jitter, bounded in tries and time; a final
failure is one clear log line and a counter, never the URL's credentials, path or query.
Against local HTTP servers on 127.0.0.1; the waits are recorded by a fake ``sleep``."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from voxflow.runtime.webhook_retry import Attempt, RetryPolicy, retry_after
from voxflow.runtime.webhooks import SIGNATURE_HEADER, WebhookSender, verify

SECRET = "retry-secret"
FAST = RetryPolicy(attempts=5, initial=0.5, factor=2.0, max_delay=4.0, max_elapsed=60.0)


@dataclass
class Receiver:
    """Answers ``answers[i]`` to the i-th POST (then 204); keeps what it processed once per
    ``Idempotency-Key`` (a receiver that drops repeats)."""

    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    tries: list[tuple[str, bytes]] = field(default_factory=list)
    processed: dict[str, bytes] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        key = request.headers.get("Idempotency-Key", "")
        assert verify(SECRET, body, request.headers.get(SIGNATURE_HEADER))
        self.tries.append((key, body))
        if len(self.tries) <= len(self.answers):
            status, headers = self.answers[len(self.tries) - 1]
            return web.Response(status=status, headers=headers)
        self.processed.setdefault(key, body)
        return web.Response(status=204)


@asynccontextmanager
async def serving(rx: Receiver, port: int = 0) -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_post("/hooks{tail:.*}", rx.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


def recorder() -> tuple[list[float], Callable[[float], asyncio.Future[None]]]:
    """A fake ``sleep`` that records its waits and returns at once."""
    waits: list[float] = []

    def sleep(seconds: float) -> asyncio.Future[None]:
        waits.append(seconds)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    return waits, sleep


async def test_a_receiver_failing_twice_gets_the_event_at_the_third_try_with_one_key() -> None:
    rx = Receiver(answers=[(503, {}), (500, {})])
    waits, sleep = recorder()
    async with serving(rx) as port:
        sender = WebhookSender(
            f"http://127.0.0.1:{port}/hooks", SECRET, retry=FAST, sleep=sleep, rand=lambda: 0.0
        )
        sender.emit("call.ended", call_id="c1", flow="f", metadata={}, key="c1:call.ended")
        await sender.flush(10)
        await sender.aclose()
    assert [k for k, _ in rx.tries] == ["c1:call.ended"] * 3
    assert len({b for _, b in rx.tries}) == 1  # the same body each time
    assert list(rx.processed) == ["c1:call.ended"]
    assert (sender.sent, sender.retried, sender.failed) == (1, 2, 0)
    assert waits == [0.25, 0.5]  # 0.5 x 2^(n-1), jitter factor at its low end (0.5)


async def test_a_refused_connection_is_retried_until_the_receiver_listens() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    rx = Receiver()
    started: list[int] = []
    async with AsyncExitStack() as stack:

        async def sleep(seconds: float) -> None:
            if not started:  # the receiver comes up during the first wait
                started.append(await stack.enter_async_context(serving(rx, port)))

        sender = WebhookSender(f"http://127.0.0.1:{port}/hooks", SECRET, retry=FAST, sleep=sleep)
        assert await sender.deliver("call.ended", "c2", b'{"n":2}', "c2:call.ended")
        await sender.aclose()
    assert rx.processed == {"c2:call.ended": b'{"n":2}'}
    assert (sender.sent, sender.retried, sender.failed) == (1, 1, 0)


async def test_a_429_waits_as_long_as_its_retry_after_says() -> None:
    rx = Receiver(answers=[(429, {"Retry-After": "3"})])
    waits, sleep = recorder()
    async with serving(rx) as port:
        sender = WebhookSender(f"http://127.0.0.1:{port}/hooks", SECRET, retry=FAST, sleep=sleep)
        assert await sender.deliver("call.ended", "c3", b"{}", "c3:call.ended")
        await sender.aclose()
    assert waits == [3.0] and len(rx.tries) == 2


async def test_a_retry_after_past_the_time_budget_gives_up_at_once() -> None:
    rx = Receiver(answers=[(429, {"Retry-After": "3600"})])
    waits, sleep = recorder()
    async with serving(rx) as port:
        sender = WebhookSender(f"http://127.0.0.1:{port}/hooks", SECRET, retry=FAST, sleep=sleep)
        assert not await sender.deliver("call.ended", "c4", b"{}", "c4:call.ended")
        await sender.aclose()
    assert waits == [] and len(rx.tries) == 1 and sender.failed == 1


@pytest.mark.parametrize("status", [400, 401, 404, 410])
async def test_a_4xx_answer_is_final(status: int, caplog: pytest.LogCaptureFixture) -> None:
    rx = Receiver(answers=[(status, {})] * 3)
    waits, sleep = recorder()
    async with serving(rx) as port:
        sender = WebhookSender(f"http://127.0.0.1:{port}/hooks", SECRET, retry=FAST, sleep=sleep)
        with caplog.at_level(logging.INFO, logger="voxflow.runtime.webhooks"):
            assert not await sender.deliver("call.ended", "c5", b"{}", "c5:call.ended")
        await sender.aclose()
    assert waits == [] and len(rx.tries) == 1
    assert (sender.sent, sender.retried, sender.failed) == (0, 0, 1)
    assert f"HTTP {status} (1 try in" in caplog.text and "not retryable" in caplog.text


async def test_an_always_failing_receiver_is_given_up_with_one_clear_line_and_no_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rx = Receiver(answers=[(502, {})] * 100)
    waits, sleep = recorder()
    policy = RetryPolicy(attempts=4, initial=0.5, max_elapsed=60.0)
    async with serving(rx) as port:
        url = f"http://hookuser:hookpass@127.0.0.1:{port}/hooks/p4th?token=tok3n"
        sender = WebhookSender(url, SECRET, retry=policy, sleep=sleep)
        with caplog.at_level(logging.DEBUG):
            assert not await sender.deliver("call.ended", "c6", b'{"pin":"1234"}', "c6:k")
        await sender.aclose()
    assert len(rx.tries) == 4 and len(waits) == 3
    assert all(0.5 * 0.5 * 2**i <= w < 0.5 * 2**i for i, w in enumerate(waits))
    assert (sender.sent, sender.retried, sender.failed) == (0, 3, 1)
    [final] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    where = f"http://127.0.0.1:{port}"
    assert final.getMessage().startswith(
        f"webhook call.ended for call c6 to {where} not delivered: HTTP 502 (4 tries"
    )
    for secret in ("hookuser", "hookpass", "p4th", "tok3n", SECRET, "1234"):
        assert secret not in caplog.text


async def test_teardown_does_not_wait_for_a_retrying_delivery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rx = Receiver(answers=[(503, {})] * 100)
    async with serving(rx) as port:
        sender = WebhookSender(
            f"http://127.0.0.1:{port}/hooks", SECRET, retry=RetryPolicy(initial=30.0)
        )
        sender.emit("call.ended", call_id="c7", flow="f", metadata={}, key="c7:call.ended")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while not rx.tries:
            await asyncio.sleep(0.01)
            assert loop.time() - t0 < 10, "the first try never came"
        t1 = loop.time()
        await sender.aclose(timeout=0.2)  # a worker's drain: bounded, the rest cancelled
        assert loop.time() - t1 < 5
    assert sender.failed == 0 and "1 webhook delivery still trying" in caplog.text


def test_the_policy_bounds_tries_and_time_and_retries_only_what_may_pass() -> None:
    p = RetryPolicy(attempts=5, initial=1.0, factor=2.0, max_delay=3.0, max_elapsed=10.0)
    err = Attempt(503, "HTTP 503")
    assert [p.wait(n, err, 0.0, lambda: 0.999999) for n in (1, 2, 3)] == pytest.approx(
        [1.0, 2.0, 3.0], abs=1e-5
    )  # capped at max_delay
    assert p.wait(5, err, 0.0, lambda: 0.0) is None  # tries used up
    assert p.wait(1, err, 9.8, lambda: 0.0) is None  # the wait would end past max_elapsed
    assert p.wait(1, Attempt(0, "refused", connection=True), 0.0, lambda: 0.0) == 0.5
    assert p.wait(1, Attempt(408, "HTTP 408"), 0.0, lambda: 0.0) == 0.5
    assert p.wait(1, Attempt(403, "HTTP 403"), 0.0, lambda: 0.0) is None
    assert p.wait(1, Attempt(429, "HTTP 429", retry_after=7.0), 0.0, lambda: 0.0) == 7.0
    assert RetryPolicy(attempts=1).wait(1, err, 0.0, lambda: 0.0) is None
    with pytest.raises(ValueError, match="invalid webhook retry policy"):
        RetryPolicy(attempts=0)


def test_retry_after_reads_seconds_and_http_dates_for_429_and_503_only() -> None:
    now = 1_767_225_600.0  # Thu, 01 Jan 2026 00:00:00 GMT
    assert retry_after(429, "12", lambda: now) == 12.0
    assert retry_after(503, "Thu, 01 Jan 2026 00:00:30 GMT", lambda: now) == 30.0
    assert retry_after(503, "Wed, 31 Dec 2025 23:00:00 GMT", lambda: now) == 0.0
    assert retry_after(500, "12") is None
    assert retry_after(429, "soon") is None and retry_after(429, None) is None


async def test_deliveries_waiting_for_a_retry_are_bounded() -> None:
    rx = Receiver(answers=[(503, {})] * 100)
    release = asyncio.Event()

    async def sleep(seconds: float) -> None:
        await release.wait()  # every retry waits until the test lets them go

    policy = RetryPolicy(attempts=3, initial=0.5, max_waiting=2)
    async with serving(rx) as port:
        sender = WebhookSender(f"http://127.0.0.1:{port}/hooks", SECRET, retry=policy, sleep=sleep)
        for i in range(4):
            sender.emit("call.ended", call_id=f"c{i}", flow="f", metadata={}, key=f"c{i}:k")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while sender.failed < 2:  # two wait for their retry, the two past the bound give up
            assert loop.time() < deadline, (sender.waiting, sender.failed)
            await asyncio.sleep(0.01)
        assert sender.waiting == 2 and sender.retried == 2
        release.set()
        await sender.flush(10)
        await sender.aclose()
    assert sender.waiting == 0 and sender.failed == 4 and len(rx.tries) == 2 + 2 * 3


async def test_a_2xx_with_an_endless_body_is_delivered_once_not_timed_out() -> None:
    """The sender read the whole answer: a receiver that accepted the event (200) and then
    streamed a body for longer than the timeout made the try a timeout, so the event was sent
    again and again (a download URL taken for the webhook held 5 s and memory each try). Only
    the status matters: at most 64 KiB of the body is read."""
    tries: list[bytes] = []

    async def endless(request: web.Request) -> web.StreamResponse:
        tries.append(await request.read())
        resp = web.StreamResponse(status=200)
        await resp.prepare(request)
        chunk = b"x" * 65536
        try:
            while True:  # until the sender hangs up
                await resp.write(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    app = web.Application()
    app.router.add_post("/hooks", endless)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = int(runner.addresses[0][1])
    waits, sleep = recorder()
    try:
        sender = WebhookSender(
            f"http://127.0.0.1:{port}/hooks", SECRET, timeout=1.0, retry=FAST, sleep=sleep
        )
        sender.emit("call.ended", call_id="c1", flow="f", metadata={}, key="c1:call.ended")
        await sender.flush(10)
        await sender.aclose()
    finally:
        await runner.cleanup()
    assert len(tries) == 1 and waits == []
    assert (sender.sent, sender.retried, sender.failed) == (1, 0, 0)
