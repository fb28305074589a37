"""voxflow.ai: provider config, the vendor providers, the agent and the voice pipeline.

The provider Protocols live in :mod:`voxflow.voice.providers` (re-exported here). Light names are
imported eagerly; the vendor providers and :class:`VoicePipeline` load on first access (PEP 562),
so ``import voxflow.ai`` does not load aiohttp or websockets.
"""

from __future__ import annotations

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
from voxflow.ai.config import (
    AiConfig,
    ProviderConfig,
    Secret,
    build_llm,
    build_stt,
    build_tts,
    load_ai_config,
)
from voxflow.voice.providers import (
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


def __getattr__(name: str) -> object:
    """The vendor providers and the voice pipeline, imported on first access."""
    if name == "DeepgramSTT":
        from voxflow.ai.deepgram_stt import DeepgramSTT

        return DeepgramSTT
    if name == "OpenAIChatModel":
        from voxflow.ai.openai_llm import OpenAIChatModel

        return OpenAIChatModel
    if name == "OpenAISTT":
        from voxflow.ai.openai_stt import OpenAISTT

        return OpenAISTT
    if name == "OpenAITTS":
        from voxflow.ai.openai_tts import OpenAITTS

        return OpenAITTS
    if name in ("TurnResult", "VoicePipeline"):
        from voxflow.ai import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'voxflow.ai' has no attribute {name!r}")
