"""One-line messages the commands share, in a module that imports nothing heavy (``voxflow fmt``
uses it without loading the compiler)."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

__all__ = ["EXIT_CONFIG", "fail", "warn"]

EXIT_CONFIG = 2
"""Bad options or settings (``voxflow.toml``, environment): ``run``, ``test``, ``replay``."""


def warn(message: str) -> None:
    """A one-line ``warning: ...`` on stderr (a file a directory walk skipped)."""
    click.echo(f"warning: {message}", err=True)


def fail(message: str, code: int) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
