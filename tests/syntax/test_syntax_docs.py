"""Every code example in docs/language.md parses (fragments of steps are wrapped in a state)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from voxflow.source import Source
from voxflow.syntax.parser import parse_module

DOC = Path(__file__).resolve().parents[2] / "docs" / "language.md"
BLOCKS = re.findall(r"```\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
TOP = ("flow", "state", "scope", "subflow", "include", "var", "on ", "anytime", "#")


def _wrap(block: str) -> str:
    if block.lstrip().startswith(TOP):
        return block
    body = "".join(f"    {line}\n" if line else "\n" for line in block.splitlines())
    return f"state example:\n{body}"


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_doc_example_parses(block: str) -> None:
    text = _wrap(block).replace("...", "hangup")
    module, diags = parse_module(Source("doc.flow", text))
    assert module is not None, [f"{d.span}: {d.message}" for d in diags]
