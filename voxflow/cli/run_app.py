"""The ``VoxtraApp`` that ``voxflow run`` serves with: its speech and language providers (the
offline engines of ``voxflow.media`` by default, the configured vendors' instead), the
recogniser's decoders built before the first call, the providers closed at the end."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from voxflow.errors import ConfigError
from voxflow.runtime.config import Settings, listen_host

__all__ = ["close_providers", "make_app", "warm_up_providers"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def _offline(factory: Callable[[], T], name: str) -> T | None:
    """An offline engine from voxflow.media, or None (logged) when it cannot start here."""
    try:
        return factory()
    except Exception as exc:  # a missing engine only costs that capability
        log.warning("%s unavailable (%s): running without it", name, exc)
        return None


def make_app(
    settings: Settings, ari_url: str, user: str, password: str, *, audio: bool = True
) -> Any:
    """The VoxtraApp: offline speech by default (espeak-ng TTS, pocketsphinx STT, WebRTC VAD),
    replaced by VOXFLOW_TTS_*/_STT_*/_LLM_* providers when configured; ``audio=False``: none
    (prompts only in the transcript, DTMF input only)."""
    from voxflow.ai.config import build_llm, build_stt, build_tts, load_ai_config
    from voxflow.telephony.app import VoxtraApp

    ai = load_ai_config()  # VOXFLOW_LLM_* / _STT_* / _TTS_*; API keys only from the environment
    _check_openai_keys(ai, ("llm", "stt", "tts") if audio else ("llm",))
    kwargs: dict[str, Any] = {}
    if audio:  # the media path (numpy, soxr, the engines) loads only when audio is on
        from voxflow.media.callmedia import create_call_voice
        from voxflow.media.stt_pocketsphinx import PocketSphinxSTT
        from voxflow.media.tts_espeak import EspeakTTS
        from voxflow.media.vad import WebRtcVad

        kwargs["voice_factory"] = create_call_voice
        tts = build_tts(ai.tts, {"espeak": EspeakTTS})
        decoders = settings.stt_decoders
        sphinx = functools.partial(PocketSphinxSTT, max_decoders=decoders)
        stt = build_stt(ai.stt, {"pocketsphinx": sphinx})
        kwargs["tts"] = tts or _offline(EspeakTTS, "EspeakTTS")
        kwargs["stt"] = stt or _offline(sphinx, "PocketSphinxSTT")
        kwargs["vad"] = _offline(WebRtcVad, "WebRtcVad")
    llm = build_llm(ai.llm)
    if llm is not None:  # agent steps
        kwargs["llm"] = llm
    if settings.ari_mode != "classic":
        kwargs["mode"] = settings.ari_mode
        kwargs["listen"] = listen_host(settings.listen)
        kwargs["listen_auth"] = (
            settings.listen_user or user,
            settings.listen_password if settings.listen_password is not None else password,
        )
    kwargs["media_options"] = settings.media_options()
    return VoxtraApp(ari_url, user, password, settings.app, **kwargs)


def _check_openai_keys(ai: Any, kinds: tuple[str, ...]) -> None:
    """ConfigError for an ``openai`` provider on OpenAI's own URL with no API key: every
    request would be refused (a local OpenAI-compatible server, given by its base URL, may
    take none)."""
    for kind in kinds:
        cfg = getattr(ai, kind)
        if cfg is not None and cfg.provider == "openai" and not cfg.api_key and not cfg.base_url:
            up = kind.upper()
            raise ConfigError(
                f"{kind}: the openai provider at https://api.openai.com/v1 needs an API key: "
                f"set OPENAI_API_KEY or VOXFLOW_{up}_API_KEY (or VOXFLOW_{up}_BASE_URL for a "
                "local OpenAI-compatible server)"
            )


async def warm_up_providers(app: Any) -> None:
    """Build the offline recogniser's decoder pool before the first call (~0.5 s each, holding
    the GIL: built during a call, that time would be heard as silence; none is built later)."""
    warm_up = getattr(app.stt, "warm_up", None)
    if warm_up is not None:
        with contextlib.suppress(Exception):  # a failure shows again, clearly, at the first listen
            await warm_up()


async def close_providers(app: Any) -> None:
    """Close the providers' HTTP sessions (the app does not own them)."""
    for provider in (app.llm, app.stt, app.tts):
        aclose = getattr(provider, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
