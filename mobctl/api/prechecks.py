"""Mistakes on the command line of a run, caught before the run exists (issue 13 item 5).

- ``--driver ROLE=...`` for a role that no step of the flow (nor its supervisor) has: the
  driver would never be used, and the roles that were meant would silently get ``echo``.
- ``params.X`` that the flow is certain to read but was not given. A param is *needed* when a
  path ``params.…`` that does not resolve in the given params (flow-semantics §8.2: a
  structural fault) is read by the message of a step that runs whenever the steps before it
  complete (a root step with no condition, outside any branch group, whose dependencies are
  such steps too: the render fails the step; a loop's body runs at least once, so its steps
  count the same way), or by the part of such a step's own condition that is always
  evaluated (the first operand of each ``and``/``or``: a run-fatal fault). A param read only
  in a branch, behind a condition or after a short-circuit may legitimately be absent, and
  is not required.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from mobctl.definition.model import (
    AndCondition,
    Condition,
    Flow,
    Frame,
    MobDefinition,
    NotCondition,
    OrCondition,
    RepeatUntilNode,
    StepNode,
    TextBlock,
)
from mobctl.definition.references import ParamsRef, parse_reference
from mobctl.definition.templates import TemplateSyntaxError, parse_template, placeholders
from mobctl.drivers.registry import split_role
from mobctl.engine.context import Context, Fault, resolve
from mobctl.engine.profiles import flow_roles
from mobctl.errors import UsageError
from mobctl.ids import shown_id


def check_run(
    definition: MobDefinition, flow_id: str, params: dict[str, Any], drivers: Sequence[str]
) -> None:
    """Refuse (:class:`UsageError`) driver roles the flow does not have and params it needs."""
    check_driver_roles(definition, flow_id, drivers)
    check_params(definition, flow_id, params)


def check_driver_roles(definition: MobDefinition, flow_id: str, drivers: Sequence[str]) -> None:
    roles = sorted(flow_roles(definition, flow_id))
    for spec in drivers:
        role, _ = split_role(spec)
        if role is not None and role not in roles:
            raise UsageError(
                f"--driver {shown_id(role)}=…: no step of flow '{flow_id}' of mob "
                f"'{definition.mob.id}' has the role '{shown_id(role)}'",
                hint=f"the roles of flow '{flow_id}': {', '.join(roles) or '(none)'}",
            )


def check_params(definition: MobDefinition, flow_id: str, params: dict[str, Any]) -> None:
    context = Context(params=params)
    missing: dict[str, list[str]] = {}  # the path after "params." -> who reads it
    for reader, path in needed_params(definition.flows[flow_id]):
        if isinstance(resolve(path, context), Fault):
            readers = missing.setdefault(path.removeprefix("params."), [])
            if reader not in readers:
                readers.append(reader)
    if missing:
        listed = "; ".join(f"{name} (read by {', '.join(who)})" for name, who in missing.items())
        raise UsageError(
            f"flow '{flow_id}' of mob '{definition.mob.id}' needs params that were not given: "
            f"{listed}",
            hint="pass each with -p KEY=VALUE (text), -P KEY=JSON or --params JSON",
        )


def needed_params(flow: Flow) -> Iterator[tuple[str, str]]:
    """(reader, ``params.…`` path) for every params path the flow is certain to read."""
    yield from _frame_params(flow, flow.frame())


def _frame_params(flow: Flow, frame: Frame) -> Iterator[tuple[str, str]]:
    """The params paths a frame certainly reads once it runs: its nodes whose dependencies
    are certain to complete (a loop's body runs at least once, so it counts)."""
    nodes = frame.nodes
    certain: set[str] = set()  # nodes that run whenever their dependencies complete
    reached: list[str] = []  # nodes whose own condition, or message, is then evaluated
    changed = True
    while changed:
        changed = False
        for node_id, node in nodes.items():
            if node_id in reached or not all(dep in certain for dep in node.depends_on):
                continue
            step = flow.steps.get(node.step_id) if isinstance(node, StepNode) else None
            if isinstance(node, StepNode) and (
                step is None or node.branch is not None or step.branch is not None
            ):
                continue  # a branch may lose: what it reads may be absent
            reached.append(node_id)
            if step is None or step.condition is None:
                certain.add(node_id)
            changed = True
    for node_id in sorted(reached, key=list(nodes).index):
        node = nodes[node_id]
        if isinstance(node, RepeatUntilNode):
            yield from _frame_params(flow, node.body)
            continue
        step = flow.steps[node.step_id]
        if step.condition is not None:
            for path in _evaluated_paths(step.condition):
                yield f"the condition of step '{node.step_id}'", path
            continue
        texts = [step.message] if isinstance(step.message, str) else step.message
        for text in texts:
            if isinstance(text, TextBlock):
                text = text.text
            if isinstance(text, str):
                for path in _template_paths(text):
                    yield f"step '{node.step_id}'", path


def _evaluated_paths(condition: Condition) -> Iterator[str]:
    """The params paths a condition always evaluates (its first operands, through ``not``)."""
    while isinstance(condition, AndCondition | OrCondition | NotCondition):
        if isinstance(condition, NotCondition):
            condition = condition.expr
        elif condition.exprs:
            condition = condition.exprs[0]
        else:
            return
    if _names_a_param(condition.path):
        yield condition.path


def _template_paths(text: str) -> Iterator[str]:
    try:
        parts = parse_template(text)
    except TemplateSyntaxError:
        return  # validation reports it; the step fails with the spec's text
    for placeholder in placeholders(parts):
        if _names_a_param(placeholder.expression):
            yield placeholder.expression


def _names_a_param(path: str) -> bool:
    """``params.X…`` (``params`` alone, the whole object, is always there)."""
    reference = parse_reference(path)
    return isinstance(reference, ParamsRef) and bool(reference.segments)
