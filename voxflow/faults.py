"""Fault points: where a test makes a worker process die at an exact point of its work.

``VOXFLOW_FAULT=<point>`` in a process's environment makes :func:`reached` kill that process
with ``SIGKILL`` (as ``kill -9`` would: no clean-up, no ``finally``) the first time it reaches
``point``. Unset (always, outside tests) a point costs one set lookup. Points:

* ``before_end_claim``: a cluster worker has seen a call end (the caller hung up, or its flow
  ended) and is about to write the end claim to Redis (``ClusterState.claim_end``);
* ``after_hangup_step``: a cluster worker holding a call's end claim has sent an HTTP step of
  the ``on hangup`` body and recorded its result (``ClusterState.record_effect``);
* ``webhook_held:<event>`` (``call.started``, ``state.entered``, ``recording.ready``,
  ``call.ended``): the event happened and its webhook is about to be sent (in cluster mode,
  held in the outbox first for the events that are kept there: ``WebhookSender._send``);
* ``after_outbox_read``: a cluster worker's heartbeat has read other workers' pending
  webhooks and found who is alive, before taking any over (``Outbox.resend``).
"""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["POINTS", "reached"]

POINTS = frozenset(
    {
        "after_hangup_step",
        "after_outbox_read",
        "before_end_claim",
        *(
            f"webhook_held:{e}"
            for e in ("call.started", "state.entered", "recording.ready", "call.ended")
        ),
    }
)
_ARMED = frozenset(os.environ.get("VOXFLOW_FAULT", "").split(",")) & POINTS


def reached(point: str) -> None:
    """Die here (SIGKILL) if ``VOXFLOW_FAULT`` names ``point``."""
    if point in _ARMED:
        sys.stderr.write(f"voxflow: fault point {point} reached: killing this process\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
