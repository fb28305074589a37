"""Fixtures of the AI tests: a local OpenAI-compatible server per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from ai_fakes import FakeOpenAI


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    server = await FakeOpenAI().start()
    try:
        yield server
    finally:
        await server.close()
