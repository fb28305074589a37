"""voxflow.ai: provider config and the vendor providers (LLM, STT, TTS clients).

The provider Protocols live in :mod:`voxflow.voice.providers` (re-exported here). Light names are
imported eagerly; the vendor providers load on first access (PEP 562), so ``import voxflow.ai``
does not load aiohttp or websockets. The agent and the voice pipeline are above telephony, in
:mod:`voxflow.agent`.
"""

from __future__ import annotations

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
    "SttStream",
    "TextToSpeech",
    "ToolCall",
    "ToolSpec",
    "Transcript",
    "VoiceActivityDetector",
    "build_llm",
    "build_stt",
    "build_tts",
    "load_ai_config",
]


def __getattr__(name: str) -> object:
    """The vendor providers, imported on first access."""
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
    raise AttributeError(f"module 'voxflow.ai' has no attribute {name!r}")
