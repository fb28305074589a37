"""An RTP address voxflow cannot bind (not one of this machine's) stops ``voxflow run`` at
start-up with exit 2 and the system's reason; every call failed instead, with "no free RTP port
in 40000-40999 on HOST" after trying all 1,000 ports."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from voxflow.cli.main import cli
from voxflow.errors import MediaError
from voxflow.media.transport import PortRange

ROOT = Path(__file__).resolve().parents[2]
NOT_HERE = "192.0.2.1"  # TEST-NET-1 (RFC 5737): never an address of this machine


def test_run_with_an_rtp_host_it_cannot_bind_is_a_usage_error() -> None:
    flow = str(ROOT / "flows" / "main_ivr.flow")
    result = CliRunner().invoke(cli, ["run", flow, "--rtp-host", NOT_HERE])
    assert result.exit_code == 2, result.output
    assert f"--rtp-host: cannot bind RTP on {NOT_HERE}: " in result.output
    assert "Traceback" not in result.output


def test_a_port_range_on_a_foreign_address_says_why_at_once() -> None:
    ports = PortRange(40000, 40999)
    with pytest.raises(MediaError) as err:
        ports.bind(NOT_HERE)
    assert str(err.value).startswith(f"cannot bind RTP on {NOT_HERE}: "), err.value
    assert "no free RTP port" not in str(err.value) and not ports.in_use
