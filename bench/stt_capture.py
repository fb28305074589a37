"""``bench/calls.py --stt-log FILE``: the worker's spoken-answer decisions, and the audio of any
that names a phrase the caller did not say.

Every decision is logged by ``stt_pocketsphinx`` at DEBUG (grammar path, n-best, confidence, the
check's path and n-best, features, which decoders, waits). The bench's speakers all say
``expected`` ("billing"), so a decision naming another phrase is a misroute: the audio the
stream was fed (16 kHz pcm16) is written beside the log as ``FILE.<n>.<phrase>.pcm`` so it can be
decided again offline (:func:`replay`): the same answer there points at the audio (the media
path), another at the decoders (their state or a race).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from voxflow.media import stt_pocketsphinx
from voxflow.media.stt_pocketsphinx import PocketSphinxStream, PocketSphinxSTT
from voxflow.voice.providers import Transcript

__all__ = ["capture", "replay", "zero_runs"]


def capture(path: str, expected: str) -> None:
    """Log every decision to ``path`` and keep the audio of those naming neither ``expected``
    nor nothing (bench only: ``PocketSphinxStream.feed``/``finish`` wrapped)."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    stt_pocketsphinx.log.addHandler(handler)
    stt_pocketsphinx.log.setLevel(logging.DEBUG)
    feed, finish = PocketSphinxStream.feed, PocketSphinxStream.finish
    audio: dict[int, bytearray] = {}
    kept = [0]

    async def feeding(self: PocketSphinxStream, pcm: bytes) -> None:
        audio.setdefault(id(self), bytearray()).extend(pcm)
        await feed(self, pcm)

    async def finishing(self: PocketSphinxStream) -> Transcript:
        try:
            result = await finish(self)
        finally:
            fed = audio.pop(id(self), bytearray())
        stt_pocketsphinx.log.debug("fed %r: %d runs of exact zeros (40 ms or more) amid sound",
                                   result.text, zero_runs(bytes(fed)))  # fmt: skip
        if result.text not in ("", expected):
            kept[0] += 1
            _keep(Path(f"{path}.{kept[0]}.{result.text.replace(' ', '_')}.pcm"), bytes(fed))
        return result

    setattr(PocketSphinxStream, "feed", feeding)  # noqa: B010 - bench only: a method, wrapped
    setattr(PocketSphinxStream, "finish", finishing)  # noqa: B010 - likewise


def zero_runs(pcm: bytes, least: int = 640) -> int:
    """Runs of ``least`` or more samples of exact zero with sound before and after them: time
    without packets fed as silence (``CallInbound._fill_silence``) inside what was said."""
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], "<i2")
    zero = np.concatenate([[False], x == 0, [False]])
    edges = np.flatnonzero(np.diff(zero.astype(np.int8)))
    starts, ends = edges[::2], edges[1::2]
    inside = (starts > 0) & (ends < len(x))
    return int(np.sum((ends - starts >= least) & inside))


def _keep(out: Path, pcm: bytes) -> None:
    """Write a misroute's audio (a few hundred kB: once per misroute, on the worker's loop)."""
    out.write_bytes(pcm)
    stt_pocketsphinx.log.debug("misroute: the audio fed is in %s", out)


async def replay(pcm: bytes, phrases: list[str], min_confidence: float) -> Transcript:
    """Decide ``pcm`` (16 kHz pcm16) again on fresh decoders, fed in 20 ms pieces."""
    stt = PocketSphinxSTT(min_confidence=min_confidence)
    stream = await stt.open_stream(phrases=phrases)
    try:
        for i in range(0, len(pcm), 640):
            await stream.feed(pcm[i : i + 640])
        return await stream.finish()
    finally:
        await stream.aclose()
