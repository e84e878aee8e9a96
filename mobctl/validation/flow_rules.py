"""Meerkat's flow checks (spec.rs) plus mobctl's structural flow warnings.

Order follows Meerkat: supervisor, topology, then per flow: steps, branch groups, the flat
DAG, the explicit root frame. Frame rules run only on explicit roots (definition-schema §7.4).
"""

from __future__ import annotations

from collections import defaultdict

from mobctl.definition.model import (
    Flow,
    Frame,
    InlineProfile,
    MobDefinition,
    QuorumPolicy,
    RepeatUntilNode,
    StepNode,
)
from mobctl.diagnostics import Diagnostic, Path, diagnostic, dotted

MAX_DEPTH = 32


def check_flows(definition: MobDefinition) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    profiles = definition.profiles
    supervisor = definition.supervisor
    if supervisor is not None and supervisor.role not in profiles:
        found.append(
            diagnostic(
                "flow_unknown_role",
                f"supervisor role '{supervisor.role}' is not defined",
                ("supervisor", "role"),
            )
        )
    if definition.topology is not None:
        for index, rule in enumerate(definition.topology.rules):
            for key, role in (("from_role", rule.from_role), ("to_role", rule.to_role)):
                if role != "*" and role not in profiles:
                    found.append(
                        diagnostic(
                            "topology_unknown_role",
                            f"topology rule references unknown {key} '{role}'",
                            ("topology", "rules", index, key),
                        )
                    )
    for flow_id, flow in definition.flows.items():
        found += _check_steps(flow_id, flow, definition)
        found += _check_branch_groups(flow_id, flow)
        found += _check_dag(flow_id, flow)
        if flow.root is not None:
            found += _FrameChecker(flow_id, flow).run()
        found += _check_unreachable(flow_id, flow)
    return found


def _check_steps(flow_id: str, flow: Flow, definition: MobDefinition) -> list[Diagnostic]:
    found = []
    for step_id, step in flow.steps.items():
        base = ("flows", flow_id, "steps", step_id)
        if step.role not in definition.profiles:
            found.append(
                diagnostic(
                    "flow_unknown_role",
                    f"step '{step_id}' references unknown role '{step.role}'",
                    (*base, "role"),
                )
            )
        for index, dep in enumerate(step.depends_on):
            if dep not in flow.steps:
                found.append(
                    diagnostic(
                        "flow_unknown_step",
                        f"step '{step_id}' depends on unknown step '{dep}'",
                        (*base, "depends_on", index),
                        location=dotted((*base, "depends_on")),
                    )
                )
        if isinstance(step.collection_policy, QuorumPolicy) and step.collection_policy.n == 0:
            found.append(
                diagnostic(
                    "quorum_invalid",
                    f"step '{step_id}' has invalid quorum n=0",
                    (*base, "collection_policy", "n"),
                )
            )
        if step.output_format == "json" and step.expected_schema_ref is None:
            found.append(
                diagnostic(
                    "json_output_without_schema",
                    f"step '{step_id}' sets output_format = \"json\" without a schema; attach "
                    'expected_schema_ref or use output_format = "text"',
                    (*base, "output_format"),
                )
            )
        if step.depends_on_mode == "any" and not any(
            flow.steps[dep].branch is not None for dep in step.depends_on if dep in flow.steps
        ):
            found.append(
                diagnostic(
                    "branch_join_without_branch",
                    f"step '{step_id}' uses depends_on_mode=any without branch dependencies",
                    (*base, "depends_on_mode"),
                )
            )
        role = definition.profiles.get(step.role)
        if isinstance(role, InlineProfile) and role.runtime_mode == "autonomous_host":
            for key in ("allowed_tools", "blocked_tools"):
                if getattr(step, key) is not None:
                    found.append(
                        diagnostic(
                            "tool_overlay_autonomous",
                            f"step '{step_id}' sets {key} but role '{step.role}' runs as "
                            "autonomous_host: every dispatch will be rejected",
                            (*base, key),
                            hint=f'set runtime_mode = "turn_driven" on profiles.{step.role}',
                        )
                    )
    return found


def _check_branch_groups(flow_id: str, flow: Flow) -> list[Diagnostic]:
    groups: dict[str, list[str]] = defaultdict(list)
    for step_id, step in flow.steps.items():
        if step.branch is not None:
            groups[step.branch].append(step_id)
    found = []
    for branch in sorted(groups):
        members = groups[branch]
        if len(members) < 2:
            found.append(
                diagnostic(
                    "branch_group_empty",
                    f"branch group '{branch}' in flow '{flow_id}' must contain at least two steps",
                    ("flows", flow_id, "steps"),
                    point="key",
                )
            )
        reference = set(flow.steps[members[0]].depends_on)
        for step_id in members:
            step = flow.steps[step_id]
            base = ("flows", flow_id, "steps", step_id)
            if step.condition is None:
                found.append(
                    diagnostic(
                        "branch_step_missing_condition",
                        f"branch step '{step_id}' in group '{branch}' is missing condition",
                        (*base, "condition"),
                        point="missing",
                    )
                )
            if set(step.depends_on) != reference:
                found.append(
                    diagnostic(
                        "branch_step_conflicting_deps",
                        f"branch step '{step_id}' in group '{branch}' has conflicting dependencies",
                        (*base, "depends_on"),
                    )
                )
    return found


def _check_dag(flow_id: str, flow: Flow) -> list[Diagnostic]:
    """A cycle, else the longest chain (in steps) against the limit."""
    deps = {step_id: step.depends_on for step_id, step in flow.steps.items()}
    acyclic, max_depth = _topological_depth(deps)
    path: Path = ("flows", flow_id, "steps")
    if not acyclic:
        message = f"flow '{flow_id}' contains a cycle"
        return [diagnostic("flow_cycle_detected", message, path, point="key")]
    if max_depth > MAX_DEPTH:
        message = f"flow '{flow_id}' exceeds max depth of {MAX_DEPTH}"
        return [diagnostic("flow_depth_exceeded", message, path, point="key")]
    return []


def _topological_depth(deps: dict[str, list[str]]) -> tuple[bool, int]:
    """Kahn's algorithm: whether the graph is acyclic, and its longest chain in nodes.

    Dependencies that are not nodes are ignored (they are reported on their own).
    """
    indegree = dict.fromkeys(deps, 0)
    successors: dict[str, list[str]] = defaultdict(list)
    for node, node_deps in deps.items():
        for dep in node_deps:
            if dep in deps:
                indegree[node] += 1
                successors[dep].append(node)
    depth = {node: 1 for node, count in indegree.items() if count == 0}
    queue = list(depth)
    processed = max_depth = 0
    while queue:
        current = queue.pop()
        processed += 1
        max_depth = max(max_depth, depth[current])
        for nxt in successors[current]:
            depth[nxt] = max(depth.get(nxt, 0), depth[current] + 1)
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                queue.append(nxt)
    return processed == len(deps), max_depth


class _FrameChecker:
    """Frame rules for an explicit root: ids, node dependencies, cycles, nesting, omissions."""

    def __init__(self, flow_id: str, flow: Flow) -> None:
        self.flow_id = flow_id
        self.flow = flow
        self.seen_steps: set[str] = set()
        self.seen_loops: set[str] = set()
        self.found: list[Diagnostic] = []

    def run(self) -> list[Diagnostic]:
        assert self.flow.root is not None
        root: Path = ("flows", self.flow_id, "root")
        self.frame(self.flow.root, root, 0)
        omitted = [s for s in self.flow.steps if s not in self.seen_steps]
        if omitted:
            self.add(
                "flow_unknown_step",
                f"root frame for flow '{self.flow_id}' does not reference declared flow steps: "
                f"{', '.join(omitted)}",
                root,
                point="key",
            )
        return self.found

    def add(self, code: str, message: str, path: Path, **kwargs: object) -> None:
        self.found.append(diagnostic(code, message, path, **kwargs))  # type: ignore[arg-type]

    def frame(self, frame: Frame, location: Path, depth: int) -> None:
        where = dotted(location)
        if depth > MAX_DEPTH:
            self.add(
                "flow_depth_exceeded",
                f"frame '{where}' exceeds max nesting depth of {MAX_DEPTH}",
                location,
                point="key",
            )
            return
        for node_id, node in frame.nodes.items():
            base = (*location, "nodes", node_id)
            if isinstance(node, StepNode):
                if node.step_id in self.seen_steps:
                    self.add(
                        "flow_cycle_detected",
                        f"duplicate step_id '{node.step_id}' in flow '{self.flow_id}'; step IDs "
                        "must be unique across the entire frame graph (including loop bodies) to "
                        "ensure deterministic resume",
                        (*base, "step_id"),
                    )
                self.seen_steps.add(node.step_id)
                if node.step_id not in self.flow.steps:
                    self.add(
                        "flow_unknown_step",
                        f"frame node '{node_id}' references step_id '{node.step_id}' which is not "
                        f"defined in flow '{self.flow_id}'",
                        (*base, "step_id"),
                    )
                self.dependencies("frame node", node_id, node.depends_on, frame, base, where)
            else:
                self.loop(node_id, node, frame, base, where, depth)
        acyclic, _ = _topological_depth({n: node.depends_on for n, node in frame.nodes.items()})
        if not acyclic:
            self.add(
                "flow_cycle_detected",
                f"frame '{where}' contains a dependency cycle",
                location,
                point="key",
            )

    def loop(
        self, node_id: str, node: RepeatUntilNode, frame: Frame, base: Path, where: str, depth: int
    ) -> None:
        if node.loop_id in self.seen_loops:
            self.add(
                "flow_cycle_detected",
                f"duplicate loop_id '{node.loop_id}' in flow '{self.flow_id}'; loop IDs must be "
                "unique across the entire flow graph",
                (*base, "loop_id"),
            )
        self.seen_loops.add(node.loop_id)
        self.dependencies("loop node", node_id, node.depends_on, frame, base, where)
        if node.max_iterations == 0:
            self.add(
                "quorum_invalid",
                f"loop node '{node_id}' has invalid max_iterations=0; must be >= 1",
                (*base, "max_iterations"),
            )
        self.frame(node.body, (*base, "body"), depth + 1)

    def dependencies(
        self, what: str, node_id: str, deps: list[str], frame: Frame, base: Path, where: str
    ) -> None:
        for index, dep in enumerate(deps):
            if dep not in frame.nodes:
                self.add(
                    "flow_unknown_step",
                    f"{what} '{node_id}' depends_on unknown node '{dep}' in frame '{where}'",
                    (*base, "depends_on", index),
                    location=dotted((*base, "depends_on")),
                )


def _check_unreachable(flow_id: str, flow: Flow) -> list[Diagnostic]:
    """A node needing (mode all) two nodes of one branch group is always skipped."""
    found = []
    for location, frame in _frames(flow_id, flow):
        # flat flows: the synthesised root carries each step's branch on its node
        branch_of = {
            node_id: node.branch
            for node_id, node in frame.nodes.items()
            if isinstance(node, StepNode) and node.branch is not None
        }
        for node_id, node in frame.nodes.items():
            if node.depends_on_mode != "all":
                continue
            groups: dict[str, list[str]] = defaultdict(list)
            for dep in dict.fromkeys(node.depends_on):
                if dep in branch_of:
                    groups[branch_of[dep]].append(dep)
            for branch, members in groups.items():
                if len(members) >= 2:
                    base = (
                        ("flows", flow_id, "steps", node_id)
                        if flow.root is None
                        else (*location, "nodes", node_id)
                    )
                    found.append(
                        diagnostic(
                            "unreachable_step",
                            f"'{node_id}' needs all of {', '.join(members)}, but they are in "
                            f"branch group '{branch}' where at most one runs: it is always skipped",
                            (*base, "depends_on"),
                            hint='use depends_on_mode = "any" to join a branch group',
                        )
                    )
    return found


def _frames(flow_id: str, flow: Flow) -> list[tuple[Path, Frame]]:
    """Every frame of the flow with its location (the synthesised root for flat flows)."""
    result: list[tuple[Path, Frame]] = []
    pending: list[tuple[Path, Frame]] = [(("flows", flow_id, "root"), flow.frame())]
    while pending:
        location, frame = pending.pop()
        result.append((location, frame))
        for node_id, node in frame.nodes.items():
            if isinstance(node, RepeatUntilNode):
                pending.append(((*location, "nodes", node_id, "body"), node.body))
    return result
