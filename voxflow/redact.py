"""A logging filter that removes credentials from every log record, whatever logged it.

``voxflow run -v`` turns on debug logs of voxflow and of the libraries under it (aiohttp,
websockets), some of which print request headers. :func:`install_redaction` puts a
:class:`RedactingFilter` on the root handlers, so any record, from any logger, has
``Authorization`` values, ``api_key=``/``token=``/``password=``-style parameters, provider keys
(``sk-...``) and the secret values it was told about (the ARI password, its Basic credentials,
``*_API_KEY``/``*_SECRET``/``*_PASSWORD`` environment values) replaced by ``<redacted>``.
Calls in progress add the current values of their ``sensitive`` flow variables through
:func:`live_values` (see :mod:`voxflow.runtime.redaction`).
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "REDACTED",
    "RedactingFilter",
    "install_redaction",
    "is_secret_name",
    "live_values",
    "redact_text",
    "secrets_from_env",
    "url_for_log",
]

REDACTED = "<redacted>"

_PATTERNS = (
    # Authorization: Basic abc / 'Authorization': 'Bearer abc' / authorization=...
    re.compile(
        r"(?i)((?:proxy-)?authorization(?:['\"]?\s*[:=]|['\"]\s*,)\s*['\"]?"
        r"(?:basic|bearer|token|digest)?\s*)"
        r"[^\s'\",;}]+"
    ),
    # api_key=..., "password": "...", token: ..., secret=..., X-Api-Key: ...
    re.compile(
        r"(?i)((?:api[_-]?key|apikey|access[_-]?token|token|password|passwd|secret|"
        r"x-api-key|client[_-]secret)(?:['\"]?\s*[:=]|['\"]\s*,)\s*['\"]?)[^\s'\",&;})]+"
    ),
    # ?key=... / &sig=... / &signature=... in a URL's query string
    re.compile(r"(?i)([?&](?:key|sig|signature)=)[^\s'\"&#;]+"),
    re.compile(r"\b(sk-)[A-Za-z0-9_\-]{8,}"),  # OpenAI-style keys
    re.compile(r"(?i)(://[^/\s:@]+:)[^@\s/]+(?=@)"),  # user:password@ in URLs
)
_MIN_EXACT = 8
_SECRET_NAME = re.compile(r"token|secret|passw(or)?d|api[-_]?key|auth|cookie|credential", re.I)
_SECRET_ENV = re.compile(r"(?i)(api_?key|secret|password|token)$")


_LIVE: dict[int, Callable[[], Iterable[str]]] = {}


class live_values:
    """While entered, every record is also redacted of the values ``provider()`` returns (a
    call's sensitive variables); read when each record is logged."""

    def __init__(self, provider: Callable[[], Iterable[str]]) -> None:
        self.provider = provider

    def __enter__(self) -> live_values:
        _LIVE[id(self)] = self.provider
        return self

    def __exit__(self, *exc: object) -> None:
        _LIVE.pop(id(self), None)


def _live() -> list[str]:
    out: list[str] = []
    for provider in list(_LIVE.values()):
        out.extend(provider())
    return out


def is_secret_name(name: str) -> bool:
    """``name`` (a metadata key, a header, a key of a request body) looks like it holds a
    credential: token, secret, password, api key, auth(orization), cookie, credential."""
    return _SECRET_NAME.search(name) is not None


def secrets_from_env(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables that hold secrets (``*_API_KEY``, ``*_PASSWORD``...)."""
    env = os.environ if env is None else env
    return [v for k, v in env.items() if _SECRET_ENV.search(k) and len(v) >= _MIN_EXACT]


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with credentials replaced by ``<redacted>``."""
    for value in sorted(set(secrets), key=len, reverse=True):
        if value:
            text = text.replace(value, REDACTED)
    for rx in _PATTERNS:
        text = rx.sub(lambda m: m.group(1) + REDACTED, text)
    return text


_QUERY_SECRET = re.compile(
    r"(?i)([?&](?:[a-z0-9_.-]*[-_.])?(?:key|apikey|token|secret|passw(?:or)?d|sig|signature|"
    r"auth|authorization|credentials?)=)[^&#]*"
)
_URL_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^/@:?#]*:)[^/@?#]*(?=@)", re.I)


def url_for_log(url: str) -> str:
    """``url`` as a trace or log may show it: the password of its userinfo and the values of
    its credential-like query parameters (``key``, ``api_key``, ``access_token``, ``sig``,
    ``password``...) replaced by ``<redacted>``; the rest (host, path, other parameters) kept."""
    url = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED, url)
    return _QUERY_SECRET.sub(lambda m: m.group(1) + REDACTED, url)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and exception text) without credentials."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Also redact these exact values (and, for ``user:password`` pairs, their base64).
        Values shorter than 8 characters are only redacted where a pattern finds them (so a
        password such as ``voxflow`` does not hide the app name everywhere)."""
        for s in secrets:
            if s and ":" in s:
                self.secrets.add(base64.b64encode(s.encode()).decode())
            elif s and len(s) >= _MIN_EXACT:
                self.secrets.add(s)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw text, still redacted
            message = str(record.msg)
        secrets = self.secrets.union(_live()) if _LIVE else self.secrets
        record.msg = redact_text(message, secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text, secrets)
        return True


def install_redaction(secrets: Iterable[str] = ()) -> RedactingFilter:
    """Put one :class:`RedactingFilter` on every root handler (records of every logger pass
    there); later calls add ``secrets`` to it."""
    root = logging.getLogger()
    for handler in root.handlers:
        for f in handler.filters:
            if isinstance(f, RedactingFilter):
                f.add(secrets)
                return f
    flt = RedactingFilter([*secrets_from_env(), *secrets])
    for handler in root.handlers:
        handler.addFilter(flt)
    return flt
