"""The run-level flow state of a run (flow-semantics §15, ``MobRun.flow_state``), typed.

The one definition of what the engine keeps and persists about a run as a whole: the runner
changes it, custody cancels it, the runs view and ``run --json`` read it. It remembers which
fields were assigned since it was last written, so the engine journals only what changed
(``ops``), not the whole, growing state; per-step maps are written key by key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from mobctl.definition.model import AllPolicy, Flow, MobDefinition, QuorumPolicy, Step
from mobctl.engine.tracked import Tracked
from mobctl.store.changes import Op

StepStatus = str | None  # None | "Dispatched" | "Completed" | "Failed" | "Skipped" | "Canceled"
UNFINISHED: frozenset[StepStatus] = frozenset({None, "Dispatched"})

# the maps keyed by step (or "step:member"): written key by key, not whole
PER_STEP = (
    "step_status",
    "output_recorded",
    "step_condition_results",
    "step_target_counts",
    "step_target_success_counts",
    "step_target_terminal_failure_counts",
    "target_retry_counts",
)


@dataclass(eq=False)
class FlowState:
    """Meerkat's ``FlowRunState`` fields, in its order (flow-semantics §15)."""

    phase: str = "Absent"
    tracked_steps: list[str] = field(default_factory=list)
    ordered_steps: list[str] = field(default_factory=list)
    step_status: Tracked = field(default_factory=Tracked)
    output_recorded: Tracked = field(default_factory=Tracked)
    step_condition_results: Tracked = field(default_factory=Tracked)
    step_has_conditions: dict[str, bool] = field(default_factory=dict)
    step_dependencies: dict[str, list[str]] = field(default_factory=dict)
    step_dependency_modes: dict[str, str] = field(default_factory=dict)
    step_branches: dict[str, str | None] = field(default_factory=dict)
    step_collection_policies: dict[str, str] = field(default_factory=dict)
    step_quorum_thresholds: dict[str, int] = field(default_factory=dict)
    step_target_counts: Tracked = field(default_factory=Tracked)
    step_target_success_counts: Tracked = field(default_factory=Tracked)
    step_target_terminal_failure_counts: Tracked = field(default_factory=Tracked)
    target_retry_counts: Tracked = field(default_factory=Tracked)
    failure_count: int = 0
    consecutive_failure_count: int = 0
    escalation_threshold: int = 0
    max_step_retries: int = 0
    ready_frames: list[str] = field(default_factory=list)
    ready_frame_membership: dict[str, bool] = field(default_factory=dict)
    pending_body_frame_loops: list[str] = field(default_factory=list)
    pending_body_frame_loop_membership: dict[str, bool] = field(default_factory=dict)
    active_node_count: int = 0
    active_frame_count: int = 0
    max_active_nodes: int = 0
    max_active_frames: int = 0
    max_frame_depth: int = 0
    last_granted_frame: str | None = None
    last_granted_loop: str | None = None
    # fields of a snapshot this version does not know (another tool's, a newer mobctl's): kept
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_changed", set())

    def __setattr__(self, name: str, value: Any) -> None:
        if name in PER_STEP and not isinstance(value, Tracked):
            value = Tracked(value)
        object.__setattr__(self, name, value)
        changed: set[str] | None = self.__dict__.get("_changed")
        if changed is not None:
            changed.add(name)

    # --- building and reading -------------------------------------------------------------

    @classmethod
    def seed(cls, definition: MobDefinition, flow: Flow, ordered_steps: list[str]) -> FlowState:
        """The state of a new run of ``flow`` (flow-semantics §15)."""
        steps = flow.steps
        limits = definition.limits
        supervisor = definition.supervisor
        return cls(
            tracked_steps=sorted(steps),
            ordered_steps=list(ordered_steps),
            step_status=Tracked(dict.fromkeys(steps)),
            output_recorded=Tracked(dict.fromkeys(steps, False)),
            step_condition_results=Tracked(dict.fromkeys(steps)),
            step_has_conditions={s: st.condition is not None for s, st in steps.items()},
            step_dependencies={s: list(st.depends_on) for s, st in steps.items()},
            step_dependency_modes={s: st.depends_on_mode.capitalize() for s, st in steps.items()},
            step_branches={s: st.branch for s, st in steps.items()},
            step_collection_policies={s: _policy(st) for s, st in steps.items()},
            step_quorum_thresholds={
                s: st.collection_policy.n if isinstance(st.collection_policy, QuorumPolicy) else 0
                for s, st in steps.items()
            },
            step_target_counts=Tracked(dict.fromkeys(steps, 0)),
            step_target_success_counts=Tracked(dict.fromkeys(steps, 0)),
            step_target_terminal_failure_counts=Tracked(dict.fromkeys(steps, 0)),
            escalation_threshold=supervisor.escalation_threshold if supervisor else 0,
            max_step_retries=(limits.max_step_retries or 0) if limits else 0,
            max_active_nodes=(limits.max_active_nodes or 0) if limits else 0,
            max_active_frames=(limits.max_active_frames or 0) if limits else 0,
            max_frame_depth=(limits.max_frame_depth or 0) if limits else 0,
        )

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> FlowState:
        """A persisted flow state (missing or null fields at their defaults, unknown ones
        kept)."""
        known = {f.name for f in fields(cls)} - {"extra"}
        state = cls(**{k: v for k, v in document.items() if k in known and v is not None})
        state.extra = {k: v for k, v in document.items() if k not in known}
        state.drain()
        return state

    def document(self) -> dict[str, Any]:
        """The JSON document, in §15 field order (then any unknown fields)."""
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "extra"}
        return out | self.extra

    def step_statuses(self) -> dict[str, str]:
        """Each step's run-level status as the CLI shows it: lowercase, ``pending`` before it
        is dispatched, ``running`` while it is."""
        shown = {None: "pending", "Dispatched": "running"}
        order = [s for s in self.ordered_steps if s in self.step_status]
        order += [s for s in self.step_status if s not in order]
        return {
            s: shown.get(self.step_status[s]) or str(self.step_status[s]).lower() for s in order
        }

    # --- changes --------------------------------------------------------------------------

    def fold_unfinished(self) -> None:
        """Steps that never reached a terminal status end ``Canceled`` (§11.1, §11.2)."""
        for step_id, status in list(self.step_status.items()):
            if status in UNFINISHED:
                self.step_status[step_id] = "Canceled"

    def set_registrations(self, ready_frames: list[str]) -> None:
        """Ready frames and pending body-frame loops, with their membership maps, as the §15
        invariants have them (assigned only when they differ)."""
        pending = sorted(self.pending_body_frame_loops)
        for name, value in (
            ("ready_frames", sorted(ready_frames)),
            ("ready_frame_membership", dict.fromkeys(sorted(ready_frames), True)),
            ("pending_body_frame_loops", pending),
            ("pending_body_frame_loop_membership", dict.fromkeys(pending, True)),
        ):
            if getattr(self, name) != value:
                setattr(self, name, value)

    def add_pending_loop(self, instance: str) -> None:
        self.pending_body_frame_loops = sorted([*self.pending_body_frame_loops, instance])

    def take_pending_loop(self) -> str:
        """The smallest loop instance waiting for a body frame, no longer waiting."""
        first, *rest = sorted(self.pending_body_frame_loops)
        self.pending_body_frame_loops = rest
        return first

    def drain(self) -> set[str]:
        """The fields assigned since the last drain (and forget them)."""
        changed: set[str] = self.__dict__["_changed"]
        object.__setattr__(self, "_changed", set())
        for name in PER_STEP:
            getattr(self, name).drain()
        return changed

    def ops(self) -> list[Op]:
        """The journal ops of what changed since the last call: a field assigned whole, or the
        keys of a per-step map that were assigned."""
        whole: set[str] = self.__dict__["_changed"]
        ops: list[Op] = [
            ("set", ("flow_state", name), _plain(getattr(self, name))) for name in sorted(whole)
        ]
        for name in PER_STEP:
            value: Tracked = getattr(self, name)
            keys = value.drain()
            if name not in whole:
                ops += [("set", ("flow_state", name, k), value[k]) for k in sorted(keys)]
        object.__setattr__(self, "_changed", set())
        return ops


def _policy(step: Step) -> str:
    policy = step.collection_policy
    if isinstance(policy, QuorumPolicy):
        return "Quorum"
    return "All" if isinstance(policy, AllPolicy) else "Any"


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, Tracked) else value
