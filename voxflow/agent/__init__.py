"""voxflow.agent: the conversational agent and its voice pipeline, above telephony.

:mod:`~voxflow.agent.agent` (turns, tools, exits: ``Agent``, ``run_agent``),
:mod:`~voxflow.agent.pipeline` (``VoicePipeline``: STT -> LLM -> TTS over a call's voice with
barge-in) and :mod:`~voxflow.agent.call_agent` (``call.agent``: ``CallAgent`` per call). They use
the providers of :mod:`voxflow.ai` and the call through ``CallSession``'s public API.

Importing this package registers :func:`~voxflow.agent.call_agent.create_agent` as the factory
behind ``CallSession.agent`` (``voxflow.telephony.agents``): this is the one place the agent is
wired to telephony, which never imports it.
"""

from __future__ import annotations

from voxflow.agent.agent import (
    Agent,
    AgentAction,
    AgentExit,
    AgentIO,
    AgentOutcome,
    AgentSettings,
    Spoken,
    ToolParam,
    TurnMetrics,
    http_action,
    run_agent,
)
from voxflow.agent.call_agent import CallAgent, create_agent
from voxflow.agent.pipeline import TurnResult, VoicePipeline
from voxflow.telephony.agents import register_agent_factory

__all__ = [
    "Agent",
    "AgentAction",
    "AgentExit",
    "AgentIO",
    "AgentOutcome",
    "AgentSettings",
    "CallAgent",
    "Spoken",
    "ToolParam",
    "TurnMetrics",
    "TurnResult",
    "VoicePipeline",
    "create_agent",
    "http_action",
    "run_agent",
]

register_agent_factory(create_agent)
