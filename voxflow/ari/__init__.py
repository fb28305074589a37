"""voxflow.ari: event models, pure dispatch, REST client and events websocket."""

from __future__ import annotations

from voxflow.ari.dispatch import Dispatcher
from voxflow.ari.events import AriEventStream
from voxflow.ari.models import EventParser, parse_event
from voxflow.ari.rest import AriRestClient

__all__ = ["AriEventStream", "AriRestClient", "Dispatcher", "EventParser", "parse_event"]
