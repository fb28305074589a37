"""Issue 14 item 10 (sandbox): credentials are compared in constant time (hmac.compare_digest),
for Basic auth and ``api_key`` alike, and still accept exactly the right ones."""

from __future__ import annotations

import base64
import hmac

import aiohttp
import pytest

from voxflow.sandbox import Sandbox


async def test_credentials_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    async with Sandbox(port=0, preload_sounds=False) as sb, aiohttp.ClientSession() as s:
        good = base64.b64encode(f"{sb.user}:{sb.password}".encode()).decode()
        bad = base64.b64encode(f"{sb.user}:{sb.password}x".encode()).decode()
        url = f"{sb.ari_url}/asterisk/info"
        statuses = []
        for headers, params in (
            ({"Authorization": f"Basic {good}"}, {}),
            ({"Authorization": f"Basic {bad}"}, {}),
            ({}, {"api_key": f"{sb.user}:{sb.password}"}),
            ({}, {"api_key": f"{sb.user}:nope"}),
        ):
            async with s.get(url, headers=headers, params=params) as r:
                statuses.append(r.status)
    assert statuses == [200, 401, 200, 401]
    expected = f"{sb.user}:{sb.password}".encode()
    assert len(seen) == 4 and all(b == expected for _, b in seen)
