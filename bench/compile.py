"""Compile-time benchmark: generated flows of 100, 1,000 and 10,000 states.

For each size prints the median parse (Lark + AST), check, and lowering time, the median of a
bare Lark parse of the same text (same grammar and lexer, parse tree only, no AST), the ratio
of the whole compile to that bare parse, and the per-state scaling between sizes.

    .venv/bin/python bench/compile.py [--repeats N] [--sizes 100,1000,10000]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

from voxflow.compiler.frontdoor import gc_paused
from voxflow.source import Source
from voxflow.spec.options import template_names
from voxflow.syntax.parser import bare_parser, load_program


def generate(n: int) -> str:
    """A flow of ``n`` states (menu / say+if / http / dial in turn) under scoped handlers;
    transitions only go forward, so the checker's loop rule is satisfied."""
    out = [
        "flow bench:",
        "    timeout 5s",
        "    retries 3",
        "",
        "on error:",
        '    say "Sorry."',
        '    hangup "error"',
        "",
        "state done:",
        '    say "Goodbye."',
        "    hangup",
        "",
        "scope all:",
        "    on noinput, nomatch:",
        '        say "Sorry, again."',
        "        retry",
        "    on exhausted -> done",
        '    anytime "operator", 0 -> done',
        "",
    ]
    for i in range(n):
        nxt = f"s{i + 1}" if i + 1 < n else "done"
        alt = f"s{i + 7}" if i + 7 < n else "done"
        kind = i % 4
        out.append(f"    state s{i}:")
        if kind == 0:
            out += [
                f'        menu "Press 1 for {nxt} or 2 for {alt}.":',
                f'            1, "next" -> {nxt}',
                f'            2, "other", /alt(ernative)?/i -> {alt}',
            ]
        elif kind == 1:
            out += [
                f'        say "State {i}, caller {{{{ call.caller }}}}." bargein dtmf',
                f"        set n{i} = len(call.caller) * 2 + {i}",
                f"        if n{i} > 10 and not (n{i} in [1, 2, 3]):",
                f"            goto {nxt}",
                "        else:",
                f"            goto {alt}",
            ]
        elif kind == 2:
            out += [
                f'        http get "https://example.com/api/{{{{ call.id }}}}/{i}" into r{i}:',
                "            timeout 3s",
                f"            on ok -> {nxt}",
                f"            on error, timeout -> {alt}",
            ]
        else:
            out += [
                f'        dial "PJSIP/agent{i}" timeout 20s:',
                f"            on answered -> {nxt}",
                f"            on busy, noanswer, failed -> {alt}",
            ]
    return "\n".join(out) + "\n"


GC_PAUSED = True


def _median(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time; the GC is paused exactly as compile_flow pauses it, for every stage
    and for the bare parse alike (``--gc`` leaves it running everywhere instead)."""
    times, result = [], None
    for _ in range(repeats):
        result = None
        template_names.cache_clear()  # every repeat pays for its templates
        gc.collect()
        with gc_paused() if GC_PAUSED else contextlib.nullcontext():
            t0 = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--gc", action="store_true", help="leave the garbage collector running")
    args = ap.parse_args()
    global GC_PAUSED
    GC_PAUSED = not args.gc
    sizes = [int(s) for s in args.sizes.split(",")]

    from voxflow.check import check
    from voxflow.ir.lower import lower_program

    bare = bare_parser()
    load_program(Source("warm.flow", generate(8)))  # build the cached parsers
    print(
        f"checker: voxflow.check.check; repeats={args.repeats};"
        f" gc {'paused' if GC_PAUSED else 'running'}"
    )
    header = (
        f"{'states':>7} {'lines':>7} {'bare':>9} {'parse':>9} {'check':>9} {'lower':>9}"
        f" {'compile':>9} {'ratio':>6} {'us/state':>9}"
    )
    print(header)
    rows = []
    for n in sizes:
        text = generate(n)
        source = Source(f"bench{n}.flow", text)
        t_bare, _ = _median(functools.partial(bare.parse, text), args.repeats)
        t_parse, (program, diags) = _median(functools.partial(load_program, source), args.repeats)
        assert program is not None and not diags, diags[:3]
        t_check, cdiags = _median(functools.partial(check, program, source), args.repeats)
        errors = [d for d in cdiags if d.is_error]
        assert not errors, errors[:3]
        t_lower, (flow, ldiags) = _median(functools.partial(lower_program, program), args.repeats)
        assert flow is not None and len(flow.states) == n + 1, ldiags[:3]
        total = t_parse + t_check + t_lower
        rows.append((n, total))
        print(
            f"{n:>7} {text.count(chr(10)):>7} {t_bare * 1e3:>7.1f}ms {t_parse * 1e3:>7.1f}ms"
            f" {t_check * 1e3:>7.1f}ms {t_lower * 1e3:>7.1f}ms {total * 1e3:>7.1f}ms"
            f" {total / t_bare:>5.2f}x {total / n * 1e6:>9.1f}"
        )
    for (n1, t1), (n2, t2) in itertools.pairwise(rows):
        print(
            f"scaling {n1} -> {n2} states ({n2 / n1:.0f}x): time x{t2 / t1:.1f}"
            f" (per-state cost x{(t2 / n2) / (t1 / n1):.2f}; 1.00 = linear)"
        )


if __name__ == "__main__":
    main()
