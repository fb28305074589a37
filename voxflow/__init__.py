"""voxflow: a call-flow language, its interpreter, and the ARI/RTP core under it."""

from __future__ import annotations

__all__: list[str] = []
__version__ = "0.1.0"
