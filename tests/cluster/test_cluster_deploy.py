"""The sample cluster configurations in docs/deploy/ are valid for Kamailio and HAProxy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"


def _tool(name: str) -> str:
    exe = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if exe is None:
        pytest.fail(f"{name} is not installed (`apt-get install -y {name}`, see .ci/run)")
    return exe


def _check(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_the_kamailio_cfg_passes_kamailio_c(tmp_path: Path) -> None:
    kamailio = _tool("kamailio")
    good = _check([kamailio, "-c", "-f", str(DEPLOY / "kamailio.cfg")])
    assert good.returncode == 0, good.stdout + good.stderr
    assert "config file ok" in good.stdout + good.stderr
    text = (DEPLOY / "kamailio.cfg").read_text()
    assert 'ds_select_dst("1", "10")' in text and '"ds_ping_method", "OPTIONS"' in text
    bad = tmp_path / "bad.cfg"  # the check is real: an unknown function is refused
    bad.write_text(text.replace("ds_select_dst(", "ds_select_dstx("))
    assert _check([kamailio, "-c", "-f", str(bad)]).returncode != 0


def test_the_dispatcher_list_names_each_node_with_its_load() -> None:
    lines = [
        ln.split()
        for ln in (DEPLOY / "dispatcher.list").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert len(lines) >= 2
    for setid, uri, _flags, _prio, attrs in lines:
        assert setid == "1" and uri.startswith("sip:")
        assert "duid=" in attrs and "maxload=" in attrs


def test_the_haproxy_cfg_passes_haproxy_c() -> None:
    res = _check([_tool("haproxy"), "-c", "-f", str(DEPLOY / "haproxy.cfg")])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "uri /readyz" in (DEPLOY / "haproxy.cfg").read_text()
