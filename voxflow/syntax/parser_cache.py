"""A per-user cache of the built LALR parser, so a command does not rebuild it on every run.

Building the parser from ``grammar/voxflow.lark`` (its LALR tables) takes ~0.4 s of CPU; loading
the saved tables takes ~0.05 s. Lark saves them with :mod:`pickle`, and unpickling runs code, so
the file is only read from a directory that this user created: ``$XDG_CACHE_HOME/voxflow``
(``~/.cache/voxflow`` when unset), mode 0700, owned by this user and not a symlink, and the file
itself must be a regular file of this user that nobody else can write. Its name carries a hash of
the grammar, the parser options, the Lark and the Python version, so a new grammar or library gets
a new file. Anything wrong (no home, a read-only disk, a directory or file of another user, a
corrupt or truncated file) means the parser is built as before; the cache never makes a command
fail. The file is written to a temporary name and renamed, so a concurrent run never reads half
of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lark
from lark import Lark

__all__ = ["CACHE_FORMAT", "cache_dir", "cache_file", "cached_lark"]

_GIVEN_AT_LOAD = ("transformer", "postlex", "lexer_callbacks", "edit_terminals", "_plugins")
"""Lark options that are objects of ours: not saved (``load`` passes them again)."""

CACHE_FORMAT = "1"
"""Part of every cache file's key: bump it when what is saved changes meaning."""


def cache_dir() -> Path | None:
    """This user's voxflow cache directory, created (mode 0700) if missing; None when it cannot
    be created or is not safe to read code from (not a directory, a symlink, another user's)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative value is ignored
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    path = Path(base) / "voxflow"
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            return None
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(path, 0o700)  # ours, made by hand or an older umask: close it
    except OSError:
        return None
    return path


def cache_file(directory: Path, grammar: str, key: str) -> Path:
    """The file for the parser of ``grammar`` built with ``key`` (its options) in ``directory``."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    parts = (CACHE_FORMAT, lark.__version__, version, key, grammar)
    digest = hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:32]
    return directory / f"parser-{digest}.pickle"


def _safe_to_read(path: Path) -> bool:
    """True when ``path`` is a regular file of this user that only this user can write."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (
        stat.S_ISREG(info.st_mode)
        and info.st_uid == os.geteuid()
        and not stat.S_IMODE(info.st_mode) & 0o022
    )


def _load(path: Path, load: Callable[[Any], Lark]) -> Lark | None:
    """The parser saved in ``path``, or None (no file, not safe, unreadable or corrupt)."""
    if not _safe_to_read(path):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as f:
            return load(f)
    except Exception:  # a corrupt or truncated pickle raises anything: rebuild instead
        return None


def _save(path: Path, parser: Lark) -> None:
    """Save ``parser`` to ``path`` through a temporary file; failures are ignored."""
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".parser-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            parser.save(f, _GIVEN_AT_LOAD)
        os.replace(tmp, path)
    except OSError:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def cached_lark(
    grammar: str, key: str, build: Callable[[], Lark], load: Callable[[Any], Lark]
) -> Lark:
    """The parser of ``grammar``: loaded with ``load(file)`` from this user's cache when a safe,
    intact copy is there, else ``build()`` and saved for the next run. ``key`` names everything
    besides the grammar that the saved tables depend on (the options given to ``build``)."""
    directory = cache_dir()
    if directory is None:
        return build()
    path = cache_file(directory, grammar, key)
    loaded = _load(path, load)
    if loaded is not None:
        return loaded
    parser = build()
    _save(path, parser)
    return parser
