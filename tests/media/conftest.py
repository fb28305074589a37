"""Fixtures of the media tests: the sandbox rig (``media_rig.open_rig``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from media_rig import Rig, open_rig


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with open_rig() as r:
        yield r
