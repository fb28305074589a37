"""voxflow.ir: the compiled flow (frozen pydantic models) and the compiler front door.

``from voxflow.ir import Flow, compile_flow``; the execution semantics are documented in
:mod:`voxflow.ir.models`.
"""

from __future__ import annotations

from voxflow.ir.compile import CompileResult, compile_file, compile_flow, load_flow
from voxflow.ir.models import *  # noqa: F403  (re-export the whole contract)
from voxflow.ir.models import __all__ as _models_all
from voxflow.spec.functions import FUNCTIONS, FunctionSig

__all__ = [
    "FUNCTIONS",
    "CompileResult",
    "FunctionSig",
    "compile_file",
    "compile_flow",
    "load_flow",
    *_models_all,
]
