"""What the confidence's phone loop costs per second of audio, per decoder configuration.

    .venv/bin/python bench/phone_loop.py [--configs default,topn=2,ds=2,nolm] [--rounds 4]
        [--snr clean,20]

The phone loop (``stt_pocketsphinx``'s ``_phones`` search: every phone, ``en-us-phone.lm.bin``) is
~55 % of a spoken decision's CPU (docs/speech.md, "A decision's CPU"). This bench decodes the same
utterances (espeak-ng, G.711 at 8 kHz upsampled to 16 kHz, clean and with white noise at 20 dB by
default, ``--snr``; the recogniser's dither; 10 ms per ``process_raw``) with the phone loop of a
decoder built per configuration (``name=value`` decoder options joined by ``+``, e.g.
``ds=2+topn=2``; ``nolm``: the phone loop without its phone language model; ``bigram``: with
its trigrams dropped, ``bigram_phone_lm``; ``default``:
pocketsphinx's defaults), the configurations taking turns ``--rounds`` times, and prints each one's
thread CPU per second of audio (median of the rounds), its ratio to the first, and how far its
path's score per frame moves from the first's (the confidence's ``ratio`` feature is the grammar's
score minus this one, per frame: docs/speech.md says which configurations kept the decisions).
Thread CPU, so other processes do not count; decoders are built alike otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voxflow.media import codecs, stt_phones, stt_pocketsphinx
from voxflow.media.tts_espeak import EspeakTTS
from voxflow.sandbox.audio import add_noise

SAID = ["billing", "operator", "pay my bill", "I want to leave a message", "sales please"]


async def _utterances(snrs: list[float | None]) -> list[bytes]:
    tts, out = EspeakTTS(sample_rate=8000), []
    rng = np.random.default_rng(0)
    for text in SAID:
        pcm = b"".join([c async for c in tts.synthesize(text)])
        for noisy in (pcm if snr is None else add_noise(pcm, snr, seed=1) for snr in snrs):
            line = codecs.ulaw_decode(codecs.ulaw_encode(bytes(3200) + noisy + bytes(8000)))
            wide = np.frombuffer(codecs.resample(line, 8000, 16000), "<i2").astype(np.float64)
            dithered = np.rint(wide + rng.normal(0.0, 8.0, len(wide)))
            out.append(np.clip(dithered, -32768, 32767).astype("<i2").tobytes())
    return out


def _decoder(spec: str) -> Any:
    import pocketsphinx

    options: dict[str, Any] = {}
    for item in spec.split("+"):
        if "=" in item:
            name, value = item.split("=", 1)
            options[name] = float(value) if "e" in value or "." in value else int(value)
    decoder = pocketsphinx.Decoder(
        samprate=16000,
        loglevel="FATAL",
        dither=False,
        cmn="live",
        cmninit=stt_pocketsphinx._CMN_PRIOR,
        **options,
    )
    if "nolm" in spec.split("+"):
        decoder.add_allphone_file(stt_phones.PHONES)
    elif "bigram" in spec.split("+"):
        decoder.add_allphone_file(stt_phones.PHONES, bigram_phone_lm())
    else:
        lm = os.path.join(pocketsphinx.get_model_path(), "en-us", "en-us-phone.lm.bin")
        decoder.add_allphone_file(stt_phones.PHONES, lm)
    decoder.activate_search(stt_phones.PHONES)
    return decoder


def bigram_phone_lm(path: str = "/tmp/voxflow-phone-bigram.arpa") -> str:
    """``en-us-phone.lm.bin`` without its trigrams (43 unigrams, 1509 bigrams, the bigrams'
    back-off weights dropped), written as ARPA to ``path``; returns ``path``. The phone-LM
    lookups are ~17 % of pocketsphinx's time in a decision (docs/speech.md, session 14)."""
    import pocketsphinx

    full = path + ".full"
    model = os.path.join(pocketsphinx.get_model_path(), "en-us", "en-us-phone.lm.bin")
    # the LogMath held while the model is used: ``NGramModel.readfile``'s own (or a temporary)
    # is freed at once, and the model then writes garbage or -inf probabilities
    logmath = pocketsphinx.LogMath()
    lm = pocketsphinx.NGramModel(pocketsphinx.Config(), logmath, model)
    lm.write(full, pocketsphinx.NGramModel.str_to_type("arpa"))
    out, section = [], ""
    for line in Path(full).read_text().splitlines():
        if line.startswith("\\"):
            section = line
        if line.startswith("ngram 3=") or section == "\\3-grams:":
            continue
        if section == "\\2-grams:" and line.strip() and not line.startswith("\\"):
            line = "\t".join(line.split("\t")[:3])  # probability, the two phones
        out.append(line)
    Path(path).write_text("\n".join(out) + "\n")
    return path


def _decode(decoder: Any, audio: list[bytes]) -> tuple[float, list[float]]:
    """Thread CPU (s) of decoding ``audio``, and each utterance's path score per frame."""
    t0, scores = time.thread_time(), []
    for pcm in audio:
        decoder.reinit_feat()
        decoder.start_utt()
        for at in range(0, len(pcm), 320):
            decoder.process_raw(pcm[at : at + 320], False, False)
        decoder.end_utt()
        hyp = decoder.hyp()
        score = decoder.get_logmath().log(hyp.score) if hyp is not None and hyp.score > 0 else 0
        scores.append(score / max(1, decoder.n_frames()))
    return time.thread_time() - t0, scores


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="default,topn=2,topn=3,ds=2,beam=1e-30+pbeam=1e-30,nolm")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--snr", default="clean,20", help="conditions, e.g. clean,20,10")
    args = ap.parse_args()
    snrs = [None if c == "clean" else float(c) for c in args.snr.split(",")]
    audio = await _utterances(snrs)
    seconds = sum(len(a) for a in audio) / 32000
    configs = args.configs.split(",")
    decoders = {c: _decoder(c) for c in configs}
    cpu: dict[str, list[float]] = {c: [] for c in configs}
    scores: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for c in configs:
            spent, scores[c] = _decode(decoders[c], audio)
            cpu[c].append(spent / seconds * 1000)
    load, n = os.getloadavg()[0], len(audio)
    print(f"{n} utterances, {seconds:.1f} s of audio, {args.rounds} rounds, load {load:.1f}")
    first = configs[0]
    base = statistics.median(cpu[first])
    for c in configs:
        ms = statistics.median(cpu[c])
        moved = [abs(a - b) for a, b in zip(scores[c], scores[first], strict=True)]
        print(
            f"{c:>24}: {ms:5.1f} ms CPU per s of audio (x{ms / base:.2f}); path score per frame "
            f"moved by {statistics.median(moved):.2f} median, {max(moved):.2f} max"
        )


if __name__ == "__main__":
    asyncio.run(main())
