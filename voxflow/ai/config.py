"""Provider configuration from ``VoxtraApp(...)`` arguments, a flow's config and the environment.

Precedence for each setting: explicit app arguments, then the flow's config, then environment
variables, then defaults. API keys come only from app arguments or the environment: a key in a
flow's config is a :class:`~voxflow.errors.ConfigError` (flow files are shared and committed).
Keys are held in :class:`Secret`, whose ``repr``/``str`` never show the value.

Environment variables (``X`` is ``LLM``, ``STT`` or ``TTS``): ``VOXFLOW_X_PROVIDER``,
``VOXFLOW_X_BASE_URL``, ``VOXFLOW_X_MODEL``, ``VOXFLOW_X_API_KEY``, ``VOXFLOW_X_TIMEOUT``,
``VOXFLOW_TTS_VOICE``, ``VOXFLOW_X_LANGUAGE``, ``VOXFLOW_STT_RESPONSE_FORMAT``; vendor keys
``OPENAI_API_KEY`` and ``DEEPGRAM_API_KEY`` are used when the provider is ``openai`` or
``deepgram``.
A kind (llm/stt/tts) is configured when its provider, model or base URL is set anywhere;
a key alone does not switch a provider on.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from voxflow.errors import ConfigError
from voxflow.voice.providers import LanguageModel, SpeechToText, TextToSpeech

__all__ = [
    "AiConfig",
    "ProviderConfig",
    "Secret",
    "build_llm",
    "build_stt",
    "build_tts",
    "load_ai_config",
]

T = TypeVar("T")

Kind = Literal["llm", "stt", "tts"]
_KINDS: tuple[Kind, ...] = ("llm", "stt", "tts")
_FIELDS = (
    "provider",
    "base_url",
    "model",
    "api_key",
    "timeout",
    "voice",
    "language",
    "sample_rate",
    "response_format",
)
_KNOWN_PROVIDERS: dict[Kind, frozenset[str]] = {
    "llm": frozenset({"openai"}),
    "stt": frozenset({"openai", "deepgram", "pocketsphinx"}),
    "tts": frozenset({"openai", "espeak"}),
}
_DEFAULT_PROVIDER: dict[Kind, str] = {"llm": "openai", "stt": "openai", "tts": "openai"}
_VENDOR_KEY_ENV = {"openai": "OPENAI_API_KEY", "deepgram": "DEEPGRAM_API_KEY"}


class Secret:
    """A secret string (an API key): ``repr``/``str`` show ``****``; ``get()`` returns it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    def __str__(self) -> str:
        return "****"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:
        raise TypeError("Secret values cannot be pickled")


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """Settings of one provider; ``options`` carries vendor extras (e.g. Deepgram query params)."""

    provider: str
    base_url: str | None = None
    model: str | None = None
    api_key: Secret | None = None
    timeout: float | None = None
    voice: str | None = None
    language: str | None = None
    sample_rate: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AiConfig:
    """The three optional providers; a field is None when that kind is not configured."""

    llm: ProviderConfig | None = None
    stt: ProviderConfig | None = None
    tts: ProviderConfig | None = None


def _section(source: Mapping[str, Any] | None, kind: Kind, where: str) -> dict[str, Any]:
    """Settings of ``kind`` from a nested (``{"llm": {...}}``) or flat (``llm_model``) mapping."""
    if not source:
        return {}
    out: dict[str, Any] = {}
    nested = source.get(kind)
    if isinstance(nested, Mapping):
        out.update(nested)
    elif isinstance(nested, str):
        out["provider"] = nested
    elif nested is not None:
        raise ConfigError(f"{where}: '{kind}' must be a table of settings or a provider name")
    for key, value in source.items():
        for sep in ("_", "."):
            prefix = f"{kind}{sep}"
            if isinstance(key, str) and key.startswith(prefix):
                out[key[len(prefix) :]] = value
    return out


def _env_section(env: Mapping[str, str], kind: Kind) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FIELDS:
        value = env.get(f"VOXFLOW_{kind.upper()}_{name.upper()}")
        if value:
            out[name] = value
    return out


def _merge(
    kind: Kind,
    app: dict[str, Any],
    flow: dict[str, Any],
    envs: dict[str, Any],
    env: Mapping[str, str],
) -> ProviderConfig | None:
    if "api_key" in flow or "key" in flow:
        raise ConfigError(
            f"flow config sets an API key for {kind}: keys may not appear in flow files; "
            f"set it in the environment (e.g. VOXFLOW_{kind.upper()}_API_KEY) or in VoxtraApp(...)"
        )
    merged: dict[str, Any] = {}
    for layer in (envs, flow, app):
        merged.update({k: v for k, v in layer.items() if v is not None})
    if not any(k in merged for k in ("provider", "model", "base_url")):
        return None
    provider = str(merged.pop("provider", _DEFAULT_PROVIDER[kind])).strip().lower()
    if provider not in _KNOWN_PROVIDERS[kind]:
        known = ", ".join(sorted(_KNOWN_PROVIDERS[kind]))
        raise ConfigError(f"unknown {kind} provider {provider!r} (known: {known})")
    key = merged.pop("api_key", None)
    if key is None and provider in _VENDOR_KEY_ENV:
        key = env.get(_VENDOR_KEY_ENV[provider]) or None
    secret = key if isinstance(key, Secret) else (Secret(str(key)) if key else None)
    timeout = merged.pop("timeout", None)
    sample_rate = merged.pop("sample_rate", None)
    try:
        timeout_f = float(timeout) if timeout is not None else None
        rate_i = int(sample_rate) if sample_rate is not None else None
    except (TypeError, ValueError):
        raise ConfigError(f"{kind}: timeout must be a number and sample_rate an integer") from None
    if timeout_f is not None and not (math.isfinite(timeout_f) and timeout_f > 0):
        raise ConfigError(f"{kind}: timeout must be positive, got {timeout_f}")
    known_keys = {"base_url", "model", "voice", "language"}
    plain = {k: (str(v) if v is not None else None) for k, v in merged.items() if k in known_keys}
    if plain.get("base_url") is not None and provider in _URL_SCHEMES:
        _check_base_url(kind, plain["base_url"] or "", _URL_SCHEMES[provider])
    options = {k: v for k, v in merged.items() if k not in known_keys}
    return ProviderConfig(
        provider=provider,
        api_key=secret,
        timeout=timeout_f,
        sample_rate=rate_i,
        options=options,
        **plain,
    )


_URL_SCHEMES = {"openai": ("http", "https"), "deepgram": ("ws", "wss")}
"""The URL schemes of each network provider's ``base_url`` (offline engines take none)."""
_USERINFO = re.compile(r"(?<=://)[^/?#\s]*@")


def _check_base_url(kind: Kind, url: str, schemes: tuple[str, ...]) -> None:
    """ConfigError unless ``url`` is a ``scheme://host...`` URL of ``schemes`` (the provider
    would fail every request); a user:password in it is not shown."""
    try:
        parts = urlsplit(url)
        ok = parts.scheme in schemes and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:  # an unclosed '[', a bad IPv6 address or port
        ok = False
    if not ok:
        shown = _USERINFO.sub("<redacted>@", url)
        expected = " or ".join(f"{s}://" for s in schemes)
        raise ConfigError(f"{kind} base_url: invalid URL {shown!r} (expected {expected})")


def load_ai_config(
    *,
    app: Mapping[str, Any] | None = None,
    flow: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> AiConfig:
    """Merge app arguments, a flow's config section and the environment (``os.environ`` by default).

    ``app``/``flow`` may be nested (``{"llm": {"model": "gpt-4o-mini"}}``, ``{"tts": "espeak"}``)
    or flat (``{"llm_model": ...}``). Raises ConfigError for unknown providers, bad numbers and
    API keys in the flow config.
    """
    environ = os.environ if env is None else env
    result: dict[str, ProviderConfig | None] = {}
    for kind in _KINDS:
        result[kind] = _merge(
            kind,
            _section(app, kind, "VoxtraApp"),
            _section(flow, kind, "flow config"),
            _env_section(environ, kind),
            environ,
        )
    return AiConfig(**result)


def build_llm(cfg: ProviderConfig | None) -> LanguageModel | None:
    """The language model described by ``cfg`` (None when not configured)."""
    if cfg is None:
        return None
    from voxflow.ai.openai_llm import OpenAIChatModel

    return OpenAIChatModel(
        model=cfg.model or "gpt-4o-mini",
        base_url=cfg.base_url or "https://api.openai.com/v1",
        api_key=cfg.api_key,
        timeout=cfg.timeout or 30.0,
        temperature=_float_opt(cfg.options, "temperature"),
        max_tokens=_int_opt(cfg.options, "max_tokens"),
    )


def build_stt(
    cfg: ProviderConfig | None, offline: Mapping[str, Callable[..., SpeechToText]] | None = None
) -> SpeechToText | None:
    """The speech recogniser described by ``cfg`` (None when not configured); ``offline`` maps
    offline provider names (``pocketsphinx``) to their classes."""
    if cfg is None:
        return None
    if cfg.provider == "deepgram":
        from voxflow.ai.deepgram_stt import DeepgramSTT

        if not cfg.api_key and not cfg.base_url:
            raise ConfigError("Deepgram STT needs DEEPGRAM_API_KEY (or VOXFLOW_STT_API_KEY)")
        return DeepgramSTT(
            api_key=cfg.api_key,
            base_url=cfg.base_url or "wss://api.deepgram.com/v1/listen",
            model=cfg.model or "nova-2",
            language=cfg.language or "en-US",
            sample_rate=cfg.sample_rate or 16000,
            timeout=cfg.timeout or 10.0,
        )
    if cfg.provider == "openai":
        from voxflow.ai.openai_stt import OpenAISTT

        return OpenAISTT(
            model=cfg.model or "whisper-1",
            base_url=cfg.base_url or "https://api.openai.com/v1",
            api_key=cfg.api_key,
            language=cfg.language,
            sample_rate=cfg.sample_rate or 16000,
            timeout=cfg.timeout or 30.0,
            response_format=str(cfg.options.get("response_format", "auto")),
        )
    return _build_offline("stt", cfg, offline or {})


def build_tts(
    cfg: ProviderConfig | None, offline: Mapping[str, Callable[..., TextToSpeech]] | None = None
) -> TextToSpeech | None:
    """The speech synthesiser described by ``cfg`` (None when not configured); ``offline`` maps
    offline provider names (``espeak``) to their classes."""
    if cfg is None:
        return None
    if cfg.provider == "openai":
        from voxflow.ai.openai_tts import OpenAITTS

        return OpenAITTS(
            model=cfg.model or "gpt-4o-mini-tts",
            voice=cfg.voice or "alloy",
            base_url=cfg.base_url or "https://api.openai.com/v1",
            api_key=cfg.api_key,
            timeout=cfg.timeout or 30.0,
        )
    return _build_offline("tts", cfg, offline or {})


def _build_offline(kind: str, cfg: ProviderConfig, offline: Mapping[str, Callable[..., T]]) -> T:
    """Offline engines (espeak-ng TTS, pocketsphinx STT) live in ``voxflow.media``, above this
    package: the composition root (``voxflow.cli.run_app``) passes their classes in ``offline``."""
    factory = offline.get(cfg.provider)
    if factory is None:
        raise ConfigError(f"{cfg.provider} {kind} is not available here (no offline engine given)")
    kwargs: dict[str, Any] = {}
    if kind == "tts":
        if cfg.voice:
            kwargs["voice"] = cfg.voice
        if cfg.sample_rate:
            kwargs["sample_rate"] = cfg.sample_rate
    return factory(**kwargs)


def _float_opt(options: Mapping[str, Any], name: str) -> float | None:
    value = options.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"llm: {name} must be a number, got {value!r}") from None


def _int_opt(options: Mapping[str, Any], name: str) -> int | None:
    value = options.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"llm: {name} must be an integer, got {value!r}") from None
