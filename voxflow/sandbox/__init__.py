"""voxflow.sandbox: an embedded PBX that speaks ARI (REST, events websocket, RTP), with
scripted callers, a virtual clock and fault injection. It emulates Asterisk 22 and never
imports voxflow's own ARI client."""

from __future__ import annotations

from .caller import SimCall
from .clock import Clock, RealClock, VirtualClock
from .dialplan import QueueAgent
from .server import Sandbox
from .ws import Faults

__all__ = ["Clock", "Faults", "QueueAgent", "RealClock", "Sandbox", "SimCall", "VirtualClock"]
