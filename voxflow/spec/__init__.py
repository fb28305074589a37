"""voxflow.spec: the language's tables, below both the checker and the IR.

``options`` (which options each step and header takes, value kinds, symbols, template names),
``semantics`` (outcomes per step, handler resolution, implied transitions) and ``functions``
(the whitelist of functions and their types). Imports only :mod:`voxflow.syntax` (the AST).
"""

__all__: list[str] = []
