"""voxflow.syntax: the parser (Lark LALR with indentation), the AST, and the AST builder."""

from __future__ import annotations

from voxflow.syntax.parser import load_program, parse_module, parse_or_raise

__all__ = ["load_program", "parse_module", "parse_or_raise"]
