"""The frame state machine (flow-semantics §5): node order, admission, terminal transitions
with skip propagation, branch groups, sealing. Pure: no I/O, no clock."""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from mobctl.definition.model import Frame, RepeatUntilNode

NodeStatus = Literal["Pending", "Ready", "Running", "Completed", "Failed", "Skipped", "Canceled"]
TERMINAL: frozenset[str] = frozenset({"Completed", "Failed", "Skipped", "Canceled"})
_NOT_COMPLETED = {"Failed": "failed", "Skipped": "was skipped", "Canceled": "was canceled"}


@dataclass(frozen=True)
class NodeSpec:
    node_id: str
    depends_on: tuple[str, ...] = ()
    mode: Literal["all", "any"] = "all"
    branch: str | None = None
    failure_policy: Literal["escalate", "continue"] = "escalate"
    kind: Literal["Step", "Loop"] = "Step"


def node_specs(frame: Frame) -> list[NodeSpec]:
    """The nodes of a definition frame, in document order."""
    specs = []
    for node_id, node in frame.nodes.items():
        loop = isinstance(node, RepeatUntilNode)
        specs.append(
            NodeSpec(
                node_id=node_id,
                depends_on=tuple(node.depends_on),
                mode=node.depends_on_mode,
                branch=None if loop else node.branch,  # type: ignore[union-attr]
                failure_policy=node.failure_policy or "escalate",
                kind="Loop" if loop else "Step",
            )
        )
    return specs


def ordered_nodes(specs: list[NodeSpec]) -> list[str]:
    """Kahn's algorithm: dependency-free nodes in document order seed the queue; dependents are
    appended, in document order, when their remaining in-degree reaches 0."""
    known = {s.node_id for s in specs}
    indegree = {s.node_id: sum(1 for d in s.depends_on if d in known) for s in specs}
    dependents: dict[str, list[str]] = {s.node_id: [] for s in specs}
    for spec in specs:  # document order of the dependents
        for dep in spec.depends_on:
            if dep in known:
                dependents[dep].append(spec.node_id)
    queue = deque(s.node_id for s in specs if indegree[s.node_id] == 0)
    order = []
    while queue:
        node = queue.popleft()
        order.append(node)
        for dependent in dependents[node]:
            indegree[dependent] -= 1
            if indegree[dependent] == 0:
                queue.append(dependent)
    return order


class StatusMap(dict[str, NodeStatus]):
    """Node statuses that keep, as they change, the set of Ready nodes, the number of
    non-terminal nodes and the nodes changed since the last ``drain`` (for the journal)."""

    def __init__(self, statuses: dict[str, NodeStatus]) -> None:
        super().__init__(statuses)
        self.ready = {n for n, s in statuses.items() if s == "Ready"}
        self.open = sum(1 for s in statuses.values() if s not in TERMINAL)
        self.changed: set[str] = set()

    def __setitem__(self, node: str, status: NodeStatus) -> None:
        old = self[node]
        super().__setitem__(node, status)
        if old == "Ready":
            self.ready.discard(node)
        if status == "Ready":
            self.ready.add(node)
        self.open += (status not in TERMINAL) - (old not in TERMINAL)
        self.changed.add(node)

    def drain(self) -> set[str]:
        changed, self.changed = self.changed, set()
        return changed


@dataclass
class FrameState:
    """One frame's node statuses; every method applies one transition and its propagation.

    Work per transition is proportional to the nodes it can affect (the finished node's
    dependents, its branch group, and what they skip in turn), not to the frame's size."""

    specs: dict[str, NodeSpec]
    order: list[str]
    status: StatusMap
    winners: dict[str, str] = field(default_factory=dict)
    skip_reasons: dict[str, str] = field(default_factory=dict)
    position: dict[str, int] = field(init=False)
    dependents: dict[str, list[str]] = field(init=False)
    branches: dict[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.position = {node: index for index, node in enumerate(self.order)}
        self.dependents = {node: [] for node in self.order}
        self.branches = {}
        for node in self.order:
            spec = self.specs[node]
            for dep in spec.depends_on:
                if dep in self.dependents:
                    self.dependents[dep].append(node)
            if spec.branch is not None:
                self.branches.setdefault(spec.branch, []).append(node)

    @classmethod
    def seed(cls, specs: list[NodeSpec]) -> FrameState:
        status: dict[str, NodeStatus] = {
            s.node_id: "Pending" if s.depends_on else "Ready" for s in specs
        }
        return cls({s.node_id: s for s in specs}, ordered_nodes(specs), StatusMap(status))

    def ready_queue(self) -> list[str]:
        return sorted(self.status.ready, key=self.position.__getitem__)

    def running(self) -> list[str]:
        return [n for n in self.order if self.status[n] == "Running"]

    def admit(self) -> str | None:
        """The first ready node becomes Running; the other ready members of its branch group
        go back to Pending (members are tried one at a time)."""
        queue = self.ready_queue()
        if not queue:
            return None
        node = queue[0]
        self.status[node] = "Running"
        branch = self.specs[node].branch
        if branch is not None:
            for other in queue[1:]:
                if self.specs[other].branch == branch:
                    self.status[other] = "Pending"
        return node

    def finish(
        self, node: str, outcome: NodeStatus, reason: str | None = None
    ) -> list[tuple[str, str]]:
        """Terminal transition of ``node``, then propagation over the nodes it can affect.

        Returns the nodes skipped by propagation, with their reasons, in frame order."""
        if outcome not in TERMINAL:
            raise ValueError(f"{outcome} is not a terminal status")
        self.status[node] = outcome
        if outcome == "Skipped" and reason is not None:
            self.skip_reasons[node] = reason
        return self._propagate(node, outcome == "Completed")

    def _propagate(self, finished: str, completed: bool) -> list[tuple[str, str]]:
        """Re-evaluate, in frame order, the Pending nodes whose inputs changed: dependents of
        the finished node and of every node skipped on the way, and the finished node's branch
        group (no longer busy). Frame order is topological, so one pass settles them."""
        skipped: list[tuple[str, str]] = []
        todo: list[int] = []
        queued: set[str] = set()

        def push(nodes: list[str]) -> None:
            for other in nodes:
                if other not in queued:
                    queued.add(other)
                    heapq.heappush(todo, self.position[other])

        def skip(node: str, why: str) -> None:
            self.status[node] = "Skipped"
            self.skip_reasons[node] = why
            skipped.append((node, why))
            push(self.dependents[node])

        push(self.dependents[finished])
        branch = self.specs[finished].branch
        if branch is not None:
            members = self.branches[branch]
            if completed:
                self.winners[branch] = finished
                for node in members:
                    if node != finished and self.status[node] not in TERMINAL | {"Running"}:
                        skip(node, f"branch '{branch}' was won by '{finished}'")
            push(members)
        while todo:
            node = self.order[heapq.heappop(todo)]
            if self.status[node] != "Pending":
                continue
            spec = self.specs[node]
            if spec.branch is not None and self._branch_busy(spec.branch, node):
                continue
            deps = [self.status[d] for d in spec.depends_on if d in self.status]
            if not spec.depends_on:
                self.status[node] = "Ready"
            elif spec.mode == "all":
                bad = next(
                    (d for d in spec.depends_on if self.status.get(d) in _NOT_COMPLETED), None
                )
                if bad is not None:
                    skip(node, f"dependency '{bad}' {_NOT_COMPLETED[self.status[bad]]}")
                elif all(s == "Completed" for s in deps):
                    self.status[node] = "Ready"
            elif all(s in _NOT_COMPLETED for s in deps):
                skip(node, "all dependencies failed, were skipped or were canceled")
            elif any(s == "Completed" for s in deps):
                self.status[node] = "Ready"
        return skipped

    def _branch_busy(self, branch: str, node: str) -> bool:
        return any(
            other != node and self.status[other] == "Running" for other in self.branches[branch]
        )

    def sealed(self) -> NodeStatus | None:
        """The frame's outcome once every node is terminal, else None."""
        if self.status.open:
            return None
        if any(
            self.status[n] == "Failed" and self.specs[n].failure_policy != "continue"
            for n in self.order
        ):
            return "Failed"
        if any(s == "Canceled" for s in self.status.values()):
            return "Canceled"
        return "Completed"
