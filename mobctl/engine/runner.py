"""A flow run (flow-semantics §4-§13): created, executed to its terminal state, or resumed.

``FlowRunner`` puts the parts together: the scheduler (grants and the loop), steps and their
attempts, loops, escalation, turns on worker threads, and the recorder, which alone writes the
run's changes to the store. One main thread owns the run state; turns run on workers.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from mobctl.canonical import canonical
from mobctl.definition.model import MobDefinition, StepNode, synthesised_root
from mobctl.drivers.base import Drivers, TurnProfile
from mobctl.engine.accounting import Accounting
from mobctl.engine.attempts import Attempts
from mobctl.engine.backoff import Backoff, retry_delay
from mobctl.engine.config import flow_config, flow_digest
from mobctl.engine.custody import new_owner
from mobctl.engine.escalation import Escalation
from mobctl.engine.flow_state import FlowState
from mobctl.engine.frames import FrameState, NodeStatus, node_specs, ordered_nodes
from mobctl.engine.loops import Loops
from mobctl.engine.members import provision
from mobctl.engine.outputs import MalformedOutput, ensure_storable, structured_output
from mobctl.engine.profiles import flow_roles
from mobctl.engine.recorder import Recorder
from mobctl.engine.records import FrameRun, RunFatal, RunResult
from mobctl.engine.restore import restore
from mobctl.engine.run_context import EventCallback, RunContext
from mobctl.engine.scheduler import Scheduler
from mobctl.engine.steps import Steps
from mobctl.engine.transcripts import TranscriptWriter
from mobctl.engine.turns import DEFAULT_CONCURRENCY, Turns
from mobctl.errors import RecordTooLarge, UsageError
from mobctl.store.contract import Store
from mobctl.store.models import FlowRunState, MobctlRunState, MobRun
from mobctl.store.run_ops import first_cursor

LEASE_TTL_MS = 30_000
ABORT_WAIT = 10.0  # how long a run-fatal error waits for its killed turns to report (seconds)


class FlowRunner:
    def __init__(
        self,
        store: Store,
        definition: MobDefinition,
        flow_id: str,
        params: dict[str, Any],
        drivers: Drivers,
        *,
        spec_revision: int | None = None,
        schemas: dict[str, Any] | None = None,
        timeout_ms: int | None = None,
        on_event: EventCallback | None = None,
        cancel: threading.Event | None = None,
        profiles: Mapping[str, TurnProfile] | None = None,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        retry_backoff: Backoff = retry_delay,
    ) -> None:
        """``cancel``: set to cancel the run cleanly (Ctrl-C, SIGTERM); ``on_event`` sees each
        event once it is written; ``profiles``: each role's resolved profile, put on its turns;
        ``max_concurrency``: turns in flight at most; ``retry_backoff``: how long a failed
        attempt waits for its retry."""
        flow = definition.flows[flow_id]
        limits = definition.limits
        budgets = [b for b in (limits.max_flow_duration_ms if limits else None, timeout_ms) if b]
        ordered = ordered_nodes(node_specs(synthesised_root(flow.steps)))
        self.run = RunContext(
            store=store,
            definition=definition,
            flow_id=flow_id,
            params=params,
            run_id=str(uuid.uuid4()),
            token=str(uuid.uuid4()),
            ordered_steps=ordered,
            flow_state=FlowState.seed(definition, flow, ordered),
            revision=spec_revision,
            schemas=schemas or {},
            on_event=on_event or (lambda kind, fields: None),
            deadline_ms=min(budgets) if budgets else None,
            cancel_flag=cancel or threading.Event(),
            profiles=dict(profiles or {}),
            backoff=retry_backoff,
        )
        self.drivers = drivers
        self.spec_revision = spec_revision
        writer = TranscriptWriter(store.transcripts(self.run.mob_id), store.max_record_bytes)
        self.turns = Turns(drivers, max_concurrency=max_concurrency, transcripts=writer)
        self.recorder = Recorder(self.run, after_flush=self.turns.start_queued)
        attempts = Attempts(self.run, self.recorder, self.turns)
        self.steps = Steps(self.run, self.recorder, attempts)
        self.loops = Loops(self.run, self.recorder, self.steps)
        self.escalation = Escalation(self.run, self.recorder, self.turns, self.steps)
        self.scheduler = Scheduler(self.run, self.recorder, self.turns, self.steps, self.loops)
        self._resumed = False
        self._redispatch: list[tuple[FrameRun, str]] = []

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def mob_id(self) -> str:
        return self.run.mob_id

    @property
    def flow_id(self) -> str:
        return self.run.flow_id

    # --- lifecycle --------------------------------------------------------------------------

    def provision(self) -> None:
        """A member for every role the flow needs that has none (flow-semantics §2)."""
        run = self.run
        provision(run.store, run.definition, flow_roles(run.definition, run.flow_id))

    def create(self) -> None:
        """Provision members and create the run (status pending, lease taken)."""
        run = self.run
        try:  # checked before anything is written
            ensure_storable(run.params)
        except MalformedOutput as exc:
            raise UsageError(
                f"the run's params cannot be stored: {exc}", hint="pass params as UTF-8 text"
            ) from None
        size = len(canonical(run.params).encode())
        if size > run.output_limit:
            raise RecordTooLarge(
                f"the run's params are {size} bytes; params are limited to {run.output_limit} "
                "bytes (half of the store's record cap, MOBCTL_MAX_RECORD_BYTES)",
                hint="pass large inputs as a file path the agents read, not as a param",
            )
        self.provision()
        run.since = run.events.latest_cursor()
        owner = new_owner(run.token, ttl_ms=LEASE_TTL_MS)
        self.recorder.create(
            MobRun(
                run_id=run.run_id,
                mob_id=run.mob_id,
                flow_id=run.flow_id,
                flow_definition_digest=flow_digest(run.definition, run.flow_id),
                status="pending",
                flow_state=FlowRunState(**run.flow_state.document()),
                activation_params=run.params,
                created_at=owner.acquired_at,
                mobctl=MobctlRunState(
                    spec_revision=self.spec_revision,
                    flow_config=flow_config(run.definition, run.flow_id),
                    owner=owner,
                    drivers=self.drivers.specs,
                    first_cursor=run.since + 1,
                    accounting=run.accounting.document(),
                ),
            )
        )
        run.flow_state.drain()

    def resume(self, snapshot: MobRun, token: str) -> None:
        """Take up a run another process left (flow-semantics §12.3) from its snapshot: the
        flow state, frames, loops and outputs as written; steps that were running are
        dispatched again (their attempt numbers continue) when ``execute`` runs. ``token`` is
        the lease this process took over."""
        run = self.run
        run.run_id, run.token = snapshot.run_id, token
        run.since = first_cursor(snapshot)
        run.accounting = Accounting(snapshot.mobctl.accounting if snapshot.mobctl else None)
        if snapshot.status == "pending":  # it never started: start it now
            return
        self._resumed = True
        run.flow_state = FlowState.from_document(snapshot.flow_state.model_dump(mode="json"))
        run.root_outputs = dict(snapshot.root_step_outputs)
        run.loop_outputs = {
            k: [dict(i) for i in v] for k, v in snapshot.loop_iteration_outputs.items()
        }
        restored = restore(snapshot, run.flow)
        run.frames, run.loops = restored.frames, restored.loops
        run.body_results = restored.body_results
        run.live = {i: f for i, f in run.frames.items() if f.sealed_as is None}
        self._redispatch = [
            (frame, node_id)
            for frame in run.frames.values()
            if frame.sealed_as is None
            for node_id in frame.state.running()
            if isinstance(frame.spec.nodes[node_id], StepNode)
        ]

    def request_cancel(self) -> None:
        """Ctrl-C / SIGTERM in this process: cancel cleanly."""
        self.run.cancel_flag.set()

    def execute(self) -> RunResult:
        """Run the flow to a terminal state; never raises for flow-level failures."""
        cause: str | None = None
        try:
            try:
                if not self._resumed:
                    self._start()
                self.scheduler.loop(self._redispatch)
                cause = self._finish()
            except RunFatal as fatal:
                cause = self._abort(fatal)
            except RecordTooLarge as exc:  # that write was refused whole: end the run
                self.recorder.discard_events()
                cause = self._abort(RunFatal("internal", self._unrecordable(exc)))
            except BaseException:  # custody lost, the store failing: no turn outlives us
                self.run.stopping = True
                self.turns.stop_all()
                raise
        finally:
            self.turns.close()
        final = self.run.runs.get_run(self.run.run_id)
        assert final is not None
        timed_out = bool(final.mobctl and final.mobctl.terminal_detail == "deadline")
        return RunResult(final, cause, timed_out, self.run.warnings)

    def _start(self) -> None:
        run = self.run
        root_id = f"{run.run_id}-root"
        spec = run.flow.frame()
        root = FrameRun(root_id, spec, FrameState.seed(node_specs(spec)), 0)
        run.frames[root_id] = run.live[root_id] = root
        run.flow_state.phase = "Running"
        self.recorder.stage(status="running")
        self.recorder.emit(
            "flow_started", run_id=run.run_id, flow_id=run.flow_id, params=run.params
        )

    def _unrecordable(self, exc: RecordTooLarge) -> str:
        return (
            f"flow failed for run {self.run.run_id}: a record is too large for the store: "
            f"{exc.message} (the store's record cap, MOBCTL_MAX_RECORD_BYTES)"
        )

    # --- terminal outcomes (§11) ------------------------------------------------------------

    def _finish(self) -> str | None:
        run = self.run
        outcome = run.root.sealed_as
        if outcome == "Canceled":
            raise RunFatal("cancel_requested", "run canceled")
        escalation_error = self.escalation.escalate(outcome == "Failed")
        if escalation_error is not None:
            raise RunFatal("supervisor_escalation", f"supervisor escalation: {escalation_error}")
        run.flow_state.fold_unfinished()
        ids = {"run_id": run.run_id, "flow_id": run.flow_id}
        if outcome == "Completed":
            structured = structured_output(run.root_outputs, run.loop_outputs)
            fields = ids if structured is None else ids | {"structured_output": structured}
            self.recorder.terminal("completed", "flow_completed", fields)
            return None
        reason = f"flow failed for run {run.run_id}: root frame sealed failed"
        fields = ids | {"cause": "step_error", "reason": reason}
        self.recorder.terminal("failed", "flow_failed", fields)
        return "step_error"

    def _abort(self, fatal: RunFatal) -> str:
        """Run-fatal (§11.2): stop dispatching, kill turns, fold statuses, terminalise."""
        run = self.run
        run.deadline_passed = fatal.detail == "deadline"
        run.stopping = True
        self.turns.stop_all()
        canceled = fatal.cause == "cancel_requested"
        ended: NodeStatus = "Canceled" if canceled else "Failed"
        for task in [*self.turns.drop_queued(), *self.steps.attempts.drop_waiting()]:
            task.pending -= 1
        self._collect_stopped_turns()
        for task in run.tasks.values():
            task.frame.state.status[task.node_id] = ended
        run.tasks.clear()
        for frame in run.frames.values():
            for node_id in frame.state.running():
                frame.state.status[node_id] = ended
        run.flow_state.fold_unfinished()
        ids = {"run_id": run.run_id, "flow_id": run.flow_id}
        if canceled:
            self.recorder.terminal("canceled", "flow_canceled", ids | {"cause": fatal.cause})
        else:
            fields = ids | {"cause": fatal.cause, "reason": fatal.reason}
            self.recorder.terminal("failed", "flow_failed", fields, detail=fatal.detail)
        return fatal.cause

    def _collect_stopped_turns(self) -> None:
        """The reports of the turns just told to stop: each attempt's event, no retry."""
        deadline = time.monotonic() + ABORT_WAIT
        while any(t.pending for t in self.run.tasks.values()) and time.monotonic() < deadline:
            try:
                report = self.turns.reports.get(timeout=0.1)
            except queue.Empty:
                continue
            self.steps.attempts.result(report)
            report.task.pending -= 1
