"""``voxflow sandbox --stasis-delay/--caller-dtx`` and the control API's ``dtx``."""

from __future__ import annotations

import base64

import aiohttp
import click
import pytest
from click.testing import CliRunner
from conftest import RawAri

from voxflow.cli.sandbox import parse_delay_ms, sandbox_command
from voxflow.sandbox import Sandbox

AUTH = {"Authorization": "Basic " + base64.b64encode(b"voxflow:voxflow").decode()}


def test_stasis_delay_takes_ms_or_a_range() -> None:
    assert parse_delay_ms("0.3-30") == pytest.approx((0.0003, 0.03))
    assert parse_delay_ms("5") == pytest.approx((0.005, 0.005))
    for bad in ("30-1", "soon", "-3"):
        with pytest.raises(click.BadParameter):
            parse_delay_ms(bad)


def test_a_bad_stasis_delay_is_a_usage_error() -> None:
    result = CliRunner().invoke(sandbox_command, ["--port", "0", "--stasis-delay", "9-2"])
    assert result.exit_code == 2
    assert "0 <= MIN <= MAX" in result.output


@pytest.mark.parametrize("uri", ["http://127.0.0.1:9/ws", "ws://", "127.0.0.1:9"])
def test_a_bad_outbound_websocket_uri_is_a_usage_error_before_anything_listens(uri: str) -> None:
    result = CliRunner().invoke(sandbox_command, ["--port", "0", "--outbound-ws", uri])
    assert result.exit_code == 2, result.output
    assert "expected ws://HOST:PORT/PATH or wss://..." in result.output
    assert "ARI at" not in result.output  # no banner for a server that is not going to run


async def test_control_api_places_a_dtx_caller(sandbox: Sandbox, ari: RawAri) -> None:
    async with aiohttp.ClientSession(headers=AUTH) as s:
        url = f"{sandbox.base_url}/sandbox/calls"
        async with s.post(url, json={"to": "200", "dtx": True}) as r:
            assert r.status == 201
            dtx_id = (await r.json())["id"]
        async with s.post(url, json={"to": "201"}) as r:
            plain_id = (await r.json())["id"]
    assert sandbox.calls[dtx_id].dtx is True
    assert sandbox.calls[plain_id].dtx is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "99999"], "99999 is not in the range 0<=x<=65535"),  # was an OverflowError
        (["--port", "-1"], "-1 is not in the range 0<=x<=65535"),
        (["--answer-delay", "nan"], "expected a number of seconds, got nan"),  # served NaN
        (["--answer-delay", "-1"], "-1.0 is not in the range 0<=x<=3600"),
    ],
)
def test_bad_port_and_delays_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(sandbox_command, args)
    assert result.exit_code == 2 and message in result.output, result.output
