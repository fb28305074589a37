"""One offline recogniser per test process, for the tests that only need *a* recogniser.

Building a pocketsphinx decoder takes ~0.5 s of CPU (three per default pool): with every speech
test building its own, ~115 builds took ~50 s of the suite's CPU (about a seventh of it, on a
2-core machine that runs the suite CPU-bound). Sharing one is what a worker does with its calls:
each recognition starts its decoders afresh (``stt_pool.start_utterance``: features and CMN from
the prior), a grammar's pronunciation variants are added for the grammar's own words before it is
compiled, and the results do not depend on which recognition a decoder served before. A test that
counts builds, inspects the pool or needs other settings (fillers, a threshold, a pool size)
builds its own; so does a test's own ear (``media_rig._ORACLE``), which listens while the app's
recogniser is busy."""

from __future__ import annotations

import os

from voxflow.media.stt_pocketsphinx import PocketSphinxSTT

__all__ = ["shared_stt"]

_shared: list[PocketSphinxSTT] = []
_last_user = [""]


def shared_stt() -> PocketSphinxSTT:
    """The process's recogniser (the default settings and pool), every decoder it built free:
    a test that kept one (a stream never closed) fails the next test that asks, naming it."""
    if not _shared:
        _shared.append(PocketSphinxSTT())
    stt = _shared[0]
    stats = stt.stats()
    assert stats.free == stats.built, (
        f"{stats.built - stats.free} decoder(s) of the shared recogniser were not given back "
        f"by {_last_user[0] or 'an earlier test'}"
    )
    _last_user[0] = os.environ.get("PYTEST_CURRENT_TEST", "")
    return stt
