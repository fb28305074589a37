"""retry_with_deadlines, again_if_late: each timeout doubles the next try's deadline, up to
DEADLINE_MAX."""

from __future__ import annotations

import pytest

from voxflow.ari.cleanup import DEADLINE_MAX, Backoff, again_if_late, retry_with_deadlines
from voxflow.errors import AriServerError, AriTimeoutError


async def _no_sleep(_: float) -> None:
    return None


async def test_each_timeout_doubles_the_deadline_up_to_the_cap() -> None:
    seen: list[float | None] = []

    async def op(deadline: float | None) -> None:
        seen.append(deadline)
        if len(seen) < 7:
            raise AriTimeoutError("late")

    ok = await retry_with_deadlines(
        op, "listing", base=10.0, backoff=Backoff(attempts=8), sleep=_no_sleep
    )
    assert ok
    assert seen == [None, 20.0, 40.0, 80.0, DEADLINE_MAX, DEADLINE_MAX, DEADLINE_MAX]


async def test_a_5xx_keeps_the_deadline_and_the_attempts_stay_bounded() -> None:
    seen: list[float | None] = []

    async def op(deadline: float | None) -> None:
        seen.append(deadline)
        raise AriServerError(503, "busy") if len(seen) == 1 else AriTimeoutError("late")

    ok = await retry_with_deadlines(
        op, "listing", base=1.0, backoff=Backoff(attempts=3), sleep=_no_sleep
    )
    assert not ok
    assert seen == [None, None, 2.0]


async def test_again_if_late_doubles_on_timeouts_and_raises_one_at_the_cap() -> None:
    seen: list[float | None] = []

    async def op(deadline: float | None) -> str:
        seen.append(deadline)
        raise AriTimeoutError("late")

    with pytest.raises(AriTimeoutError):
        await again_if_late(op, "setting X", base=30.0)
    assert seen == [None, 60.0, DEADLINE_MAX]


async def test_again_if_late_does_not_repeat_other_errors() -> None:
    calls = 0

    async def op(deadline: float | None) -> str:
        nonlocal calls
        calls += 1
        raise AriServerError(500, "Failed")

    with pytest.raises(AriServerError):
        await again_if_late(op, "setting X", base=1.0)
    assert calls == 1
