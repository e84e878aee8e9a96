"""Draw a flow as Mermaid or Graphviz DOT.

Steps are nodes; dependencies are edges (solid for ``all``, dashed for ``any``); branch groups
and loop bodies are subgraphs; a step's condition labels its incoming edges (or the node, when
it has no dependency).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

from mobctl.definition.model import (
    AndCondition,
    Condition,
    Flow,
    Frame,
    InCondition,
    MobDefinition,
    NotCondition,
    OrCondition,
    RepeatUntilNode,
)

_OPERATORS = {"eq": "==", "gt": ">", "lt": "<"}


def describe_condition(condition: Condition) -> str:
    """A condition as one readable expression (``params.env == "prod"``)."""
    if isinstance(condition, AndCondition | OrCondition):
        joiner = f" {condition.op} "
        inner = joiner.join(describe_condition(expr) for expr in condition.exprs)
        return f"({inner})" if len(condition.exprs) > 1 else inner or str(condition.op == "and")
    if isinstance(condition, NotCondition):
        return f"not {describe_condition(condition.expr)}"
    if isinstance(condition, InCondition):
        return f"{condition.path} in {json.dumps(condition.values)}"
    return f"{condition.path} {_OPERATORS[condition.op]} {json.dumps(condition.value)}"


@dataclass
class _Cluster:
    label: str
    nodes: list[str] = field(default_factory=list)  # graph node ids
    clusters: list[_Cluster] = field(default_factory=list)


@dataclass
class _Edge:
    source: str
    target: str
    dashed: bool
    label: str | None


@dataclass
class _Graph:
    labels: dict[str, str] = field(default_factory=dict)
    edges: list[_Edge] = field(default_factory=list)
    root: _Cluster = field(default_factory=lambda: _Cluster(""))


def _build(flow: Flow) -> _Graph:
    graph = _Graph()
    counter = iter(range(1_000_000))

    def frame(spec: Frame, cluster: _Cluster) -> dict[str, str]:
        ids: dict[str, str] = {}
        branches: dict[str, _Cluster] = {}
        for node_id, node in spec.nodes.items():
            gid = f"n{next(counter)}"
            ids[node_id] = gid
            if isinstance(node, RepeatUntilNode):
                until = describe_condition(node.until)
                body = _Cluster(f"loop {node.loop_id} (until {until}, max {node.max_iterations})")
                cluster.clusters.append(body)
                graph.labels[gid] = f"repeat_until {node.loop_id}"
                body.nodes.append(gid)
                frame(node.body, body)
                continue
            step = flow.steps.get(node.step_id)
            graph.labels[gid] = node.step_id if step is None else f"{node.step_id}\n({step.role})"
            branch = node.branch if flow.root is not None else (step.branch if step else None)
            if branch is not None:
                group = branches.get(branch)
                if group is None:
                    group = branches[branch] = _Cluster(f"branch {branch}")
                    cluster.clusters.append(group)
                group.nodes.append(gid)
            else:
                cluster.nodes.append(gid)
        for node_id, node in spec.nodes.items():
            step = flow.steps.get(node.step_id) if not isinstance(node, RepeatUntilNode) else None
            condition = describe_condition(step.condition) if step and step.condition else None
            deps = [dep for dep in node.depends_on if dep in ids]
            if condition and not deps:
                graph.labels[ids[node_id]] += f"\nif {condition}"
            for dep in deps:
                graph.edges.append(
                    _Edge(ids[dep], ids[node_id], node.depends_on_mode == "any", condition)
                )
        return ids

    frame(flow.frame(), graph.root)
    return graph


def render_graph(definition: MobDefinition, flow_id: str, fmt: Literal["mermaid", "dot"]) -> str:
    graph = _build(definition.flows[flow_id])
    return _mermaid(graph) if fmt == "mermaid" else _dot(graph, flow_id)


def _mermaid(graph: _Graph) -> str:
    lines = ["flowchart TD"]

    def quote(text: str) -> str:
        return '"' + text.replace('"', "#quot;").replace("\n", "<br/>") + '"'

    def cluster(c: _Cluster, indent: str, index: list[int]) -> None:
        for gid in c.nodes:
            lines.append(f"{indent}{gid}[{quote(graph.labels[gid])}]")
        for sub in c.clusters:
            index[0] += 1
            lines.append(f"{indent}subgraph c{index[0]}[{quote(sub.label)}]")
            cluster(sub, indent + "  ", index)
            lines.append(f"{indent}end")

    cluster(graph.root, "  ", [0])
    for edge in graph.edges:
        arrow = "-.->" if edge.dashed else "-->"
        label = f"|{quote(edge.label)}|" if edge.label else ""
        lines.append(f"  {edge.source} {arrow}{label} {edge.target}")
    return "\n".join(lines) + "\n"


def _dot(graph: _Graph, flow_id: str) -> str:
    lines = [f"digraph {json.dumps(flow_id)} {{", "  rankdir=TB;", "  node [shape=box];"]

    def cluster(c: _Cluster, indent: str, index: list[int]) -> None:
        for gid in c.nodes:
            lines.append(f"{indent}{gid} [label={json.dumps(graph.labels[gid])}];")
        for sub in c.clusters:
            index[0] += 1
            lines.append(f"{indent}subgraph cluster_{index[0]} {{")
            lines.append(f"{indent}  label={json.dumps(sub.label)};")
            cluster(sub, indent + "  ", index)
            lines.append(f"{indent}}}")

    cluster(graph.root, "  ", [0])
    for edge in graph.edges:
        attrs = ["style=dashed"] if edge.dashed else []
        if edge.label:
            attrs.append(f"label={json.dumps(edge.label)}")
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"  {edge.source} -> {edge.target}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"
