"""Reconnect backoff: a doubling ceiling capped at the maximum, with equal jitter."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxflow.ari.events import backoff_delay, events_url
from voxflow.errors import ConfigError


# Correctness, not speed: a loaded CI machine (2 cores, -n 4) stalls single examples past
# hypothesis's 200 ms deadline ("Unreliable test timings"), so no deadline.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    initial=st.floats(min_value=0.001, max_value=5.0),
    maximum=st.floats(min_value=0.001, max_value=120.0),
    seed=st.integers(),
)
def test_delay_stays_within_half_ceiling_and_ceiling(
    attempt: int, initial: float, maximum: float, seed: int
) -> None:
    ceiling = min(maximum, initial * 2 ** min(attempt, 30))
    delay = backoff_delay(attempt, initial=initial, maximum=maximum, rng=random.Random(seed))
    assert ceiling / 2 <= delay <= ceiling


def test_ceiling_doubles_then_caps() -> None:
    rng = random.Random(7)
    highs = [
        max(backoff_delay(a, initial=0.5, maximum=30.0, rng=rng) for _ in range(200))
        for a in range(10)
    ]
    # the largest of many draws approaches each attempt's ceiling: 0.5, 1, 2, ... capped at 30
    for attempt, high in enumerate(highs):
        ceiling = min(30.0, 0.5 * 2**attempt)
        assert 0.9 * ceiling <= high <= ceiling
    assert highs[-1] <= 30.0 and highs[7] >= 27.0


def test_jitter_spreads_clients_and_is_reproducible_with_a_seed() -> None:
    a = [backoff_delay(3, initial=0.5, maximum=30.0, rng=random.Random(1)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    rng = random.Random(2)
    draws = {round(backoff_delay(3, initial=0.5, maximum=30.0, rng=rng), 6) for _ in range(50)}
    assert len(draws) > 40  # not a fixed delay: many clients do not reconnect in lockstep


def test_huge_attempt_numbers_do_not_overflow() -> None:
    delay = backoff_delay(10**9, initial=0.5, maximum=30.0, rng=random.Random(0))
    assert 15.0 <= delay <= 30.0


def test_events_url_follows_the_rest_scheme() -> None:
    assert events_url("http://pbx:8088/ari") == "ws://pbx:8088/ari/events"
    assert events_url("https://pbx.example:8089/ari/") == "wss://pbx.example:8089/ari/events"
    assert events_url("https://u:secret@pbx/ari") == "wss://pbx/ari/events"
    with pytest.raises(ConfigError):
        events_url("ftp://pbx/ari")
