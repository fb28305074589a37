"""voxflow.ai: provider protocols, provider config, the agent and the voice pipeline.

Light names are imported eagerly; the vendor providers and :class:`VoicePipeline` load on first
access (they pull in aiohttp/websockets/telephony, and ``voxflow.telephony.voice`` imports
``voxflow.ai.base``, so importing them here eagerly would be circular).
"""

from __future__ import annotations

import importlib
from typing import Any

from voxflow.ai.agent import (
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
from voxflow.ai.base import (
    ChatMessage,
    LanguageModel,
    LlmDelta,
    SpeechToText,
    SttStream,
    TextToSpeech,
    ToolCall,
    ToolSpec,
    Transcript,
    VoiceActivityDetector,
)
from voxflow.ai.config import (
    AiConfig,
    ProviderConfig,
    Secret,
    build_llm,
    build_stt,
    build_tts,
    load_ai_config,
)

__all__ = [
    "Agent",
    "AgentAction",
    "AgentExit",
    "AgentIO",
    "AgentOutcome",
    "AgentSettings",
    "AiConfig",
    "ChatMessage",
    "DeepgramSTT",
    "LanguageModel",
    "LlmDelta",
    "OpenAIChatModel",
    "OpenAISTT",
    "OpenAITTS",
    "ProviderConfig",
    "Secret",
    "SpeechToText",
    "Spoken",
    "SttStream",
    "TextToSpeech",
    "ToolCall",
    "ToolParam",
    "ToolSpec",
    "Transcript",
    "TurnMetrics",
    "TurnResult",
    "VoiceActivityDetector",
    "VoicePipeline",
    "build_llm",
    "build_stt",
    "build_tts",
    "http_action",
    "load_ai_config",
    "run_agent",
]

_LAZY = {
    "DeepgramSTT": "voxflow.ai.deepgram_stt",
    "OpenAIChatModel": "voxflow.ai.openai_llm",
    "OpenAISTT": "voxflow.ai.openai_stt",
    "OpenAITTS": "voxflow.ai.openai_tts",
    "TurnResult": "voxflow.ai.pipeline",
    "VoicePipeline": "voxflow.ai.pipeline",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'voxflow.ai' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
