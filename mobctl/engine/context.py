"""The context that conditions and templates read, and path resolution (flow-semantics §7.1,
§8.1-§8.2): a path is present (JSON null included), absent, or a structural fault."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mobctl.definition.references import (
    LoopRef,
    ParamsRef,
    StepRef,
    Unparsable,
    is_index,
    parse_reference,
)


@dataclass(frozen=True)
class Context:
    params: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, Any] = field(default_factory=dict)
    loops: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def build_context(
    params: dict[str, Any],
    root_outputs: dict[str, Any],
    loop_outputs: dict[str, list[dict[str, Any]]],
    current_iteration: dict[str, Any] | None = None,
) -> Context:
    """``steps``: root outputs, then each loop's last iteration (loop ids sorted), then the
    current iteration's outputs for a step inside a body frame."""
    steps = dict(root_outputs)
    for loop_id in sorted(loop_outputs):
        history = loop_outputs[loop_id]
        if history:
            steps.update(history[-1])
    if current_iteration:
        steps.update(current_iteration)
    return Context(params, steps, loop_outputs)


@dataclass(frozen=True, slots=True)
class Present:
    value: Any


@dataclass(frozen=True, slots=True)
class Absent:
    pass


@dataclass(frozen=True, slots=True)
class Fault:
    detail: str


ABSENT = Absent()
Resolution = Present | Absent | Fault


def resolve(path: str, context: Context) -> Resolution:
    reference = parse_reference(path)
    if isinstance(reference, Unparsable):
        return Fault(f"unparsable context reference '{path}': {reference.reason}")
    if isinstance(reference, ParamsRef):
        return _walk(path, context.params, reference.segments)
    if isinstance(reference, StepRef):
        if reference.step_id not in context.steps:
            return ABSENT
        return _walk(path, context.steps[reference.step_id], reference.segments)
    return _loop(path, reference, context)


def _loop(path: str, reference: LoopRef, context: Context) -> Resolution:
    history = context.loops.get(reference.loop_id)
    if history is None or reference.iteration >= len(history):
        return ABSENT
    outputs = history[reference.iteration]
    if reference.step_id not in outputs:
        return ABSENT
    return _walk(path, outputs[reference.step_id], reference.segments)


def _walk(path: str, value: Any, segments: tuple[str, ...]) -> Resolution:
    for segment in segments:
        if isinstance(value, dict):
            if segment not in value:
                return Fault(f"context reference '{path}' has no value at segment '{segment}'")
            value = value[segment]
        elif isinstance(value, list):
            if not is_index(segment) or int(segment) >= len(value):
                return Fault(f"context reference '{path}' has no value at segment '{segment}'")
            value = value[int(segment)]
        else:
            return Fault(
                f"context reference '{path}' cannot index segment '{segment}' into a "
                "non-object/array value"
            )
    return Present(value)
