"""Rebuilding a run's frames and loops from its snapshot, to resume it (flow-semantics §12.3).

The snapshot is the store's, and the store may sit inside a pull request: what its kernel
states say is checked, for its types and against the flow, before anything is rebuilt, so a
snapshot that does not fit is :class:`StoreCorrupt` before a turn is dispatched (never a crash
halfway through the run, never a node the scheduler would wait on for ever).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mobctl.definition.model import Flow, Frame, RepeatUntilNode, StepNode
from mobctl.engine.frames import FrameState, NodeStatus, node_specs
from mobctl.engine.records import RANK, BodyResults, FrameRun, LoopRun
from mobctl.errors import StoreCorrupt
from mobctl.store.defects import shape_defect
from mobctl.store.models import MobRun

Count = Annotated[int, Field(ge=0)]
K = TypeVar("K", bound=BaseModel)
Unfit = Callable[[str], StoreCorrupt]


class _FrameKernel(BaseModel):
    """What a resume reads of a frame's kernel state (the rest is rebuilt from the flow)."""

    model_config = ConfigDict(strict=True)

    phase: Literal["Running", "Completed", "Failed", "Canceled"] = "Running"
    loop_instance_id: str = ""
    iteration: Count = 0
    node_status: dict[str, NodeStatus]
    branch_winners: dict[str, str] = Field(default_factory=dict)


class _LoopKernel(BaseModel):
    """What a resume reads of a loop's kernel state."""

    model_config = ConfigDict(strict=True)

    phase: Literal["Absent", "Running", "Completed", "Exhausted", "Failed", "Canceled"]
    parent_frame_id: str
    parent_node_id: str
    loop_id: str
    depth: Count
    stage: Literal["AwaitingBodyFrame", "BodyFrameActive", "AwaitingUntilEvaluation", "Terminal"]
    current_iteration: Count
    last_completed_iteration: Count
    active_body_frame_id: str | None = None


@dataclass
class Restored:
    frames: dict[str, FrameRun]
    loops: dict[str, LoopRun]
    body_results: BodyResults


def restore(run: MobRun, flow: Flow) -> Restored:
    """Frames and loops as the snapshot has them (loops once their parent frame is back, body
    frames once their loop is), and what each loop body recorded so far (§10.5);
    :class:`StoreCorrupt` when the snapshot does not fit the flow."""

    def unfit(problem: str) -> StoreCorrupt:
        return StoreCorrupt(
            f"the snapshot of run {run.run_id} of mob '{run.mob_id}' does not fit flow "
            f"'{run.flow_id}': {problem}",
            hint=f"`mobctl runs recover {run.mob_id} --cancel` ends the run",
        )

    kernels = {
        i: _kernel(_FrameKernel, "frames", f.kernel_state, unfit) for i, f in run.frames.items()
    }
    loop_kernels = {
        i: _kernel(_LoopKernel, "loops", lp.kernel_state, unfit) for i, lp in run.loops.items()
    }
    root_id = f"{run.run_id}-root"
    if root_id not in kernels:
        raise unfit("frames: the root frame is missing")
    frames = {root_id: _frame(root_id, flow.frame(), kernels[root_id], 0, None, unfit)}
    loops: dict[str, LoopRun] = {}
    progress = True
    while progress:
        progress = False
        for instance, kernel in loop_kernels.items():
            parent = frames.get(kernel.parent_frame_id)
            if instance in loops or parent is None:
                continue
            node = parent.spec.nodes.get(kernel.parent_node_id)
            if not isinstance(node, RepeatUntilNode):
                raise unfit("loops.<key>.kernel_state.parent_node_id: not a loop of its frame")
            loops[instance] = LoopRun(
                instance,
                kernel.loop_id,
                parent.frame_id,
                kernel.parent_node_id,
                kernel.depth,
                node,
                kernel.phase,
                kernel.stage,
                kernel.current_iteration,
                kernel.last_completed_iteration,
                kernel.active_body_frame_id,
            )
            progress = True
        for frame_id, frame_kernel in kernels.items():
            owner = loops.get(frame_kernel.loop_instance_id)
            if frame_id in frames or owner is None:
                continue
            body = owner.spec.body
            frames[frame_id] = _frame(frame_id, body, frame_kernel, owner.depth, owner, unfit)
            progress = True
    if loops.keys() != loop_kernels.keys():
        raise unfit("loops.<key>.kernel_state.parent_frame_id: not a frame of the run")
    if frames.keys() != kernels.keys():
        raise unfit("frames.<key>.kernel_state.loop_instance_id: not a loop of the run")
    for frame in frames.values():
        for node_id, node in frame.spec.nodes.items():
            running = frame.sealed_as is None and frame.state.status[node_id] == "Running"
            if (
                running
                and isinstance(node, RepeatUntilNode)
                and (f"{frame.frame_id}::{node_id}" not in loops)
            ):  # the scheduler would wait for it for ever
                raise unfit("frames.<key>.kernel_state.node_status: a running loop is missing")
    if any(instance not in loops for instance in run.flow_state.pending_body_frame_loops or []):
        raise unfit("flow_state.pending_body_frame_loops: not a loop of the run")
    return Restored(frames, loops, _body_results(run, frames))


def _kernel(model: type[K], table: str, kernel: object, unfit: Unfit) -> K:
    try:
        return model.model_validate(kernel)
    except ValidationError as exc:
        raise unfit(f"{table}.<key>.kernel_state.{shape_defect(exc, model)}") from None


def _frame(
    frame_id: str,
    spec: Frame,
    kernel: _FrameKernel,
    depth: int,
    loop: LoopRun | None,
    unfit: Unfit,
) -> FrameRun:
    state = FrameState.seed(node_specs(spec))
    for node_id, status in kernel.node_status.items():
        if node_id not in state.status:
            raise unfit("frames.<key>.kernel_state.node_status: not a node of its frame")
        if state.status[node_id] != status:
            state.status[node_id] = status
    state.status.drain()
    state.winners.update(kernel.branch_winners)
    frame = FrameRun(frame_id, spec, state, depth, loop, kernel.iteration)
    frame.sealed_as = None if kernel.phase == "Running" else kernel.phase
    return frame


def _body_results(run: MobRun, frames: dict[str, FrameRun]) -> BodyResults:
    body_results: BodyResults = {}
    for frame in frames.values():
        if frame.loop is None:
            continue
        history = run.loop_iteration_outputs.get(frame.loop.loop_id, [])
        outputs = history[frame.iteration] if frame.iteration < len(history) else {}
        for node_id, node in frame.spec.nodes.items():
            status = frame.state.status[node_id]
            if isinstance(node, StepNode) and status in RANK:
                why = frame.state.skip_reasons.get(node_id)
                body_results.setdefault(node.step_id, {})[status] = (
                    outputs.get(node.step_id),
                    why,
                )
    return body_results
