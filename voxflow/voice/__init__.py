"""voxflow.voice: what media, telephony and the AI providers share, importing nothing of theirs.

``chunk`` (:class:`AudioChunk`, the ~20 ms frame), ``providers`` (the LLM/STT/TTS/VAD
Protocols), ``call`` (:class:`CallVoice`, the call's audio interface, and its value types) and
``wav`` (PCM to WAV). Pure code: no asyncio I/O, aiohttp or websockets at import.
"""

__all__: list[str] = []
