"""Where an ``include`` may point: a ``.flow`` file inside the flow's project, nothing else.

``include "voxflow:NAME.flow"`` names a file shipped with voxflow (``voxflow/stdlib``). Otherwise
the project root is the nearest directory above the root flow that holds a ``voxflow.toml``,
else the root flow's own directory. An include is a relative path (from the including file)
to a ``.flow`` file whose real path (symlinks resolved) stays under the root. Anything else is
refused at the include line before any byte is read, so a diagnostic never shows a file that
is not a flow (``include "/etc/shadow"`` under ``voxflow lint`` of an untrusted change).
"""

from __future__ import annotations

import os
import re

__all__ = ["INCLUDE_SUFFIX", "STDLIB_PREFIX", "project_root", "resolve_include"]

INCLUDE_SUFFIX = ".flow"
STDLIB_PREFIX = "voxflow:"
_STDLIB_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.flow")
_MAX_UP = 64  # directories searched upwards for voxflow.toml


def project_root(root_flow: str) -> str:
    """The project directory of the flow file ``root_flow`` (see module doc)."""
    start = os.path.dirname(os.path.abspath(root_flow))
    here = start
    for _ in range(_MAX_UP):
        if os.path.isfile(os.path.join(here, "voxflow.toml")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    return start


def resolve_include(
    root: str, including: str, target: str, stdlib: str | os.PathLike[str] = ""
) -> tuple[str, str | None]:
    """``(path, None)`` for an allowed include of ``target`` from the file ``including``, or
    ``("", why)`` when it is refused. ``voxflow:NAME.flow`` names a file of ``stdlib`` (the
    files shipped with voxflow), whose own includes stay inside ``stdlib``."""
    if "\x00" in target or not _encodable(target):
        return "", "the include path has characters no file name can have"
    stdlib = os.fspath(stdlib)
    if target.startswith(STDLIB_PREFIX):
        name = target[len(STDLIB_PREFIX) :]
        if not _STDLIB_NAME.fullmatch(name):
            return "", f"include {target!r}: 'voxflow:' names a shipped file, e.g. voicemail.flow"
        return os.path.join(stdlib, name), None
    if stdlib and _inside(os.path.realpath(including), os.path.realpath(stdlib)):
        root = stdlib
    if not target or os.path.isabs(target) or target.startswith("~"):
        return "", (
            f"include {target!r}: includes are relative paths inside the project, "
            "not absolute paths"
        )
    if not target.endswith(INCLUDE_SUFFIX):
        return "", f"include {target!r}: only {INCLUDE_SUFFIX} files can be included"
    path = os.path.normpath(os.path.join(os.path.dirname(including), target))
    if not _inside(os.path.realpath(path), os.path.realpath(root)):
        return "", f"include {target!r} is outside the project directory {root}"
    return path, None


def _inside(real: str, real_root: str) -> bool:
    return os.path.commonpath([real, real_root]) == real_root


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
