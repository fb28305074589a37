"""One-line messages the commands share, in a module that imports nothing heavy (``voxflow fmt``
uses it without loading the compiler)."""

from __future__ import annotations

import click

__all__ = ["warn"]


def warn(message: str) -> None:
    """A one-line ``warning: ...`` on stderr (a file a directory walk skipped)."""
    click.echo(f"warning: {message}", err=True)
