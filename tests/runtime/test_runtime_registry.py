"""Flow registry: loading, routing by dialed number, hot reload with version pinning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _runtime_flowkit import flow, hangup, say, state

from voxflow.errors import ConfigError, FlowError
from voxflow.runtime.registry import FlowRegistry, Router


def write(path: Path, name: str, answers: tuple[str, ...], text: str = "Hi") -> Path:
    f = flow(state("main", say(text), hangup()), name=name, answers=answers)
    path.write_text(f.model_dump_json())
    return path


def bump(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_route_by_number_and_default(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", "sales", ("100", "+15550100"))
    b = write(tmp_path / "b.json", "support", ("200",))
    reg = FlowRegistry()
    reg.load([a, b])
    router = Router(reg, default_flow="support")
    assert router.route("100").flow.name == "sales"  # type: ignore[union-attr]
    assert router.route("+15550100").flow.name == "sales"  # type: ignore[union-attr]
    assert router.route("999").flow.name == "support"  # type: ignore[union-attr]
    assert Router(reg).route("999") is None
    with pytest.raises(ConfigError, match="not loaded"):
        Router(reg, default_flow="nope")


def test_duplicate_numbers_and_missing_files(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", "one", ("100",))
    b = write(tmp_path / "b.json", "two", ("100",))
    with pytest.raises(FlowError, match="already answered"):
        FlowRegistry().load([a, b])
    with pytest.raises(ConfigError, match="no such flow"):
        FlowRegistry().load([tmp_path / "missing.flow"])
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(FlowError, match=r"bad\.json"):
        FlowRegistry().load([bad])


def test_hot_reload_pins_old_version_and_rejects_invalid(tmp_path: Path) -> None:
    p = write(tmp_path / "m.json", "main", ("100",), text="Version one")
    reg = FlowRegistry()
    reg.load([p])
    router = Router(reg)
    pinned = router.route("100")
    assert pinned is not None and pinned.version == 1
    write(p, "main", ("100",), text="Version two")
    bump(p)
    assert [fv.version for fv in reg.reload_changed()] == [2]
    new = router.route("100")
    assert new is not None and new.version == 2
    assert new.flow.states["main"].steps[0].text.source == "Version two"  # type: ignore[union-attr]
    assert pinned.flow.states["main"].steps[0].text.source == "Version one"  # type: ignore[union-attr]
    p.write_text("{ not json")
    bump(p)
    assert reg.reload_changed() == []
    assert p in reg.problems
    still = router.route("100")
    assert still is not None and still.version == 2
    assert reg.reload_changed() == []  # same broken mtime: not retried, not re-reported


def test_route_by_number_pattern_literal_first_then_most_specific(tmp_path: Path) -> None:
    staff = write(tmp_path / "staff.json", "staff", ("_1XX",))
    vip = write(tmp_path / "vip.json", "vip", ("_12X", "150"))
    outside = write(tmp_path / "out.json", "outside", ("_+1NXXNXXXXXX", "_9."))
    reg = FlowRegistry()
    reg.load([staff, vip, outside])
    router = Router(reg)

    def name(called: str) -> str | None:
        fv = router.route(called)
        return fv.flow.name if fv is not None else None

    assert name("100") == "staff"
    assert name("123") == "vip"  # _12X is more specific than _1XX
    assert name("150") == "vip"  # a literal beats every pattern
    assert name("+12125551234") == "outside"
    assert name("90044") == "outside"
    assert name("1000") is None
    assert name("") is None


def test_routing_over_the_released_flows(tmp_path: Path) -> None:
    from voxflow.runtime.checkpoint import flow_hash
    from voxflow.runtime.registry import ReleasedFlows

    a = write(tmp_path / "a.json", "sales", ("100",))
    b = write(tmp_path / "b.json", "support", ("200",))
    reg = FlowRegistry()
    reg.load([a, b])
    own, support = reg.get("sales"), reg.get("support")
    assert own is not None and support is not None
    sales_v2 = flow(state("main", say("v2"), hangup()), name="sales", answers=("100", "101"))
    billing = flow(state("main", say("bill"), hangup()), name="billing", answers=("300",))
    released = {
        "sales": (flow_hash(sales_v2), sales_v2),
        "billing": (flow_hash(billing), billing),
        "support": (flow_hash(support.flow), support.flow),
    }
    view = ReleasedFlows(reg, released)
    router = Router(view, default_flow="support")
    assert router.route("100").flow is sales_v2  # type: ignore[union-attr]  # the released number
    assert router.route("101").flow is sales_v2  # type: ignore[union-attr]  # a number only v2 has
    assert router.route("300").flow is billing  # type: ignore[union-attr]  # not a file here
    assert router.route("200") is support  # the same version: the local FlowVersion
    assert router.route("999") is support  # the default flow
    assert str(view.get("billing").path).startswith("<released ")  # type: ignore[union-attr]
    only_local = Router(ReleasedFlows(reg, {}))  # nothing released (Redis down at start)
    assert only_local.route("100") is own and only_local.route("101") is None
