"""voxflow.media: RTP, codecs, jitter buffer, pacer, UDP transport, per-call externalMedia
(``callmedia.CallMedia``, ``callmedia.create_call_voice``), espeak-ng TTS, pocketsphinx STT, VAD.

Submodules are imported directly (``from voxflow.media.rtp import parse_rtp``) so that importing
the package stays cheap (no numpy/soxr/pocketsphinx load for users that only need one part).
"""

__all__: list[str] = []
