"""The typed seam: CallSession is a CallPort (checked by mypy --strict on this file: it is in
pyproject's [tool.mypy] files, and a test here keeps it there), errors by type."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

import pytest

from voxflow.errors import AiNotConfiguredError, CallError
from voxflow.runtime.http_step import HttpClient, HttpRequest
from voxflow.runtime.port import AgentHost, CallPort, PeerCall
from voxflow.telephony.session import CallSession


def _as_port(session: CallSession) -> CallPort[CallSession]:
    return session  # mypy --strict fails here when CallSession stops implementing CallPort


def _as_peer(session: CallSession) -> PeerCall:
    return session


def _as_agent_host(session: CallSession) -> AgentHost:
    return session


def test_mypy_checks_this_file() -> None:
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    files = tomllib.loads(pyproject.read_text())["tool"]["mypy"]["files"]
    assert "tests/runtime/test_runtime_port.py" in files


def _members(proto: type) -> set[str]:
    return {
        name
        for name, _ in inspect.getmembers(proto)
        if not name.startswith("_") and name not in dir(object)
    }


@pytest.mark.parametrize("proto", [CallPort, PeerCall, AgentHost])
def test_call_session_has_every_member_of_the_port(proto: type) -> None:
    assert _as_port is not None and _as_peer is not None and _as_agent_host is not None
    missing = {m for m in _members(proto) if not hasattr(CallSession, m)}
    attributes = {"id", "caller_id", "called_number", "direction", "metadata", "failure_reason"}
    assert missing <= attributes  # instance attributes of a session


def test_ai_not_configured_is_a_call_error_and_the_seed_runtime_error() -> None:
    err = AiNotConfiguredError()
    assert isinstance(err, CallError) and isinstance(err, RuntimeError)
    assert str(err) == "AI pipeline not configured"
    with pytest.raises(RuntimeError, match=r"^AI pipeline not configured$"):
        raise err


async def test_http_results_say_whether_a_retry_could_help() -> None:
    async with HttpClient() as client:
        bad = await client.perform(HttpRequest("GET", "ftp://example.invalid/"))
        refused = await client.perform(
            HttpRequest("GET", "http://127.0.0.1:9/", timeout=2.0, retries=0)
        )
    assert bad.outcome == "error" and not bad.retryable
    assert refused.outcome == "error" and refused.retryable
