"""The static prompts of a flow: what its ``say`` steps and input prompts speak on every call.

A prompt is static when its template has no jinja syntax at all (no ``{``): the runtime then
speaks its source as is (``_Machine.render``), so a worker can synthesize it before any call
(``FlowServer`` warms the prompt cache with them)."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

from voxflow.ir.expressions import Template
from voxflow.ir.models import Flow
from voxflow.ir.steps import GatherStep, RecordStep, SayStep

__all__ = ["StaticPrompt", "iter_models", "static_prompts"]

StaticPrompt = tuple[str, str | None]
"""(text, voice): the text spoken and the voice the runtime passes to the TTS (None: its own)."""


def static_prompts(flow: Flow) -> list[StaticPrompt]:
    """Every distinct static prompt of ``flow`` (states, handlers, subflows), in source order."""
    seen: dict[StaticPrompt, None] = {}
    default = flow.config.voice
    for node in iter_models(flow):
        if isinstance(node, SayStep):
            templates: tuple[Template | None, ...] = (node.text,)
            voice = node.voice or default
        elif isinstance(node, GatherStep):
            templates, voice = (node.prompt, *node.reprompts), node.voice or default
        elif isinstance(node, RecordStep):
            templates, voice = (node.prompt,), default
        else:
            continue
        for t in templates:
            if t is not None and t.source.strip() and "{" not in t.source:
                seen.setdefault((t.source, voice), None)
    return list(seen)


def iter_models(value: object) -> Iterator[BaseModel]:
    """``value`` and every model nested in it (fields, tuples, lists, dict values), depth first
    in field order (source order for a flow)."""
    if isinstance(value, BaseModel):
        yield value
        for name in type(value).model_fields:
            yield from iter_models(getattr(value, name))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from iter_models(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_models(item)
