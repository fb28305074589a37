"""An agent conversation in a call's checkpoint: taken from ``call.agent``, given back to the
agent of the call resumed on another worker.

Only what was said is kept: the ``user`` and ``assistant`` messages with text, the latest
:data:`MAX_MESSAGES`, each cut to :data:`MAX_CHARS` characters (tool calls and their results
are not: an LLM API refuses a tool result without the call that asked for it). A restored
agent is marked so that its next agent step continues the conversation (no greeting, no
``context reset``), as a retry after ``noinput`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from voxflow.agent.agent import Agent
from voxflow.voice.providers import ChatMessage

__all__ = ["MAX_CHARS", "MAX_MESSAGES", "RESUMED", "conversation", "restore"]

MAX_MESSAGES = 40
MAX_CHARS = 2000
RESUMED = "resumed"
"""The key of ``CallAgent.steps`` a restored agent carries until its next agent step."""

Messages = tuple[tuple[str, str], ...]


def conversation(agent: object) -> Messages:
    """The spoken conversation of ``agent`` (``(role, text)``, bounded); () for anything that
    is not an :class:`~voxflow.agent.agent.Agent`."""
    if not isinstance(agent, Agent):
        return ()
    said = [
        (m.role, m.content[:MAX_CHARS])
        for m in agent.history
        if m.role in ("user", "assistant") and m.content.strip() and not m.tool_calls
    ]
    return tuple(said[-MAX_MESSAGES:])


def restore(agent: object, messages: Sequence[tuple[str, str]]) -> bool:
    """Append ``messages`` to ``agent``'s history (after its system message) and mark it
    resumed; False when ``agent`` is not an Agent."""
    if not isinstance(agent, Agent):
        return False
    roles: dict[str, Literal["user", "assistant"]] = {"user": "user", "assistant": "assistant"}
    for role, text in messages[-MAX_MESSAGES:]:
        if role in roles:
            agent.history.append(ChatMessage(roles[role], str(text)[:MAX_CHARS]))
    steps = getattr(agent, "steps", None)
    if isinstance(steps, dict):
        steps[RESUMED] = True
    return True
