"""What the parts of one run share: its inputs, its handles on the store, and the run state
the scheduler's main thread owns (flow state, frames, loops, steps in flight, outputs).

The parts (scheduler, steps, attempts, loops, escalation, the recorder) each take this
context; only the recorder turns its changes into store writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mobctl.definition.model import Flow, MobDefinition
from mobctl.drivers.base import TurnProfile
from mobctl.engine.accounting import Accounting
from mobctl.engine.backoff import Backoff, retry_delay
from mobctl.engine.context import Context, build_context
from mobctl.engine.flow_state import FlowState
from mobctl.engine.records import BodyResults, FrameRun, LoopRun, StepTask
from mobctl.store.contract import EventStore, RunStore, Store

EventCallback = Callable[[str, dict[str, Any]], None]


@dataclass(eq=False)
class RunContext:
    store: Store
    definition: MobDefinition
    flow_id: str
    params: dict[str, Any]
    run_id: str
    token: str  # this process's owner lease: every write is fenced with it
    ordered_steps: list[str]  # run-level order, Kahn's algorithm over the flat steps (§5.2)
    flow_state: FlowState
    revision: int | None  # the spec revision the run is pinned to
    schemas: dict[str, Any]  # the schema files copied at registration, by ref: the only ones
    on_event: EventCallback
    deadline_ms: int | None  # the flow's budget (max_flow_duration_ms, --timeout)
    started: float = field(default_factory=time.monotonic)
    since: int = 0  # every event of the run comes after this cursor (its searches start here)
    frames: dict[str, FrameRun] = field(default_factory=dict)
    # every unsealed frame (the scheduler looks only here: a long loop's sealed frames cost
    # nothing per pass), until its last state is written
    live: dict[str, FrameRun] = field(default_factory=dict)
    loops: dict[str, LoopRun] = field(default_factory=dict)
    tasks: dict[tuple[str, str], StepTask] = field(default_factory=dict)
    root_outputs: dict[str, Any] = field(default_factory=dict)
    loop_outputs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    body_results: BodyResults = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    cancel_flag: threading.Event = field(default_factory=threading.Event)  # Ctrl-C, SIGTERM
    stopping: bool = False  # turns are being killed: no retries
    fail_flow: bool = False  # a fail-flow step timed out (§7.6)
    deadline_passed: bool = False  # the flow deadline ended the run
    profiles: Mapping[str, TurnProfile] = field(default_factory=dict)  # role -> its profile
    accounting: Accounting = field(default_factory=lambda: Accounting({}))
    backoff: Backoff = retry_delay  # how long a failed attempt waits for its retry

    @property
    def mob_id(self) -> str:
        return self.definition.mob.id

    @property
    def flow(self) -> Flow:
        return self.definition.flows[self.flow_id]

    def __post_init__(self) -> None:
        # one handle each for the whole run: a backend's handle caches what it read
        self.runs: RunStore = self.store.runs(self.mob_id)
        self.events: EventStore = self.store.events(self.mob_id)

    @property
    def root(self) -> FrameRun:
        return self.frames[f"{self.run_id}-root"]

    @property
    def output_limit(self) -> int:
        """The largest output a step may record: it is written twice in one run change (the
        output and its ledger entry), with room for the rest of the change."""
        return self.store.max_record_bytes // 2 - 4096

    def ready_frames(self) -> list[str]:
        """Unsealed frames with a ready node (§15: ``ready_frames``)."""
        return sorted(
            f
            for f, frame in self.live.items()
            if frame.sealed_as is None and frame.state.status.ready
        )

    def remaining_ms(self) -> float | None:
        if self.deadline_ms is None:
            return None
        return self.deadline_ms - (time.monotonic() - self.started) * 1000

    def context(self, frame: FrameRun) -> Context:
        """The context of conditions and templates for a node of ``frame`` (§7.1)."""
        current = None
        if frame.loop is not None:
            history = self.loop_outputs.get(frame.loop.loop_id, [])
            current = history[frame.iteration] if frame.iteration < len(history) else {}
        return build_context(self.params, self.root_outputs, self.loop_outputs, current)
