"""voxflow.compiler: the front door above syntax, check and ir (as jinja's ``environment.py``
sits above its lexer, parser and compiler).

``compile_flow(text, path)`` = parse, check, lower (:mod:`voxflow.compiler.frontdoor`);
``project`` runs it over files and directories for ``voxflow validate`` and ``voxflow lint``.
"""

from __future__ import annotations

from voxflow.compiler.frontdoor import CompileResult, compile_file, compile_flow, load_flow

__all__ = ["CompileResult", "compile_file", "compile_flow", "load_flow"]
