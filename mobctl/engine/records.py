"""The scheduler's in-memory run records (frames, loops, steps in flight) and how they map to
the run snapshot: written as journal ops (rebuilt from a snapshot by ``engine.restore``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mobctl.definition.model import Frame, RepeatUntilNode, Step
from mobctl.drivers.base import DispatchError, Member, Outcome
from mobctl.engine.frames import FrameState
from mobctl.engine.outputs import TargetResult
from mobctl.store.changes import Op
from mobctl.store.models import LoopSnapshot, MobRun

DEFAULT_STEP_TIMEOUT_MS = 30_000
RANK = {"Failed": 3, "Completed": 2, "Skipped": 1}
# a loop body step's executions so far (§10.5): per status, the output and the reason of the
# latest execution that ended so (all that settling needs: it does not grow with iterations)
BodyResults = dict[str, dict[str, tuple[Any, str | None]]]


class RunFatal(Exception):
    def __init__(self, cause: str, reason: str, *, detail: str | None = None) -> None:
        super().__init__(reason)
        self.cause = cause
        self.reason = reason
        self.detail = detail


@dataclass
class LoopRun:
    instance_id: str
    loop_id: str
    parent_frame: str
    node_id: str
    depth: int
    spec: RepeatUntilNode
    phase: str = "Running"
    stage: str = "AwaitingBodyFrame"
    current_iteration: int = 0
    last_completed_iteration: int = 0
    body_frame: str | None = None

    def snapshot(self) -> LoopSnapshot:
        kernel: dict[str, Any] = {
            "phase": self.phase,
            "loop_instance_id": self.instance_id,
            "parent_frame_id": self.parent_frame,
            "parent_node_id": self.node_id,
            "loop_id": self.loop_id,
            "depth": self.depth,
            "stage": self.stage,
            "current_iteration": self.current_iteration,
            "last_completed_iteration": self.last_completed_iteration,
            "max_iterations": self.spec.max_iterations,
            "active_body_frame_id": self.body_frame,
        }
        return LoopSnapshot.model_construct(kernel_state=kernel)


@dataclass
class FrameRun:
    frame_id: str
    spec: Frame
    state: FrameState
    depth: int
    loop: LoopRun | None = None
    iteration: int = 0
    sealed_as: str | None = None
    written: dict[str, Any] | None = None  # what the journal last got of the dynamic parts

    def _dynamic(self) -> dict[str, Any]:
        return {
            "phase": self.sealed_as or "Running",
            "branch_winners": dict(self.state.winners),
            "ready_queue": self.state.ready_queue(),
        }

    def changes(self) -> list[Op]:
        """The journal ops since the last call: the whole snapshot the first time, then the
        node statuses that changed and the small parts that differ."""
        path = ("frames", self.frame_id)
        state = self.state
        changed = state.status.drain()
        dynamic = self._dynamic()
        if self.written is None:
            self.written = dynamic
            kernel: dict[str, Any] = {
                "phase": dynamic["phase"],
                "frame_id": self.frame_id,
                "frame_scope": "Root" if self.loop is None else "Body",
                "loop_instance_id": "" if self.loop is None else self.loop.instance_id,
                "iteration": self.iteration,
                "tracked_nodes": list(state.specs),
                "ordered_nodes": state.order,
                "node_kind": {n: s.kind for n, s in state.specs.items()},
                "node_dependencies": {n: list(s.depends_on) for n, s in state.specs.items()},
                "node_dependency_modes": {n: s.mode.capitalize() for n, s in state.specs.items()},
                "node_branches": {n: s.branch for n, s in state.specs.items()},
                "branch_winners": dynamic["branch_winners"],
                "node_status": dict(state.status),
                "ready_queue": dynamic["ready_queue"],
            }
            return [("set", path, {"kernel_state": kernel})]
        ops: list[Op] = [
            ("set", (*path, "kernel_state", "node_status", node), state.status[node])
            for node in sorted(changed, key=state.position.__getitem__)
        ]
        for key, value in dynamic.items():
            if value != self.written[key]:
                ops.append(("set", (*path, "kernel_state", key), value))
        self.written = dynamic
        return ops


@dataclass
class StepTask:
    """One admitted step node whose targets are running."""

    frame: FrameRun
    node_id: str
    step_id: str
    step: Step
    targets: list[Member]
    fail_flow: bool
    message: Any = None
    timeout_ms: int = DEFAULT_STEP_TIMEOUT_MS
    runtime: dict[str, str] = field(default_factory=dict)
    schema: dict[str, Any] | None = None  # the step's expected schema (inline or stored copy)
    results: list[TargetResult] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)  # failed attempts per target
    pending: int = 0


@dataclass
class TurnDone:
    """A worker's report: one attempt of one target ended."""

    task: StepTask
    member: Member
    outcome: Outcome | DispatchError
    timed_out: bool
    failure: Exception | None = None  # its transcript could not be written: the run stops


@dataclass
class RunResult:
    run: MobRun
    cause: str | None
    timed_out: bool
    warnings: list[str] = field(default_factory=list)
