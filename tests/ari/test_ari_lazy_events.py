"""Lazy events (EventParser(lazy=True)): same values as full validation, routing fields only on
receipt, the rest validated once on first read; sessions on the sandbox leave noise unread."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from voxflow.ari.dispatch import Dispatcher
from voxflow.ari.models import (
    AriEvent,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    ChannelVarset,
    EventParser,
    StasisStart,
    UnknownEvent,
    parse_event,
)
from voxflow.errors import AriEventInvalid

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures"
FILES = ["events-sample.json", "events-subscribeall-sample.json", "events-reconnect-sample.json"]


def _captured() -> list[str]:
    out: list[str] = []
    for name in [*FILES, "events-annotated.json"]:
        for item in json.loads((CAPTURES / name).read_text()):
            out.append(json.dumps(item.get("event", item) if "event" in item else item))
    return out


def test_lazy_events_equal_full_validation_for_every_captured_event() -> None:
    parser = EventParser(lazy=True)
    lazy_count = 0
    for raw in _captured():
        full = parse_event(raw)
        for check in ("eq", "dump", "json", "repr", "extra", "pickle", "copy", "fields"):
            event = parser.parse(raw)
            assert event is not None and type(event) is type(full), raw
            lazy_count += event.is_lazy
            if check == "eq":
                assert event == full
            elif check == "dump":
                assert event.model_dump() == full.model_dump()
            elif check == "json":
                assert event.model_dump_json() == full.model_dump_json()
            elif check == "repr":
                assert repr(event) == repr(full)
            elif check == "extra":
                assert event.model_extra == full.model_extra
            elif check == "pickle":
                assert pickle.loads(pickle.dumps(event)) == full
            elif check == "copy":
                assert copy.deepcopy(event) == full and copy.copy(event) == full
            else:
                assert event.model_fields_set == full.model_fields_set
            assert not event.is_lazy
    assert lazy_count > 100  # the fast path took (nearly) every captured event
    assert (parser.malformed, parser.invalid) == (0, 0)


def test_routing_fields_are_set_on_receipt_and_the_rest_on_first_read() -> None:
    raw = next(r for r in _captured() if '"StasisStart"' in r and '"caller"' in r)
    full = parse_event(raw)
    assert isinstance(full, StasisStart)
    event = EventParser(lazy=True).parse(raw)
    assert isinstance(event, StasisStart)
    channel = event.channel
    assert (channel.id, channel.name, channel.state) == (
        full.channel.id,
        full.channel.name,
        full.channel.state,
    )
    assert event.args == full.args and channel.technology == full.channel.technology
    assert event.is_lazy and channel.is_lazy
    assert channel.caller == full.channel.caller  # completes the channel only
    assert not channel.is_lazy and event.is_lazy
    assert event.timestamp == full.timestamp and not event.is_lazy
    assert event.channel is channel  # the nested object keeps its identity


def test_dispatch_of_lazy_events_matches_full_events_and_reads_nothing_more() -> None:
    raws = _captured()
    parser = EventParser(lazy=True)
    lazy_routes, full_routes = Dispatcher(), Dispatcher()
    lazy_events: list[AriEvent] = []
    for raw in raws:
        event = parser.parse(raw)
        assert event is not None
        assert lazy_routes.route(event) == full_routes.route(parse_event(raw)), raw
        lazy_events.append(event)
    still_lazy = {e.type for e in lazy_events if e.is_lazy}
    assert {"ChannelVarset", "ChannelDtmfReceived", "PlaybackFinished"} <= still_lazy


def test_a_caller_edit_survives_completion() -> None:
    event = EventParser(lazy=True).parse(
        '{"type": "ChannelDtmfReceived", "digit": "5", "duration_ms": 90,'
        ' "channel": {"id": "c1", "state": "Up"}, "brand_new": 1}'
    )
    assert isinstance(event, ChannelDtmfReceived)
    event.digit = "9"
    assert event.duration_ms == 90 and event.digit == "9"
    assert event.model_extra == {"brand_new": 1}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # values pydantic coerces are decided by pydantic (the fast path declines them)
        ('{"type": "ChannelHangupRequest", "cause": "16", "channel": {"id": "c"}}', 16),
        ('{"type": "ChannelHangupRequest", "soft": "true", "channel": {"id": "c"}}', None),
    ],
)
def test_declined_fast_path_falls_back_to_full_validation(raw: str, expected: Any) -> None:
    parser = EventParser(lazy=True)
    event = parser.parse(raw)
    assert isinstance(event, ChannelHangupRequest) and not event.is_lazy
    assert event == parse_event(raw) and event.cause == expected


def test_invalid_unknown_and_malformed_still_counted_and_skipped() -> None:
    parser = EventParser(lazy=True)
    assert parser.parse("{not json") is None
    assert parser.parse(b"\xff\xfe") is None
    assert parser.parse('{"type": "ChannelDtmfReceived", "channel": {"id": "c"}}') is None
    assert (
        parser.parse('{"type": "ChannelDtmfReceived", "digit": null, "channel": {"id": "c"}}')
        is None
    )
    assert parser.parse('{"type": "StasisEnd", "channel": {"state": "Up"}}') is None  # no id
    assert parser.parse('{"type": "StasisEnd", "channel": null}') is None
    assert (
        parser.parse('{"type": "ChannelDestroyed", "cause": null, "channel": {"id": "c"}}') is None
    )
    assert (parser.malformed, parser.invalid) == (2, 5)
    unknown = parser.parse('{"type": "BrandNewEvent", "foo": 1}')
    assert isinstance(unknown, UnknownEvent) and unknown.model_extra == {"foo": 1}
    assert parser.unknown == 1
    varset = parser.parse('{"type": "ChannelVarset", "variable": "G", "value": "1"}')
    assert isinstance(varset, ChannelVarset) and varset.channel is None and varset.is_lazy


def test_a_bad_field_outside_routing_raises_when_read_not_on_receipt() -> None:
    parser = EventParser(lazy=True)
    raw = '{"type": "StasisEnd", "timestamp": "not a date", "channel": {"id": "c9"}}'
    event = parser.parse(raw)
    assert event is not None and parser.invalid == 0
    assert Dispatcher().route(event) == ("c9",)
    with pytest.raises(AriEventInvalid, match="timestamp"):
        _ = event.timestamp
    with pytest.raises(AriEventInvalid):  # still lazy: the same clear error on every read
        _ = event.application
    assert event.is_lazy
