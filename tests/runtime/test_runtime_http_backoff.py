"""The http step's retry waits: ``backoff`` doubled per retry, capped, with equal jitter; at
most MAX_RETRIES retries whatever a request asks."""

from __future__ import annotations

import random

import pytest

from voxflow.runtime import http_step
from voxflow.runtime.http_step import (
    BACKOFF_CAP,
    MAX_RETRIES,
    HttpRequest,
    HttpResult,
    backoff_delay,
    with_retries,
)


def test_the_wait_doubles_within_its_upper_half() -> None:
    rng = random.Random(1)
    for retry, full in ((1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6)):
        waits = [backoff_delay(retry, 0.2, rng) for _ in range(200)]
        assert min(waits) >= full / 2 and max(waits) <= full
        assert max(waits) - min(waits) > full / 4  # spread: not one fixed instant


def test_the_wait_is_capped() -> None:
    rng = random.Random(2)
    assert all(BACKOFF_CAP / 2 <= backoff_delay(9, 5.0, rng) <= BACKOFF_CAP for _ in range(50))


def test_the_same_seed_gives_the_same_waits() -> None:
    a = [backoff_delay(n, 1.0, random.Random("c1 GET u")) for n in (1, 2, 3)]
    b = [backoff_delay(n, 1.0, random.Random("c1 GET u")) for n in (1, 2, 3)]
    assert a == b


async def test_retries_are_bounded_and_each_wait_is_the_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(http_step.asyncio, "sleep", sleep)
    calls = 0

    async def attempt() -> HttpResult:
        nonlocal calls
        calls += 1
        return HttpResult("error", 503, error="HTTP 503", retryable=True)

    req = HttpRequest("GET", "http://x", retries=50, backoff=0.1)
    result = await with_retries(req, attempt, rng=random.Random(3))
    assert calls == result.attempts == 1 + MAX_RETRIES
    rng = random.Random(3)
    assert slept == [backoff_delay(n, 0.1, rng) for n in range(1, 1 + MAX_RETRIES)]
