"""How a stream's audio is cut into pocketsphinx ``process_raw`` calls.

``process_raw`` holds the GIL for the whole call, so the recogniser hands a decoder one 10 ms
frame per call (docs/speech.md, "Decoder pool"). One exception: the first call of an utterance
(after ``start_utt``) must hold at least one whole analysis window (410 samples, 25.6 ms at
16 kHz). A first call shorter than that yields no frame, and pocketsphinx then decodes the whole
utterance differently (other acoustic scores from the first word on: measured with the wheel's
5.1.1, the same audio cut 320 + 320 + ... bytes against 820 + 320 + ... bytes), while any first
call of a window or more gives what 40 ms calls all along give. The decision's constants
(``stt_confidence``, ``stt_likely``) were fitted with 40 ms calls, so 10 ms calls cost right
answers until the first call was made whole (issue 18, session 10).
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["FIRST_SLICE_BYTES", "FRAME_BYTES", "slices"]

FRAME_BYTES = 16000 * 2 // 100  # one 10 ms decoder frame of 16 kHz pcm16
# an utterance's first call: 30 ms, the fewest whole frames that cover one 410-sample window
FIRST_SLICE_BYTES = 3 * FRAME_BYTES


def slices(data: bytes, size: int, *, first: bool) -> Iterator[bytes]:
    """``data`` in pieces of ``size`` bytes; when ``first`` (nothing of the utterance decoded
    yet) the first piece is ``FIRST_SLICE_BYTES`` (or more, when ``size`` is larger)."""
    start = max(size, FIRST_SLICE_BYTES) if first else size
    if data:
        yield data[:start]
    for i in range(start, len(data), size):
        yield data[i : i + size]
