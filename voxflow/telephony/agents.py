"""The hook that gives ``CallSession.agent`` its agent.

The conversational agent and its voice pipeline (:mod:`voxflow.agent`) sit above telephony: they
drive a call through its public API. Telephony never imports them; the agent layer registers
its factory here when it is imported (``voxflow.agent``: the runtime, the ``voxflow`` facade and
the CLI all import it), and ``VoxtraApp(agent_factory=...)`` overrides it per app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: telephony never imports the agent layer at run time
    from voxflow.agent.call_agent import CallAgent
    from voxflow.telephony.session import CallSession

__all__ = ["AgentFactory", "register_agent_factory", "registered_agent_factory"]

AgentFactory = Callable[["CallSession"], "CallAgent"]
"""Builds ``call.agent`` for a session whose app has an LLM (your own agent: a subclass of
:class:`~voxflow.agent.call_agent.CallAgent`, which the ``agent`` step requires)."""

_registered: list[AgentFactory] = []


def register_agent_factory(factory: AgentFactory) -> None:
    """Make ``factory`` the agent of every ``VoxtraApp`` not given its own (the last wins)."""
    _registered[:] = [factory]


def registered_agent_factory() -> AgentFactory | None:
    """The registered factory, or None when no agent layer was imported."""
    return _registered[0] if _registered else None
