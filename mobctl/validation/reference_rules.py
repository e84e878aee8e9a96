"""mobctl's template and condition checks: syntax, references, upstream (schema §8.2-§8.3)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

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
from mobctl.definition.references import ParamsRef, StepRef, Unparsable, parse_reference
from mobctl.definition.templates import TemplateSyntaxError, parse_template, placeholders
from mobctl.diagnostics import Diagnostic, Path, diagnostic


@dataclass(eq=False)
class _Node:
    node_id: str
    deps: list[str]
    frame: _Frame
    step_id: str | None = None
    loop: RepeatUntilNode | None = None
    body: _Frame | None = None


@dataclass(eq=False)
class _Frame:
    parent: _Node | None  # the loop node whose body this is; None for the root
    nodes: dict[str, _Node] = field(default_factory=dict)
    _closure: dict[str, set[str]] = field(default_factory=dict)

    def upstream_of(self, node_id: str) -> set[str]:
        """Transitive dependencies of a node within this frame (cycles tolerated)."""
        cached = self._closure.get(node_id)
        if cached is not None:
            return cached
        seen: set[str] = set()
        pending = list(self.nodes[node_id].deps)
        while pending:
            dep = pending.pop()
            if dep in seen or dep not in self.nodes:
                continue
            seen.add(dep)
            pending.extend(self.nodes[dep].deps)
        self._closure[node_id] = seen
        return seen


class _Graph:
    """Where each step and loop of a flow lives in its frame tree."""

    def __init__(self, flow: Flow) -> None:
        self.steps: dict[str, _Node] = {}
        self.loops: dict[str, _Node] = {}
        self.root = self._frame(flow.frame(), None)
        self._body_steps: dict[int, set[str]] = {}

    def _frame(self, frame: Frame, parent: _Node | None) -> _Frame:
        result = _Frame(parent)
        for node_id, node in frame.nodes.items():
            info = _Node(node_id, list(node.depends_on), result)
            if isinstance(node, StepNode):
                info.step_id = node.step_id
                self.steps.setdefault(node.step_id, info)
            else:
                info.loop = node
                self.loops.setdefault(node.loop_id, info)
                info.body = self._frame(node.body, info)
            result.nodes[node_id] = info
        return result

    def body_steps(self, loop: _Node) -> set[str]:
        cached = self._body_steps.get(id(loop))
        if cached is None:
            cached = set()
            pending = [loop.body] if loop.body else []
            while pending:
                frame = pending.pop()
                for node in frame.nodes.values():
                    if node.step_id is not None:
                        cached.add(node.step_id)
                    elif node.body is not None:
                        pending.append(node.body)
            self._body_steps[id(loop)] = cached
        return cached

    def enclosing_loops(self, node: _Node) -> list[_Node]:
        loops = []
        parent = node.frame.parent
        while parent is not None:
            loops.append(parent)
            parent = parent.frame.parent
        return loops

    def is_upstream(self, reader: _Node, target: _Node) -> bool:
        """Rules 1-3 of §8.3: ``target`` (a step or loop node) can have run before ``reader``."""
        level: _Node | None = reader
        while level is not None:
            for dep_id in level.frame.upstream_of(level.node_id):
                dep = level.frame.nodes[dep_id]
                if dep is target or (dep.body is not None and self._inside(target, dep)):
                    return True
            level = level.frame.parent
        reader_loops = self.enclosing_loops(reader)
        if target.loop is not None and target in reader_loops:
            return True  # reading earlier iterations of an enclosing loop
        return any(loop in reader_loops for loop in self.enclosing_loops(target))

    def _inside(self, node: _Node, loop: _Node) -> bool:
        return loop in self.enclosing_loops(node)


def check_references(definition: MobDefinition) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for flow_id, flow in definition.flows.items():
        graph = _Graph(flow)
        for step_id, step in flow.steps.items():
            base: Path = ("flows", flow_id, "steps", step_id)
            reader = graph.steps.get(step_id)
            who = f"step '{step_id}'"
            for path, text in _message_texts(base, step.message):
                found += _check_template(text, path, flow, graph, reader, who)
            if step.condition is not None:
                for path, ref_path in _condition_paths((*base, "condition"), step.condition):
                    found += _check_path(ref_path, path, flow, graph, reader, who, None)
        for loop_id, loop in graph.loops.items():
            assert loop.loop is not None
            base = _node_path(flow_id, loop)
            who = f"loop '{loop_id}' until condition"
            for path, ref_path in _condition_paths((*base, "until"), loop.loop.until):
                found += _check_path(ref_path, path, flow, graph, loop, who, loop)
    return found


def _node_path(flow_id: str, node: _Node) -> Path:
    parts: list[str | int] = []
    current: _Node | None = node
    while current is not None:
        parts[:0] = ["nodes", current.node_id]
        current = current.frame.parent
        if current is not None:
            parts.insert(0, "body")
    return ("flows", flow_id, "root", *parts)


def _message_texts(base: Path, message: str | Sequence[object]) -> Iterator[tuple[Path, str]]:
    if isinstance(message, str):
        yield (*base, "message"), message
        return
    for index, block in enumerate(message):
        if isinstance(block, TextBlock):
            yield (*base, "message", index, "text"), block.text


def _condition_paths(base: Path, condition: Condition) -> Iterator[tuple[Path, str]]:
    if isinstance(condition, AndCondition | OrCondition):
        for index, expr in enumerate(condition.exprs):
            yield from _condition_paths((*base, "exprs", index), expr)
    elif isinstance(condition, NotCondition):
        yield from _condition_paths((*base, "expr"), condition.expr)
    else:
        yield (*base, "path"), condition.path


def _check_template(
    text: str, path: Path, flow: Flow, graph: _Graph, reader: _Node | None, who: str
) -> list[Diagnostic]:
    try:
        parts = parse_template(text)
    except TemplateSyntaxError as exc:
        return [diagnostic("invalid_template", str(exc), path, offset=exc.index)]
    found = []
    for placeholder in placeholders(parts):
        found += _check_path(
            placeholder.expression, path, flow, graph, reader, who, None, placeholder.start
        )
    return found


def _check_path(
    ref_path: str,
    path: Path,
    flow: Flow,
    graph: _Graph,
    reader: _Node | None,
    who: str,
    until_of: _Node | None,
    offset: int | None = None,
) -> list[Diagnostic]:
    ref = parse_reference(ref_path)
    shown = f"'{{{{ {ref_path} }}}}'" if offset is not None else f"'{ref_path}'"
    if isinstance(ref, Unparsable):
        return [
            diagnostic(
                "invalid_template",
                f"{who} has an invalid reference {shown}: {ref.describe()}",
                path,
                offset=offset,
            )
        ]
    if isinstance(ref, ParamsRef):
        return []
    if isinstance(ref, StepRef):
        if ref.step_id not in flow.steps:
            return [
                diagnostic(
                    "unknown_template_ref",
                    f"{who} reads {shown}, but flow has no step '{ref.step_id}'",
                    path,
                    offset=offset,
                )
            ]
        target = graph.steps.get(ref.step_id)
        what = f"step '{ref.step_id}'"
    else:
        loop = graph.loops.get(ref.loop_id)
        if loop is None:
            return [
                diagnostic(
                    "unknown_template_ref",
                    f"{who} reads {shown}, but flow has no loop '{ref.loop_id}'",
                    path,
                    offset=offset,
                )
            ]
        if ref.step_id not in graph.body_steps(loop):
            return [
                diagnostic(
                    "unknown_template_ref",
                    f"{who} reads {shown}, but step '{ref.step_id}' is not in the body of loop "
                    f"'{ref.loop_id}'",
                    path,
                    offset=offset,
                )
            ]
        target = loop
        what = f"loop '{ref.loop_id}'"
    if reader is None or target is None or _reads_own_loop(graph, until_of, target):
        return []
    if graph.is_upstream(reader, target):
        return []
    return [
        diagnostic(
            "template_ref_not_upstream",
            f"{who} reads {shown}, but {what} is not upstream of it (it may not have run yet "
            "and reads as null)",
            path,
            offset=offset,
            hint="add it to depends_on (directly or through a dependency)",
        )
    ]


def _reads_own_loop(graph: _Graph, until_of: _Node | None, target: _Node) -> bool:
    """Rule 4: an ``until`` condition may read its own loop and every step of its body."""
    if until_of is None:
        return False
    if target is until_of:
        return True
    return target.step_id is not None and target.step_id in graph.body_steps(until_of)
