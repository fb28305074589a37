"""Event models and pure dispatch over the events a real Asterisk 22.10.1 sent."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from voxflow.ari.dispatch import Dispatcher, split_target_uri
from voxflow.ari.models import (
    ApplicationReplaced,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    Dial,
    EventParser,
    PlaybackFinished,
    RecordingFailed,
    StasisStart,
    UnknownEvent,
    parse_event,
)

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures"


def _load(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((CAPTURES / name).read_text())
    return data


@pytest.fixture(scope="module")
def annotated() -> list[dict[str, Any]]:
    return _load("events-annotated.json")


@pytest.mark.parametrize(
    "name",
    ["events-sample.json", "events-subscribeall-sample.json", "events-reconnect-sample.json"],
)
def test_every_captured_event_parses_to_its_model(name: str) -> None:
    parser = EventParser()
    for raw in _load(name):
        event = parser.parse(json.dumps(raw))
        assert event is not None, raw
        assert event.type == raw["type"]
        assert not isinstance(event, UnknownEvent), raw["type"]
    assert (parser.malformed, parser.invalid) == (0, 0)


def test_field_values_survive_parsing(annotated: list[dict[str, Any]]) -> None:
    events = [parse_event(e["event"]) for e in annotated]
    start = next(e for e in events if isinstance(e, StasisStart))
    assert start.channel.caller.number == "5551234"
    assert start.channel.dialplan is not None and start.channel.dialplan.exten == "100"
    assert start.channel.technology == "Local"
    assert start.timestamp is not None and start.timestamp.year == 2026
    soft = next(e for e in events if isinstance(e, ChannelHangupRequest) and e.soft)
    assert soft.cause == 32
    destroyed = next(e for e in events if isinstance(e, ChannelDestroyed))
    assert (destroyed.cause, destroyed.cause_txt) == (16, "Normal Clearing")
    failed = next(e for e in events if isinstance(e, RecordingFailed))
    assert failed.recording.cause == "Cannot record channel while in bridge"
    digits = "".join(e.digit for e in events if isinstance(e, ChannelDtmfReceived))
    assert digits.startswith("123#45*")
    dial = next(e for e in events if isinstance(e, Dial) and e.dialstatus == "RINGING")
    assert dial.peer.id == "vf-b-leg1"
    assert any(isinstance(e, ApplicationReplaced) for e in events)


def test_unknown_type_and_extra_fields_are_tolerated(caplog: pytest.LogCaptureFixture) -> None:
    parser = EventParser()
    caplog.set_level(logging.DEBUG, logger="voxflow.ari.models")
    ev = parser.parse('{"type": "BrandNewEvent", "foo": 1, "application": "voxflow"}')
    assert isinstance(ev, UnknownEvent)
    assert ev.model_extra == {"foo": 1}
    assert parser.unknown == 1
    ev2 = parser.parse(
        '{"type": "ChannelDtmfReceived", "digit": "5", "new_field": true,'
        ' "channel": {"id": "c1", "brand_new": 2}}'
    )
    assert isinstance(ev2, ChannelDtmfReceived) and ev2.digit == "5"
    assert ev2.model_extra == {"new_field": True}
    assert "unmodelled field 'new_field'" in caplog.text
    assert "BrandNewEvent" in caplog.text


def test_malformed_and_invalid_are_counted_and_skipped() -> None:
    parser = EventParser()
    assert parser.parse("{not json") is None
    assert parser.parse(b"\xff\xfe") is None
    assert parser.parse('{"type": "StasisStart"}') is None  # channel missing
    assert parser.parse("[1, 2]") is None
    assert (parser.malformed, parser.invalid) == (2, 2)
    ok = parser.parse('{"type": "StasisEnd", "channel": {"id": "x"}}')
    assert ok is not None and ok.type == "StasisEnd"


def test_split_target_uri() -> None:
    assert split_target_uri("channel:1795502929.1") == ("channel", "1795502929.1")
    assert split_target_uri("bridge:vf-bridge-1") == ("bridge", "vf-bridge-1")
    assert split_target_uri("garbage") == ("", "garbage")


def test_dispatch_routes_captured_stream(annotated: list[dict[str, Any]]) -> None:
    dispatcher = Dispatcher()
    routed: dict[str, list[str]] = {}
    for item in annotated:
        event = parse_event(item["event"])
        for cid in dispatcher.route(event):
            routed.setdefault(cid, []).append(event.type)
    a = routed["1795502929.1"]
    assert a[0] == "StasisStart" and a[-1] == "StasisEnd"
    assert a.count("PlaybackFinished") == 2  # the bogus: playback never finishes
    assert a.count("ChannelDtmfReceived") == 4
    # a bridge playback reaches the channel that was in the bridge
    b2 = routed["vf-b-leg2"]
    assert "PlaybackStarted" in b2 and "RecordingStarted" in b2
    # Dial events reach the dialled peer
    assert "Dial" in routed["vf-b-leg1"]
    assert "ApplicationReplaced" not in {t for ts in routed.values() for t in ts}
    assert dispatcher.tracked[0] == 0  # every bridge emptied


def test_dispatch_prefers_registered_owner_and_forgets() -> None:
    dispatcher = Dispatcher()
    dispatcher.own_playback("pb1", "caller-1")
    started = parse_event(
        {"type": "PlaybackStarted", "playback": {"id": "pb1", "target_uri": "bridge:b9"}}
    )
    assert dispatcher.route(started) == ("caller-1",)
    finished = parse_event(
        {
            "type": "PlaybackFinished",
            "playback": {"id": "pb1", "target_uri": "bridge:b9", "state": "done"},
        }
    )
    assert isinstance(finished, PlaybackFinished)
    assert dispatcher.route(finished) == ("caller-1",)
    assert dispatcher.tracked == (0, 0, 0)
    dispatcher.own_recording("rec1", "caller-2")
    dispatcher.forget_channel("caller-2")
    assert dispatcher.tracked == (0, 0, 0)


def test_left_bridge_notifies_remaining_members() -> None:
    dispatcher = Dispatcher()
    bridge = {"id": "b1"}
    for cid in ("a", "b"):
        dispatcher.route(
            parse_event({"type": "ChannelEnteredBridge", "bridge": bridge, "channel": {"id": cid}})
        )
    assert dispatcher.bridge_members("b1") == {"a", "b"}
    left = parse_event({"type": "ChannelLeftBridge", "bridge": bridge, "channel": {"id": "a"}})
    assert dispatcher.route(left) == ("a", "b")
    assert dispatcher.bridge_members("b1") == {"b"}


def test_a_channels_end_leaves_only_its_own_bridges_and_nothing_is_kept() -> None:
    """Many calls, each in a bridge of its own (plus one shared): a channel's StasisEnd or
    forget_channel takes it out of its bridges only; once every call ended nothing is tracked."""
    dispatcher = Dispatcher()

    def send(kind: str, cid: str, bridge: str) -> tuple[str, ...]:
        return dispatcher.route(
            parse_event({"type": kind, "bridge": {"id": bridge}, "channel": {"id": cid}})
        )

    for i in range(50):
        send("ChannelEnteredBridge", f"c{i}", f"b{i}")
        send("ChannelEnteredBridge", f"m{i}", f"b{i}")  # its media channel
        send("ChannelEnteredBridge", f"c{i}", "shared")
    end = parse_event({"type": "StasisEnd", "channel": {"id": "c7"}})
    assert dispatcher.route(end) == ("c7",)
    assert dispatcher.bridge_members("b7") == {"m7"}
    assert dispatcher.bridge_members("b8") == {"c8", "m8"}
    assert len(dispatcher.bridge_members("shared")) == 49
    dispatcher.forget_channel("m7")
    assert dispatcher.tracked[0] == 50  # b7 is empty: forgotten (49 own + shared)
    left = send("ChannelLeftBridge", "c8", "shared")
    assert left[0] == "c8" and set(left[1:]) == dispatcher.bridge_members("shared")
    assert len(left) == 1 + 48 and "c8" not in left[1:]
    destroyed = parse_event({"type": "BridgeDestroyed", "bridge": {"id": "b9", "channels": []}})
    assert dispatcher.route(destroyed) == ("c9", "m9")
    for i in range(50):
        dispatcher.route(parse_event({"type": "StasisEnd", "channel": {"id": f"c{i}"}}))
        dispatcher.forget_channel(f"m{i}")
    assert dispatcher.tracked == (0, 0, 0) and dispatcher._member_of == {}
