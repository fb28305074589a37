"""voxflow.ir: the compiled flow (frozen pydantic models) and lowering AST -> IR.

``from voxflow.ir import Flow``; the execution semantics are documented in
:mod:`voxflow.ir.models`. The front door that parses, checks and lowers is
:func:`voxflow.compiler.compile_flow` (above this package).
"""

from __future__ import annotations

from voxflow.ir.models import *  # noqa: F403  (re-export the whole contract)
from voxflow.ir.models import __all__ as _models_all

__all__ = [*_models_all]
