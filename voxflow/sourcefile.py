"""Reading flow files: raw bytes or a path to a :class:`~voxflow.source.Source`, or a diagnostic.

:func:`decode_source` / :func:`read_source` return a ``VF004``
:class:`~voxflow.diagnostics.Diagnostic` for binary, non-UTF-8 or oversized input (``VF002`` for a
missing file); they never raise for bad content. :func:`read_regular_bytes` reads any input
file (a scenario, a flow) the same safe way, and :func:`walk_files` lists a directory's files
without opening what is not a regular file (a FIFO would block, a device never ends).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from voxflow.diagnostics import Diagnostic, Severity
from voxflow.source import MAX_SOURCE_BYTES, Source, Span

__all__ = [
    "NOT_REGULAR",
    "PathError",
    "collect_flow_files",
    "decode_source",
    "read_problem",
    "read_regular_bytes",
    "read_source",
    "walk_files",
]

log = logging.getLogger(__name__)

NOT_REGULAR = "not a regular file (a device, pipe or socket is never read)"


def decode_source(
    name: str, data: bytes, *, max_bytes: int = MAX_SOURCE_BYTES
) -> Source | Diagnostic:
    """Decode ``data`` as a UTF-8 flow file, or return a VF004 diagnostic explaining why not."""

    def fail(message: str, span: Span, hint: str | None = None) -> Diagnostic:
        return Diagnostic(Severity.ERROR, "VF004", span, message, hint, name)

    if len(data) > max_bytes:
        return _too_large(name, len(data), max_bytes)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    nul = data.find(b"\x00")
    if nul != -1:
        line = data.count(b"\n", 0, nul) + 1
        return fail(
            "file looks binary (it contains a NUL byte), not a .flow source",
            Span(line, 1, line, 2),
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode("utf-8", errors="replace")
        line = good.count("\n") + 1
        col = len(good) - (good.rfind("\n") + 1) + 1
        return fail(
            f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            Span(line, col, line, col + 1),
            "save the file as UTF-8",
        )
    return Source(name, text.replace("\r\n", "\n"))


class _NotRegular(Exception):
    """The path is a device, FIFO or socket."""


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


def _read_regular(name: str, max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes of the regular file ``name`` (a FIFO is opened without
    blocking and refused, like a device: ``stat`` says 0 bytes for ``/dev/zero``)."""
    if "\x00" in name:
        raise ValueError("embedded NUL")
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(name)
        if not stat.S_ISREG(mode):
            raise _NotRegular(name)
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise _TooLarge(size)
        return f.read(max_bytes + 1)  # capped: the file may grow while it is read


def _too_large(name: str, size: int, max_bytes: int) -> Diagnostic:

    return Diagnostic(
        Severity.ERROR,
        "VF004",
        Span(1, 1, 1, 2),
        f"file too large ({size} bytes; the limit is {max_bytes} bytes)",
        "split the flow into included files",
        name,
    )


def read_source(
    path: str | os.PathLike[str], *, max_bytes: int = MAX_SOURCE_BYTES
) -> Source | Diagnostic:
    """Read and decode a flow file; unreadable files become VF002/VF004 diagnostics."""

    name = os.fspath(path)
    try:
        data = _read_regular(name, max_bytes)
    except FileNotFoundError:
        return Diagnostic(
            Severity.ERROR, "VF002", Span(1, 1, 1, 2), f"file not found: {name}", None, name
        )
    except IsADirectoryError:
        return Diagnostic(
            Severity.ERROR, "VF004", Span(1, 1, 1, 2), f"is a directory: {name}", None, name
        )
    except _TooLarge as exc:
        return _too_large(name, exc.size, max_bytes)
    except _NotRegular:
        return Diagnostic(
            Severity.ERROR,
            "VF004",
            Span(1, 1, 1, 2),
            f"not a regular file: {name} (a device, pipe or socket is never read)",
            None,
            name,
        )
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "invalid file name"
        return Diagnostic(
            Severity.ERROR, "VF004", Span(1, 1, 1, 2), f"cannot read {name}: {why}", None, name
        )
    return decode_source(name, data, max_bytes=max_bytes)


def read_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be read as a flow file (:func:`read_source`'s one-line message, e.g.
    ``not a regular file: x.flow (a device, pipe or socket is never read)``), or None."""
    checked = read_source(path)
    return checked.message if isinstance(checked, Diagnostic) else None


def read_regular_bytes(path: str | os.PathLike[str], max_bytes: int = MAX_SOURCE_BYTES) -> bytes:
    """The bytes of the regular file ``path``; an :class:`OSError` with a one-line ``strerror``
    for anything else (a FIFO is opened without blocking and refused, as a device is) or a file
    over ``max_bytes``."""
    name = os.fspath(path)
    try:
        data = _read_regular(name, max_bytes)
    except _NotRegular:
        raise OSError(errno.EINVAL, NOT_REGULAR, name) from None
    except _TooLarge as exc:
        msg = f"file too large ({exc.size} bytes; the limit is {max_bytes} bytes)"
        raise OSError(errno.EFBIG, msg, name) from None
    except ValueError:
        raise OSError(errno.EINVAL, "invalid file name", name) from None
    if len(data) > max_bytes:
        msg = f"file too large (over {max_bytes} bytes; the limit is {max_bytes} bytes)"
        raise OSError(errno.EFBIG, msg, name)
    return data


def walk_files(
    root: Path, match: Callable[[Path], bool], on_skip: Callable[[str], None]
) -> list[Path]:
    """The regular files under the directory ``root`` whose path ``match``es, sorted, leaving out
    hidden ones (a part of the path below ``root`` starting with ``.``). A matching entry that is
    not a regular file (a FIFO, socket, device, a link to one or a dangling link) is never opened:
    ``on_skip`` gets a one-line ``skipped PATH: why``; a matching directory is passed over."""
    out: list[Path] = []
    for p in sorted(root.rglob("*")):
        if any(part.startswith(".") for part in p.relative_to(root).parts) or not match(p):
            continue
        try:
            mode = os.stat(p).st_mode  # follows links: a link to a regular file is one
        except OSError as exc:
            on_skip(f"skipped {p}: {exc.strerror or exc}")
            continue
        if stat.S_ISREG(mode):
            out.append(p)
        elif not stat.S_ISDIR(mode):
            on_skip(f"skipped {p}: {NOT_REGULAR}")
    return out


class PathError(Exception):
    """A command-line path that does not exist or holds no flow files (a usage error)."""


def _is_flow(path: Path) -> bool:
    return path.suffix == ".flow"


def collect_flow_files(
    paths: Iterable[str | os.PathLike[str]], on_skip: Callable[[str], None] | None = None
) -> list[Path]:
    """Files named directly plus every ``*.flow`` under named directories (sorted, deduplicated).
    A ``*.flow`` in a directory that is not a regular file (a FIFO, a link to a device) is never
    read: ``on_skip`` (default: a logged warning) gets ``skipped PATH: why``.

    Raises :class:`PathError` for a path that does not exist or a directory without flow files.
    """
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = walk_files(path, _is_flow, on_skip or log.warning)
            if not found:
                raise PathError(f"no .flow files under '{raw}'")
            candidates = found
        elif path.exists():
            candidates = [path]
        else:
            raise PathError(f"no such file or directory: '{raw}'")
        for p in candidates:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                out.append(p)
    return out
