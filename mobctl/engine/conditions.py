"""Condition evaluation (flow-semantics §8.3): type-strict JSON equality, short-circuit logic.

An absent root makes a leaf false; a structural fault or an incomparable pair raises
:class:`ConditionError` (run-fatal for the caller).
"""

from __future__ import annotations

import json
from typing import Any

from mobctl.canonical import json_equal
from mobctl.definition.model import (
    AndCondition,
    Condition,
    EqCondition,
    GtCondition,
    InCondition,
    NotCondition,
    OrCondition,
)
from mobctl.engine.context import Absent, Context, Fault, resolve


class ConditionError(Exception):
    """The condition could not be evaluated; ``detail`` is the spec's wording."""

    def __init__(self, detail: str, *, unresolved: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.unresolved = unresolved

    def message(self, *, step: str | None = None, loop: str | None = None) -> str:
        """The run-fatal text for a step's condition or a loop's ``until``."""
        subject = f"step '{step}'" if step is not None else f"loop '{loop}' until condition"
        detail = (
            f"condition path did not resolve: {self.detail}" if self.unresolved else self.detail
        )
        return f"condition evaluation failed for {subject}: {detail}"


def evaluate(condition: Condition, context: Context) -> bool:
    if isinstance(condition, AndCondition):
        return all(evaluate(expr, context) for expr in condition.exprs)
    if isinstance(condition, OrCondition):
        return any(evaluate(expr, context) for expr in condition.exprs)
    if isinstance(condition, NotCondition):
        return not evaluate(condition.expr, context)
    resolution = resolve(condition.path, context)
    if isinstance(resolution, Absent):
        return False
    if isinstance(resolution, Fault):
        raise ConditionError(resolution.detail, unresolved=True)
    left = resolution.value
    if isinstance(condition, EqCondition):
        return json_equal(left, condition.value)
    if isinstance(condition, InCondition):
        return any(json_equal(left, value) for value in condition.values)
    right: Any = condition.value
    if _number(left) and _number(right):
        result = float(left) > float(right)
        lesser = float(left) < float(right)
    elif isinstance(left, str) and isinstance(right, str):
        result, lesser = left > right, left < right
    else:
        raise ConditionError(
            f"condition path '{condition.path}' value {_show(left)} is not comparable to "
            f"{_show(right)}",
            unresolved=False,
        )
    return result if isinstance(condition, GtCondition) else lesser


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
