"""Decision-level vetoes scored offline on ``bench/speech.py``'s recorded decisions.

    .venv/bin/python bench/speech_vetoes.py FILE.jsonl [FILE.jsonl ...]
        [--max-loop-phones 1.5] [--max-frames-per-phone 25] [--min-margin 1.4]

``bench/speech.py --decisions FILE`` records every decision with its confidence features. A veto
that only rejects (as ``stt_confidence.stretched`` does: it is not part of the likely rule, so the
audio decided on does not change) is scored on such a record exactly: a result the record
accepted is rejected when a veto given here holds, a rejected one stays rejected (its check was
never searched, so a veto looser than the one recorded cannot be scored this way: run the bench).
Prints, per file and condition, correct / misroute / out-of-grammar -> nomatch as the bench
counts them (a phrase is right when it names the same choice as the phrase said), and every
result the vetoes turn into ``nomatch``. docs/speech.md, "A bigram phone loop with two vetoes".
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from speech import OUT_OF_GRAMMAR, grammars


def _choices() -> dict[str, dict[str, str]]:
    """Per grammar (``Grammar.where``), each phrase's choice."""
    return {g.where: {p: value for value, ps in g.choices for p in ps} for g in grammars()}


def vetoed(features: dict[str, float], args: argparse.Namespace) -> list[str]:
    """The vetoes given in ``args`` that hold for ``features`` (empty: none)."""
    out = []
    if args.max_loop_phones is not None and features["loop_phones"] > args.max_loop_phones:
        out.append("loop_phones")
    fpp = args.max_frames_per_phone
    if fpp is not None and features["frames_per_phone"] > fpp:
        out.append("frames_per_phone")
    if args.min_margin is not None and features["margin"] < args.min_margin:
        out.append("margin")
    return out


def score(path: Path, args: argparse.Namespace) -> list[str]:
    """The table's lines for one record, and the results the vetoes rejected."""
    choices, oog = _choices(), set(OUT_OF_GRAMMAR)
    counts: dict[str, Counter[str]] = {}
    rejected: list[str] = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        snr, voice, rate, where, said = row["utterance"]
        decision, c = row["decision"], counts.setdefault(snr, Counter())
        text = decision["text"]
        why = vetoed(decision["features"], args) if text else []
        if why:
            kind = "out-of-grammar" if said in oog else "in-grammar"
            rejected.append(f"  {snr} {voice} {rate} {where} {said!r} -> {text!r} ({kind}): {why}")
            text = ""
        if said in oog:
            c["oog"] += 1
            c["oog_nomatch"] += not text
        else:
            c["in"] += 1
            named = choices[where].get(text)
            c["correct"] += named == choices[where][said]
            c["misroute"] += bool(text) and named != choices[where][said]
    lines = [f"{path}:"]
    for snr, c in counts.items():
        lines.append(
            f"  {snr:>5}: {100 * c['correct'] / c['in']:.1f} / {100 * c['misroute'] / c['in']:.1f}"
            f" / {100 * c['oog_nomatch'] / c['oog']:.1f} %  (in-grammar n={c['in']}, "
            f"out-of-grammar n={c['oog']})"
        )
    return lines + rejected


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--max-loop-phones", type=float, default=None)
    ap.add_argument("--max-frames-per-phone", type=float, default=None)
    ap.add_argument("--min-margin", type=float, default=None)
    args = ap.parse_args()
    print("correct / misroute / out-of-grammar -> nomatch")
    for path in args.files:
        print("\n".join(score(path, args)))


if __name__ == "__main__":
    main()
