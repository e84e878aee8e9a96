"""The flow scheduler (flow-semantics §4-§13): drives frames, loops and steps, persisting every
transition through the store contract and emitting the events of §14.

One main thread owns the run state; turns run on worker threads. Every state change, its
snapshot write and its events happen under one lock, so the snapshot and the log always agree
on order, and the snapshot is consistent after every write.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mobctl.definition.files import DefinitionFiles
from mobctl.definition.model import (
    AllPolicy,
    Flow,
    Frame,
    MobDefinition,
    QuorumPolicy,
    RepeatUntilNode,
    Step,
    StepNode,
    synthesised_root,
)
from mobctl.definition.schemas import InlineSchema, parse_schema_ref
from mobctl.drivers.base import (
    Canceled,
    Completed,
    DispatchError,
    Failed,
    Member,
    Outcome,
    TurnRequest,
)
from mobctl.drivers.selection import Drivers
from mobctl.engine.conditions import ConditionError, evaluate
from mobctl.engine.context import Context, build_context
from mobctl.engine.deadlines import Deadlines
from mobctl.engine.frames import FrameState, NodeStatus, node_specs, ordered_nodes
from mobctl.engine.members import member_of, provision
from mobctl.engine.outputs import (
    Collected,
    MalformedOutput,
    TargetResult,
    collect,
    ensure_storable,
    parse_output,
    structured_output,
)
from mobctl.engine.reasons import clip_reason, encodable
from mobctl.engine.rendering import RenderError, render_message
from mobctl.engine.state import (
    DEFAULT_STEP_TIMEOUT_MS,
    PER_STEP,
    RANK,
    BodyResults,
    FrameRun,
    LoopRun,
    RunFatal,
    RunResult,
    StepTask,
    TurnDone,
    flow_config,
    flow_digest,
    restore,
)
from mobctl.engine.tracked import Tracked
from mobctl.errors import CustodyLost, RecordTooLarge, UsageError
from mobctl.store import journal
from mobctl.store.canonical import canonical, timestamp
from mobctl.store.checkpoints import sign_after_terminal
from mobctl.store.contract import Store
from mobctl.store.models import (
    EventKind,
    FailureLedgerEntry,
    FlowRunState,
    LoopIterationLedgerEntry,
    MobctlRunState,
    MobRun,
    NewMobEvent,
    Roster,
    RunOwner,
    RunStatus,
    StepLedgerEntry,
)
from mobctl.store.process import me
from mobctl.store.runs import Output, RunExpectation, RunMutation

CANCEL_POLL = 0.25
RENEW_EVERY = 5.0
LEASE_TTL_MS = 30_000


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
        base_dir: Path | None = None,
        allowed_roots: tuple[Path, ...] = (),
        timeout_ms: int | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.store = store
        self.definition = definition
        self.mob_id = definition.mob.id
        self.flow_id = flow_id
        self.flow: Flow = definition.flows[flow_id]
        self.params = params
        self.drivers = drivers
        self.spec_revision = spec_revision
        self.schemas = schemas or {}
        # a schema file not copied at registration is read here, contained as validation reads
        self.files = DefinitionFiles(base_dir or Path("."), allowed_roots)
        self.limits = definition.limits
        self.on_event = on_event or (lambda kind, fields: None)
        self.run_id = str(uuid.uuid4())
        # a step's output is written twice in one run change (output and ledger entry)
        self.output_limit = store.max_record_bytes // 2 - 4096
        self.runs = store.runs(self.mob_id)
        self.events = store.events(self.mob_id)
        self.lock = threading.Lock()  # guards ``stops``: everything else is the main thread's
        self.done: queue.Queue[TurnDone] = queue.Queue()
        self.stops: set[threading.Event] = set()
        self.deadlines = Deadlines()
        self.warnings: list[str] = []
        self._resumed = False
        self._redispatch: list[tuple[FrameRun, str]] = []
        self.cancel_flag = threading.Event()
        self.frames: dict[str, FrameRun] = {}
        self.loops: dict[str, LoopRun] = {}
        self.tasks: dict[tuple[str, str], StepTask] = {}
        self.root_outputs: dict[str, Any] = {}
        self.loop_outputs: dict[str, list[dict[str, Any]]] = {}
        self.body_results: BodyResults = {}
        self.token = str(uuid.uuid4())
        self._roster_seen: Roster | None = None  # brought up to date before each dispatch
        self._stopping = False  # turns are being killed: no retries
        self._fail_flow = False  # a fail-flow step timed out (§7.6)
        self._deadline_passed = False  # the flow deadline ended the run
        self._last_cancel_check = 0.0
        limit = self.limits.max_flow_duration_ms if self.limits else None
        budgets = [b for b in (limit, timeout_ms) if b]
        self.deadline_ms = min(budgets) if budgets else None
        self.started = time.monotonic()
        self.last_write = time.monotonic()
        # run-level order: Kahn's algorithm over the flat steps (§5.2), as their synthesised root
        self.ordered_steps = ordered_nodes(node_specs(synthesised_root(self.flow.steps)))
        self.flow_state = Tracked(
            {k: Tracked(v) if k in PER_STEP else v for k, v in self._seed_flow_state().items()}
        )
        # written at the next flush: one journal line, one event batch, then the turns start
        self._pending = RunMutation()
        self._pending_output_bytes = 0  # of the outputs in ``_pending``
        self._pending_loops: dict[str, LoopRun] = {}
        self._pending_events: list[tuple[str, dict[str, Any]]] = []
        self._pending_turns: list[tuple[StepTask, Member, TurnRequest]] = []
        # the frames whose last state is not written yet: every unsealed frame, so the scheduler
        # looks only here (a long loop's sealed frames cost nothing per pass)
        self._live: dict[str, FrameRun] = {}

    # --- state and persistence --------------------------------------------------------------

    def _seed_flow_state(self) -> dict[str, Any]:
        steps = self.flow.steps
        limits = self.limits
        supervisor = self.definition.supervisor

        def policy(step: Step) -> str:
            p = step.collection_policy
            return (
                "Quorum"
                if isinstance(p, QuorumPolicy)
                else "All"
                if isinstance(p, AllPolicy)
                else "Any"
            )

        return {
            "phase": "Absent",
            "tracked_steps": sorted(steps),
            "ordered_steps": self.ordered_steps,
            "step_status": dict.fromkeys(steps),
            "output_recorded": dict.fromkeys(steps, False),
            "step_condition_results": dict.fromkeys(steps),
            "step_has_conditions": {s: st.condition is not None for s, st in steps.items()},
            "step_dependencies": {s: list(st.depends_on) for s, st in steps.items()},
            "step_dependency_modes": {
                s: st.depends_on_mode.capitalize() for s, st in steps.items()
            },
            "step_branches": {s: st.branch for s, st in steps.items()},
            "step_collection_policies": {s: policy(st) for s, st in steps.items()},
            "step_quorum_thresholds": {
                s: st.collection_policy.n if isinstance(st.collection_policy, QuorumPolicy) else 0
                for s, st in steps.items()
            },
            "step_target_counts": dict.fromkeys(steps, 0),
            "step_target_success_counts": dict.fromkeys(steps, 0),
            "step_target_terminal_failure_counts": dict.fromkeys(steps, 0),
            "target_retry_counts": {},
            "failure_count": 0,
            "consecutive_failure_count": 0,
            "escalation_threshold": supervisor.escalation_threshold if supervisor else 0,
            "max_step_retries": (limits.max_step_retries or 0) if limits else 0,
            "ready_frames": [],
            "ready_frame_membership": {},
            "pending_body_frame_loops": [],
            "pending_body_frame_loop_membership": {},
            "active_node_count": 0,
            "active_frame_count": 0,
            "max_active_nodes": (limits.max_active_nodes or 0) if limits else 0,
            "max_active_frames": (limits.max_active_frames or 0) if limits else 0,
            "max_frame_depth": (limits.max_frame_depth or 0) if limits else 0,
            "last_granted_frame": None,
            "last_granted_loop": None,
        }

    def _refresh_registrations(self) -> None:
        state = self.flow_state
        ready = sorted(
            f for f, fr in self._live.items() if fr.sealed_as is None and fr.state.status.ready
        )
        pending = sorted(state["pending_body_frame_loops"])
        for key, value in (
            ("ready_frames", ready),
            ("ready_frame_membership", dict.fromkeys(ready, True)),
            ("pending_body_frame_loops", pending),
            ("pending_body_frame_loop_membership", dict.fromkeys(pending, True)),
        ):
            if state[key] != value:
                state[key] = value

    def _stage(
        self,
        *,
        loops: list[LoopRun] = (),  # type: ignore[assignment]
        status: str | None = None,
        step_entries: list[StepLedgerEntry] | None = None,
        step_entries_if_absent: list[StepLedgerEntry] | None = None,
        failures: list[FailureLedgerEntry] | None = None,
        loop_ledger: list[LoopIterationLedgerEntry] | None = None,
        outputs: list[Output] | None = None,
    ) -> None:
        """Add to the next write the parts a transition changed besides the flow state and the
        frames (which are tracked as they change)."""
        pending = self._pending
        if status is not None:
            pending.status = status  # type: ignore[assignment]
        for loop in loops:
            self._pending_loops[loop.instance_id] = loop
        pending.step_entries += step_entries or []
        pending.step_entries_if_absent += step_entries_if_absent or []
        pending.failure_entries += failures or []
        pending.loop_ledger += loop_ledger or []
        pending.outputs += outputs or []

    def _state_ops(self) -> list[journal.Op]:
        self._refresh_registrations()
        state = self.flow_state
        whole = state.drain()
        ops: list[journal.Op] = [("set", ("flow_state", key), state[key]) for key in sorted(whole)]
        for key in PER_STEP:
            value = state[key]
            changed = value.drain() if isinstance(value, Tracked) else set()
            if key not in whole:
                ops += [("set", ("flow_state", key, k), value[k]) for k in sorted(changed)]
        for frame_id, frame in list(self._live.items()):
            ops += frame.changes()
            if frame.sealed_as is not None:
                del self._live[frame_id]
        return ops

    def _flush(self) -> None:
        """Write what the transitions since the last flush changed, as one journal line, then
        their events as one batch, then start the turns they dispatched: a turn never starts
        before its dispatch is durable."""
        mutation, self._pending = self._pending, RunMutation()
        self._pending_output_bytes = 0
        mutation.sets = self._state_ops()
        mutation.loops = {i: loop.snapshot() for i, loop in self._pending_loops.items()}
        self._pending_loops = {}
        if mutation != RunMutation():
            if not self.runs.mutate_run(self.run_id, RunExpectation(), mutation, fence=self.token):
                raise CustodyLost(self.mob_id, self.run_id)
            self.last_write = time.monotonic()
        events, self._pending_events = self._pending_events, []
        if events:
            self.events.append_batch(
                [
                    NewMobEvent(mob_id=self.mob_id, kind=EventKind(type=kind, **fields))
                    for kind, fields in events
                ]
            )
            for kind, fields in events:
                self.on_event(kind, fields)
        turns, self._pending_turns = self._pending_turns, []
        for task, member, request in turns:
            self.pool.submit(self._run_turn, task, member, request)

    def _emit(self, kind: str, **fields: Any) -> None:
        self._pending_events.append((kind, fields))

    def _emit_step_failed(self, step_id: str, reason: str) -> None:
        """``step_failed`` is written if absent (repair may have written it): after a flush,
        so that it keeps its place in the log."""
        self._flush()
        self.events.append_step_failed_event_if_absent(
            NewMobEvent(
                mob_id=self.mob_id,
                kind=EventKind(
                    type="step_failed", run_id=self.run_id, step_id=step_id, reason=reason
                ),
            )
        )
        self.on_event("step_failed", {"step_id": step_id, "reason": reason})

    # --- lifecycle --------------------------------------------------------------------------

    def flow_config(self) -> dict[str, Any]:
        return flow_config(self.definition, self.flow_id)

    def provision(self) -> None:
        """A member for every role the flow needs that has none (flow-semantics §9)."""
        roles = [s.role for s in self.flow.steps.values()]
        if self.definition.supervisor is not None:
            roles.append(self.definition.supervisor.role)
        provision(self.store, self.definition, roles)

    def create(self) -> None:
        """Provision members and create the run (status pending, lease taken)."""
        try:  # checked before anything is written
            ensure_storable(self.params)
        except MalformedOutput as exc:
            raise UsageError(f"the run's params cannot be stored: {exc}") from None
        size = len(canonical(self.params).encode())
        if size > self.output_limit:
            raise RecordTooLarge(
                f"the run's params are {size} bytes; params are limited to {self.output_limit} "
                "bytes (half of the store's record cap, MOBCTL_MAX_RECORD_BYTES)",
                hint="pass large inputs as a file path the agents read, not as a param",
            )
        self.provision()
        config = self.flow_config()
        digest = flow_digest(self.definition, self.flow_id)
        pid, host, started = me()
        now = timestamp()
        owner = RunOwner(
            token=self.token,
            pid=pid,
            host=host,
            process_start=started,
            acquired_at=now,
            heartbeat_at=now,
            ttl_ms=LEASE_TTL_MS,
        )
        run = MobRun(
            run_id=self.run_id,
            mob_id=self.mob_id,
            flow_id=self.flow_id,
            flow_definition_digest=digest,
            status="pending",
            flow_state=FlowRunState(**self.flow_state),
            activation_params=self.params,
            created_at=now,
            mobctl=MobctlRunState(
                spec_revision=self.spec_revision,
                flow_config=config,
                owner=owner,
                drivers=self.drivers.specs,
            ),
        )
        self.runs.create_run(run)

    def execute(self) -> RunResult:
        """Run the flow to a terminal state; never raises for flow-level failures."""
        cause: str | None = None
        try:
            with ThreadPoolExecutor(max_workers=64, thread_name_prefix="turn") as self.pool:
                try:
                    if not self._resumed:
                        self._start()
                    self._loop()
                    cause = self._finish()
                except RunFatal as fatal:
                    cause = self._abort(fatal)
                except RecordTooLarge as exc:  # that write was refused whole: end the run
                    self._pending_events.clear()  # they tell of the changes it did not record
                    cause = self._abort(RunFatal("internal", self._unrecordable(exc)))
                except BaseException:  # custody lost, the store failing: no turn outlives us
                    self._stop_turns()
                    raise
        finally:
            self.deadlines.close()
        run = self.runs.get_run(self.run_id)
        assert run is not None
        timed_out = bool(run.mobctl and run.mobctl.terminal_detail == "deadline")
        return RunResult(run, cause, timed_out, self.warnings)

    def _unrecordable(self, exc: RecordTooLarge) -> str:
        return (
            f"flow failed for run {self.run_id}: a record is too large for the store: "
            f"{exc.message} (the store's record cap, MOBCTL_MAX_RECORD_BYTES)"
        )

    def resume(self, run: MobRun, token: str) -> None:
        """Take up a run another process left (flow-semantics §12.3) from its snapshot: the
        flow state, frames, loops and outputs as written; steps that were running are
        dispatched again (their attempt numbers continue) when ``execute`` runs. ``token`` is
        the lease this process took over."""
        self.run_id, self.token = run.run_id, token
        if run.status == "pending":  # it never started: start it now
            return
        self._resumed = True
        state = run.flow_state.model_dump(mode="json")
        self.flow_state = Tracked({k: Tracked(v) if k in PER_STEP else v for k, v in state.items()})
        self.root_outputs = dict(run.root_step_outputs)
        self.loop_outputs = {k: [dict(i) for i in v] for k, v in run.loop_iteration_outputs.items()}
        restored = restore(run, self.flow)
        self.frames, self.loops = restored.frames, restored.loops
        self.body_results = restored.body_results
        self._live = {i: f for i, f in self.frames.items() if f.sealed_as is None}
        self._redispatch = [
            (frame, node_id)
            for frame in self.frames.values()
            if frame.sealed_as is None
            for node_id in frame.state.running()
            if isinstance(frame.spec.nodes[node_id], StepNode)
        ]

    def request_cancel(self) -> None:
        """Ctrl-C / SIGTERM in this process: cancel cleanly."""
        self.cancel_flag.set()

    def _start(self) -> None:
        root_id = f"{self.run_id}-root"
        root = FrameRun(
            root_id, self.flow.frame(), FrameState.seed(node_specs(self.flow.frame())), 0
        )
        self.frames[root_id] = self._live[root_id] = root
        self.flow_state["phase"] = "Running"
        self._stage(status="running")
        self._emit("flow_started", run_id=self.run_id, flow_id=self.flow_id, params=self.params)

    # --- the scheduler loop -----------------------------------------------------------------

    def _loop(self) -> None:
        root = self.frames[f"{self.run_id}-root"]
        redispatch, self._redispatch = self._redispatch, []
        for frame, node_id in redispatch:  # a resumed run's steps that were running
            self._start_step(frame, node_id, again=True)
        while True:
            self._guards()
            granted = self._grant_nodes() | self._grant_body_frames()
            advanced = self._revisit_frames()
            self._flush()
            if root.sealed_as is not None and not self.tasks:
                return
            if self.tasks:
                try:
                    report = self.done.get(timeout=CANCEL_POLL)
                except queue.Empty:
                    self._heartbeat()
                    continue
                while True:  # every report that is in: one flush for all of them
                    self._turn_ended(report)
                    try:
                        report = self.done.get_nowait()
                    except queue.Empty:
                        break
            elif not granted and not advanced:
                raise RunFatal(
                    "internal",
                    f"frame runtime stalled for root frame '{root.frame_id}' in run "
                    f"'{self.run_id}'",
                )

    def _guards(self) -> None:
        if self.cancel_flag.is_set() or self._cancel_requested():
            raise RunFatal("cancel_requested", "run canceled")
        if self.deadline_ms is not None:
            over = (time.monotonic() - self.started) * 1000 - self.deadline_ms
            if over >= 0:
                extra = f" (+{int(over)}ms)" if over >= 1 else ""
                raise RunFatal(
                    "step_error",
                    f"flow failed for run {self.run_id}: max flow duration exceeded for "
                    f"{self.run_id}{extra}",
                    detail="deadline",
                )

    def _cancel_requested(self) -> bool:
        now = time.monotonic()
        if now - self._last_cancel_check < CANCEL_POLL:
            return False
        self._last_cancel_check = now
        return bool(self.runs.cancel_request(self.run_id))

    def _heartbeat(self) -> None:
        if time.monotonic() - self.last_write > RENEW_EVERY:
            if not self.runs.renew_run_lease(self.run_id, self.token):
                raise CustodyLost(self.mob_id, self.run_id)
            self.last_write = time.monotonic()

    def _grant_nodes(self) -> bool:
        granted = False
        while True:
            ready = sorted(
                f for f, fr in self._live.items() if fr.sealed_as is None and fr.state.ready_queue()
            )
            if not ready:
                return granted
            frame = self.frames[ready[0]]
            node_id = frame.state.ready_queue()[0]
            spec = frame.state.specs[node_id]
            if spec.kind == "Step":
                limit = self.flow_state["max_active_nodes"]
                if limit and self.flow_state["active_node_count"] >= limit:
                    return granted
                frame.state.admit()
                self.flow_state["active_node_count"] += 1
                self.flow_state["last_granted_frame"] = frame.frame_id
                self._start_step(frame, node_id)
            else:
                frame.state.admit()
                self._start_loop(frame, node_id)
            granted = True

    def _grant_body_frames(self) -> bool:
        granted = False
        while self.flow_state["pending_body_frame_loops"]:
            limit = self.flow_state["max_active_frames"]
            if limit and self.flow_state["active_frame_count"] >= limit:
                break
            instance = sorted(self.flow_state["pending_body_frame_loops"])[0]
            self.flow_state["pending_body_frame_loops"].remove(instance)
            loop = self.loops[instance]
            k = loop.current_iteration
            frame_id = f"{instance}::iter-{k}"
            body = loop.spec.body
            frame = FrameRun(frame_id, body, FrameState.seed(node_specs(body)), loop.depth, loop, k)
            self.frames[frame_id] = self._live[frame_id] = frame
            loop.stage = "BodyFrameActive"
            loop.body_frame = frame_id
            self.flow_state["active_frame_count"] += 1
            self.flow_state["last_granted_loop"] = instance
            self._stage(
                loops=[loop],
                loop_ledger=[
                    LoopIterationLedgerEntry(
                        loop_instance_id=instance, iteration=k, frame_id=frame_id
                    )
                ],
            )
            granted = True
        return granted

    # --- steps ------------------------------------------------------------------------------

    def _context(self, frame: FrameRun) -> Context:
        current = None
        if frame.loop is not None:
            history = self.loop_outputs.get(frame.loop.loop_id, [])
            current = history[frame.iteration] if frame.iteration < len(history) else {}
        return build_context(self.params, self.root_outputs, self.loop_outputs, current)

    def _start_step(self, frame: FrameRun, node_id: str, *, again: bool = False) -> None:
        """A new execution of a step (``again``: a resumed run's running step, dispatched
        again, whose attempt numbers continue)."""
        node = frame.spec.nodes[node_id]
        assert isinstance(node, StepNode)
        step_id = node.step_id
        step = self.flow.steps[step_id]
        context = self._context(frame)
        if step.condition is not None:
            try:
                ok = evaluate(step.condition, context)
            except ConditionError as exc:
                raise RunFatal("internal", exc.message(step=step_id)) from exc
            if not ok:
                self._step_terminal(
                    frame, node_id, step_id, "Skipped", reason="condition evaluated to false"
                )
                return
        try:
            message = render_message(step.message, context)
        except RenderError as exc:
            self._step_terminal(frame, node_id, step_id, "Failed", reason=exc.message(step_id))
            return
        self._check_topology(step)
        current = self._roster()
        targets = [member_of(m) for m in current.of_role(step.role)]
        policy = step.collection_policy
        if isinstance(policy, QuorumPolicy) and len(targets) < policy.n:
            raise RunFatal(
                "insufficient_targets",
                f"insufficient targets for step {step_id}: required {policy.n}, "
                f"available {len(targets)}",
            )
        if not targets:
            self._step_terminal(
                frame,
                node_id,
                step_id,
                "Failed",
                reason=f"insufficient targets for step {step_id}: required 1, available 0",
            )
            return
        if step.dispatch_mode == "one_to_one":
            targets = targets[:1]
        self.flow_state["step_target_counts"][step_id] = len(targets)
        timeout = step.timeout_ms or DEFAULT_STEP_TIMEOUT_MS
        fail_flow = False
        if self.deadline_ms is not None:
            remaining = self.deadline_ms - (time.monotonic() - self.started) * 1000
            if remaining <= timeout:
                timeout, fail_flow = max(int(remaining), 1), True
        rendered = (
            message if isinstance(message, str) else [b.model_dump(mode="json") for b in message]
        )
        task = StepTask(
            frame,
            node_id,
            step_id,
            step,
            targets,
            fail_flow,
            rendered,
            timeout,
            self._runtime_modes(current),
            pending=len(targets),
        )
        self.tasks[(frame.frame_id, node_id)] = task
        counts = self.flow_state["target_retry_counts"]
        for member in targets:
            if not again:  # attempts count per execution: from 1 in each loop iteration (§7.5)
                counts[f"{step_id}:{member.identity}"] = 0
            self._dispatch(task, member)

    def _roster(self) -> Roster:
        """The active members now: a member retired during the run gets no new turn. Read
        incrementally (only the events since the last look), so a step costs the same late in
        a long run as early."""
        self._roster_seen = self.events.roster(since=self._roster_seen)
        return self._roster_seen

    @staticmethod
    def _runtime_modes(current: Roster) -> dict[str, str]:
        """Each member's runtime mode as recorded when it was spawned (from the realm
        profile too), which decides whether a tool overlay can be enforced (§7.5)."""
        return {m.identity: m.runtime_mode for m in current.active.values()}

    def _check_topology(self, step: Step) -> None:
        topology = self.definition.topology
        orchestrator = self.definition.mob.orchestrator
        if topology is None or orchestrator is None:
            return
        source = orchestrator.profile
        allowed = True
        for rule in topology.rules:
            if rule.from_role in (source, "*") and rule.to_role in (step.role, "*"):
                allowed = rule.allowed
        if allowed:
            return
        if topology.mode == "strict":
            raise RunFatal("topology_violation", f"topology violation: {source} -> {step.role}")
        self._emit("topology_violation", from_role=source, to_role=step.role)

    def _dispatch(self, task: StepTask, member: Member) -> None:
        """One attempt of one target: recorded (written before the turn starts), then the
        turn is queued for the next flush."""
        step, step_id = task.step, task.step_id
        counts = self.flow_state["target_retry_counts"]
        key = f"{step_id}:{member.identity}"
        attempt = counts.get(key, 0) + 1
        counts[key] = attempt
        self.flow_state["step_status"][step_id] = "Dispatched"
        if task.frame.loop is None:
            entry = StepLedgerEntry(step_id=step_id, status="dispatched", timestamp=timestamp())
            self._stage(step_entries_if_absent=[entry])
        target = {"identity": member.identity, "generation": member.generation}
        self._emit(
            "step_dispatched", run_id=self.run_id, step_id=step_id, target=target, attempt=attempt
        )
        overlay = step.allowed_tools is not None or step.blocked_tools is not None
        if overlay and task.runtime.get(member.identity) == "autonomous_host":
            rejected = DispatchError(
                f"flow step dispatch rejected for '{member.identity}': turn tool overlay cannot "
                "be enforced for an autonomous-host member (overlay_autonomous)"
            )
            self.done.put(TurnDone(task, member, rejected, False))
            return
        request = TurnRequest(
            kind="step",
            mob_id=self.mob_id,
            run_id=self.run_id,
            flow_id=self.flow_id,
            step_id=step_id,
            member=member,
            message=task.message,
            output_format=step.effective_output_format,
            allowed_tools=step.allowed_tools,
            blocked_tools=step.blocked_tools,
            attempt=attempt,
            frame_id=task.frame.frame_id,
            loop_id=task.frame.loop.loop_id if task.frame.loop else None,
            iteration=task.frame.iteration,
            params=self.params,
            timeout_ms=task.timeout_ms,
        )
        self._pending_turns.append((task, member, request))

    def _run_turn(self, task: StepTask, member: Member, request: TurnRequest) -> None:
        """On a worker thread: run the turn and report; never touches the run state."""
        outcome: Outcome | DispatchError
        timed_out = False
        try:
            outcome, timed_out = self._turn(request, member, task.timeout_ms)
        except Exception as exc:  # a driver bug: report it as a failed dispatch, never hang
            outcome = DispatchError(clip_reason(f"internal error in the driver: {exc}"))
        self.done.put(TurnDone(task, member, outcome, timed_out))

    def _turn_ended(self, report: TurnDone) -> None:
        """A target's attempt ended: its event, then a retry, or the target's result (and the
        step's, once every target has one)."""
        result = self._attempt_result(report)
        if result is None:
            self._dispatch(report.task, report.member)
            return
        task = report.task
        task.results.append(result)
        task.pending -= 1
        if task.pending == 0 and not self._stopping:
            self._complete_step(task)

    def _attempt_result(self, report: TurnDone) -> TargetResult | None:
        """The target's result, or None when the attempt is to be retried."""
        task, member, outcome = report.task, report.member, report.outcome
        step, step_id = task.step, task.step_id
        target = {"identity": member.identity, "generation": member.generation}
        reason: str | None = None
        retry = False
        if isinstance(outcome, DispatchError):
            return TargetResult(member.identity, False, reason=str(outcome))
        cut = isinstance(outcome, Canceled) and self._deadline_passed and task.fail_flow
        if report.timed_out or cut:  # cut: its timeout is the flow deadline, seen first here
            reason = f"timeout + canceled after {task.timeout_ms}ms"
        elif isinstance(outcome, Canceled):
            reason = (
                "run canceled while remote turn was in flight"
                if self.cancel_flag.is_set() or self._stopping
                else "canceled"
            )
        elif isinstance(outcome, Failed):
            reason, retry = outcome.reason, True
        else:
            assert isinstance(outcome, Completed)
            try:
                value = parse_output(
                    outcome.output, outcome.structured_output, step.effective_output_format
                )
            except MalformedOutput as exc:
                kind = "JSON" if step.effective_output_format == "json" else "text"
                raw = encodable(outcome.output[:200])
                reason = (
                    f"malformed {kind} output for step '{step_id}' target "
                    f"'{member.identity}': {exc}; "
                    f'raw_output="{raw}..."'
                )
                retry = True
            else:
                size = len(canonical(value).encode())
                if size > self.output_limit:
                    return self._oversized(task, member, size)
                self._emit(
                    "step_target_completed",
                    run_id=self.run_id,
                    step_id=step_id,
                    target=target,
                    output=value,
                )
                return TargetResult(member.identity, True, value)
        self._emit(
            "step_target_failed", run_id=self.run_id, step_id=step_id, target=target, reason=reason
        )
        failed = task.failures[member.identity] = task.failures.get(member.identity, 0) + 1
        if report.timed_out and task.fail_flow:
            self._fail_flow = True
        if not retry or failed > self.flow_state["max_step_retries"] or self._stopping:
            return TargetResult(member.identity, False, reason=reason or "failed")
        return None

    def _turn(
        self, request: TurnRequest, member: Member, timeout_ms: int
    ) -> tuple[Outcome | DispatchError, bool]:
        stop = threading.Event()
        timed_out = threading.Event()
        with self.lock:
            self.stops.add(stop)

        def expire() -> None:
            timed_out.set()
            stop.set()

        deadline = self.deadlines.add(timeout_ms / 1000, expire)
        try:
            outcome = self.drivers.for_role(member.role).run(request, stop)
        except DispatchError as exc:
            return DispatchError(clip_reason(str(exc))), False
        else:  # where a driver's reason enters the engine: bounded from here on
            if isinstance(outcome, Failed):
                outcome = Failed(clip_reason(outcome.reason))
            return outcome, timed_out.is_set()
        finally:
            self.deadlines.cancel(deadline)
            with self.lock:
                self.stops.discard(stop)

    def _stop_turns(self) -> None:
        self._stopping = True
        with self.lock:
            for stop in list(self.stops):
                stop.set()

    def _complete_step(self, task: StepTask) -> None:
        del self.tasks[(task.frame.frame_id, task.node_id)]
        if self._fail_flow:
            raise RunFatal(
                "step_error",
                f"flow failed for run {self.run_id}: max flow duration exceeded for {self.run_id}",
                detail="deadline",
            )
        step, step_id = task.step, task.step_id
        successes = sum(1 for r in task.results if r.ok)
        self.flow_state["step_target_success_counts"][step_id] = successes
        collected = collect(task.results, step.collection_policy, step.dispatch_mode)
        if collected.ok and step.expected_schema_ref is not None:
            problem = self._schema_problem(step.expected_schema_ref, collected.aggregate)
            if problem is not None:
                self._step_terminal(
                    task.frame,
                    task.node_id,
                    step_id,
                    "Failed",
                    reason=f"schema validation failed for step {step_id}: {problem}",
                )
                return
        size = len(canonical(collected.aggregate).encode()) if collected.ok else 0
        if size > self.output_limit:
            collected = Collected(False, reason=self._too_large(f"step {step_id}", size))
        if not collected.ok:
            self._step_terminal(
                task.frame, task.node_id, step_id, "Failed", reason=collected.reason
            )
            return
        if self._pending_output_bytes + size > self.output_limit:
            self._flush()  # each output fits a run change, several in one may not
        self._pending_output_bytes += size
        self._emit("step_completed", run_id=self.run_id, step_id=step_id)
        self._step_terminal(
            task.frame, task.node_id, step_id, "Completed", output=collected.aggregate
        )

    def _too_large(self, what: str, size: int) -> str:
        return (
            f"the output of {what} is {size} bytes; outputs are limited to {self.output_limit} "
            "bytes (half of the store's record cap, MOBCTL_MAX_RECORD_BYTES)"
        )

    def _oversized(self, task: StepTask, member: Member, size: int) -> TargetResult:
        """A target's output too large to record: the attempt fails (a retry would not help)."""
        reason = self._too_large(f"'{member.identity}' for step {task.step_id}", size)
        target = {"identity": member.identity, "generation": member.generation}
        self._emit(
            "step_target_failed",
            run_id=self.run_id,
            step_id=task.step_id,
            target=target,
            reason=reason,
        )
        return TargetResult(member.identity, False, reason=reason)

    def _schema_problem(self, ref_text: str, value: Any) -> str | None:
        import jsonschema

        ref = parse_schema_ref(ref_text)
        try:
            if isinstance(ref, InlineSchema):
                schema = ref.schema
            elif ref.name in self.schemas:
                schema = self.schemas[ref.name]
            else:
                schema = json.loads(self.files.read_text(ref.name))
            validator_cls = jsonschema.validators.validator_for(
                schema, default=jsonschema.Draft202012Validator
            )
            error = jsonschema.exceptions.best_match(validator_cls(schema).iter_errors(value))
        except (OSError, ValueError, jsonschema.SchemaError) as exc:
            return str(exc).splitlines()[0]
        except RecursionError:  # a recursive schema walking a deep output: Python's stack
            return "the output is nested too deeply to validate"
        return None if error is None else error.message

    def _step_terminal(
        self,
        frame: FrameRun,
        node_id: str,
        step_id: str,
        status: str,
        *,
        reason: str | None = None,
        output: Any = None,
    ) -> None:
        """One write: node terminal, slot released, output, ledger; then the events."""
        if reason is not None:  # several targets' reasons joined, a schema error, ...
            reason = clip_reason(reason)
        skipped = frame.state.finish(node_id, status, reason if status == "Skipped" else None)  # type: ignore[arg-type]
        self.flow_state["active_node_count"] = max(self.flow_state["active_node_count"] - 1, 0)
        root_level = frame.loop is None
        entries: list[StepLedgerEntry] = []
        failures: list[FailureLedgerEntry] = []
        outputs: list[Output] = []
        now = timestamp()
        if status == "Completed":
            if root_level:
                self.root_outputs[step_id] = output
                outputs.append(Output(step_id, output))
            else:
                assert frame.loop is not None
                history = self.loop_outputs.setdefault(frame.loop.loop_id, [])
                while len(history) <= frame.iteration:
                    history.append({})
                history[frame.iteration][step_id] = output
                outputs.append(Output(step_id, output, (frame.loop.loop_id, frame.iteration)))
            self.flow_state["output_recorded"][step_id] = True
        if root_level:
            self.flow_state["step_status"][step_id] = status
            ledger_status = status.lower()
            entries.append(
                StepLedgerEntry(
                    step_id=step_id,
                    status=ledger_status,
                    output=output if status == "Completed" else None,
                    timestamp=now,
                )
            )
            if status == "Failed":
                failures.append(
                    FailureLedgerEntry(step_id=step_id, reason=reason or "", timestamp=now)
                )
                self.flow_state["failure_count"] += 1
        else:
            self.body_results.setdefault(step_id, {})[status] = (output, reason)
        propagated = self._record_skips(frame, skipped, entries, now)
        self._stage(step_entries=entries, failures=failures, outputs=outputs)
        if root_level and status == "Failed":
            self._emit_step_failed(step_id, reason or "")
        if root_level and status == "Skipped":
            self._emit("step_skipped", run_id=self.run_id, step_id=step_id, reason=reason or "")
        for skipped_step, why in propagated:
            self._emit("step_skipped", run_id=self.run_id, step_id=skipped_step, reason=why)

    def _record_skips(
        self,
        frame: FrameRun,
        skipped: list[tuple[str, str]],
        entries: list[StepLedgerEntry],
        now: str,
    ) -> list[tuple[str, str]]:
        """Run-level records of nodes skipped by propagation (root-frame steps, loop bodies)."""
        events = []
        for node_id, why in skipped:
            node = frame.spec.nodes[node_id]
            if isinstance(node, RepeatUntilNode):
                why = f"enclosing loop '{node.loop_id}' was skipped"
                for body_step in self._body_steps(node.body):
                    events += self._skip_step(frame, body_step, why, entries, now)
            else:
                events += self._skip_step(frame, node.step_id, why, entries, now)
        return events

    def _skip_step(
        self, frame: FrameRun, step_id: str, why: str, entries: list[StepLedgerEntry], now: str
    ) -> list[tuple[str, str]]:
        """A skipped step: recorded now in the root frame, at its loop's end in a body."""
        if frame.loop is None:
            self.flow_state["step_status"][step_id] = "Skipped"
            entries.append(StepLedgerEntry(step_id=step_id, status="skipped", timestamp=now))
            return [(step_id, why)]
        self.body_results.setdefault(step_id, {})["Skipped"] = (None, why)
        return []

    def _body_steps(self, frame: Frame) -> list[str]:
        found = []
        for node in frame.nodes.values():
            if isinstance(node, StepNode):
                found.append(node.step_id)
            else:
                found += self._body_steps(node.body)
        return sorted(
            found, key=lambda s: self.ordered_steps.index(s) if s in self.ordered_steps else 0
        )

    # --- loops ------------------------------------------------------------------------------

    def _start_loop(self, frame: FrameRun, node_id: str) -> None:
        node = frame.spec.nodes[node_id]
        assert isinstance(node, RepeatUntilNode)
        depth = frame.depth + 1
        limit = self.flow_state["max_frame_depth"]
        if limit and depth > limit:
            raise RunFatal(
                "internal",
                f"loop '{node.loop_id}' would exceed max_frame_depth={limit} "
                f"(current depth={depth})",
            )
        instance = f"{frame.frame_id}::{node_id}"
        loop = LoopRun(instance, node.loop_id, frame.frame_id, node_id, depth, node)
        self.loops[instance] = loop
        self.flow_state["pending_body_frame_loops"].append(instance)
        self._stage(loops=[loop])

    def _revisit_frames(self) -> bool:
        """Seal finished frames and advance their loops; True if anything changed."""
        changed = False
        for frame in sorted(self._live.values(), key=lambda f: -len(f.frame_id)):
            if frame.sealed_as is not None:
                continue
            outcome = frame.state.sealed()
            if outcome is None:
                continue
            frame.sealed_as = outcome
            changed = True
            if frame.loop is None:
                continue
            self.flow_state["active_frame_count"] -= 1
            self._advance_loop(frame.loop, frame, outcome)
        return changed

    def _advance_loop(self, loop: LoopRun, body: FrameRun, outcome: str) -> None:
        parent = self.frames[loop.parent_frame]
        loop.body_frame = None
        if outcome == "Completed":
            loop.last_completed_iteration = loop.current_iteration
            loop.current_iteration += 1
            loop.stage = "AwaitingUntilEvaluation"
            try:
                done = evaluate(loop.spec.until, self._context(body))
            except ConditionError as exc:
                raise RunFatal("internal", exc.message(loop=loop.loop_id)) from exc
            if not done and loop.current_iteration < loop.spec.max_iterations:
                loop.stage = "AwaitingBodyFrame"
                self.flow_state["pending_body_frame_loops"].append(loop.instance_id)
                self._stage(loops=[loop])
                return
            loop.phase = "Completed" if done else "Exhausted"
            node_status = "Completed" if done else "Failed"
        else:
            loop.phase = outcome
            node_status = outcome
        loop.stage = "Terminal"
        skipped = parent.state.finish(loop.node_id, node_status)  # type: ignore[arg-type]
        entries: list[StepLedgerEntry] = []
        now = timestamp()
        events = self._record_skips(parent, skipped, entries, now)
        body_events: list[tuple[str, str, str]] = []
        failures: list[FailureLedgerEntry] = []
        if parent.loop is None:
            body_events = self._settle_body_steps(loop, node_status, entries, failures, now)
        self._stage(loops=[loop], step_entries=entries, failures=failures)
        for kind, step_id, reason in body_events:
            if kind == "step_failed":
                self._emit_step_failed(step_id, reason)
            else:
                self._emit("step_skipped", run_id=self.run_id, step_id=step_id, reason=reason)
        for step_id, why in events:
            self._emit("step_skipped", run_id=self.run_id, step_id=step_id, reason=why)

    def _settle_body_steps(
        self,
        loop: LoopRun,
        node_status: str,
        entries: list[StepLedgerEntry],
        failures: list[FailureLedgerEntry],
        now: str,
    ) -> list[tuple[str, str, str]]:
        """§10.5: a root-level loop's body steps get their run-level status now."""
        events = []
        for step_id in self._body_steps(loop.spec.body):
            results = self.body_results.pop(step_id, {})
            if node_status == "Canceled" or not results:
                if node_status == "Canceled":
                    self.flow_state["step_status"][step_id] = "Canceled"
                continue
            best = max(results, key=lambda status: RANK.get(status, 0))
            value, reason = results[best]
            self.flow_state["step_status"][step_id] = best
            if best == "Completed":
                entries.append(
                    StepLedgerEntry(
                        step_id=step_id, status="completed", output=value, timestamp=now
                    )
                )
            elif best == "Failed":
                entries.append(StepLedgerEntry(step_id=step_id, status="failed", timestamp=now))
                failures.append(
                    FailureLedgerEntry(step_id=step_id, reason=reason or "", timestamp=now)
                )
                self.flow_state["failure_count"] += 1
                events.append(("step_failed", step_id, reason or ""))
            else:
                entries.append(StepLedgerEntry(step_id=step_id, status="skipped", timestamp=now))
                events.append(("step_skipped", step_id, reason or ""))
        return events

    # --- terminal outcomes ------------------------------------------------------------------

    def _finish(self) -> str | None:
        root = self.frames[f"{self.run_id}-root"]
        outcome = root.sealed_as
        if outcome == "Canceled":
            raise RunFatal("cancel_requested", "run canceled")
        escalation_error = self._escalate(outcome == "Failed")
        if escalation_error is not None:
            raise RunFatal("supervisor_escalation", f"supervisor escalation: {escalation_error}")
        self._fold_unfinished()
        if outcome == "Completed":
            fields: dict[str, Any] = {"run_id": self.run_id, "flow_id": self.flow_id}
            structured = structured_output(self.root_outputs, self.loop_outputs)
            if structured is not None:
                fields["structured_output"] = structured
            self._terminal("completed", "flow_completed", fields)
            return None
        reason = f"flow failed for run {self.run_id}: root frame sealed failed"
        self._terminal(
            "failed",
            "flow_failed",
            {
                "run_id": self.run_id,
                "flow_id": self.flow_id,
                "cause": "step_error",
                "reason": reason,
            },
        )
        return "step_error"

    def _escalate(self, root_failed: bool) -> str | None:
        supervisor = self.definition.supervisor
        if supervisor is None or supervisor.escalation_threshold == 0:
            return None
        consecutive = self.flow_state["consecutive_failure_count"]
        for step_id in self.ordered_steps:
            status = self.flow_state["step_status"].get(step_id)
            if status == "Completed":
                consecutive = 0
            elif status == "Failed":
                escalate = consecutive + 1 >= supervisor.escalation_threshold
                consecutive += 1
                if not escalate:
                    continue
                reason = self._failure_reason(step_id)
                error = self._escalation_turn(
                    step_id, reason, supervisor.role, supervisor.turn_timeout_ms
                )
                if error is not None:
                    if root_failed:
                        return error
                    self._emit(
                        "supervisor_escalation_failed",
                        run_id=self.run_id,
                        step_id=step_id,
                        reason=error,
                    )
                elif root_failed:
                    for member in sorted(self._roster().active.values(), key=lambda m: m.identity):
                        self._emit(
                            "member_retired",
                            agent_identity=member.identity,
                            generation=member.generation,
                            role=member.role,
                        )
        self.flow_state["consecutive_failure_count"] = consecutive
        return None

    def _failure_reason(self, step_id: str) -> str:
        run = self.runs.get_run(self.run_id)
        for entry in reversed(run.failure_ledger if run else []):
            if entry.step_id == step_id:
                return entry.reason
        return "failed"

    def _escalation_turn(self, step_id: str, reason: str, role: str, timeout_ms: int) -> str | None:
        members = self._roster().of_role(role)
        if not members:
            return f"no active supervisor member for role '{role}'"
        member = member_of(members[0])
        request = TurnRequest(
            kind="escalation",
            mob_id=self.mob_id,
            run_id=self.run_id,
            flow_id=self.flow_id,
            step_id=step_id,
            member=member,
            message=f"Supervisor escalation for run '{self.run_id}', step '{step_id}': {reason}",
            params=self.params,
            timeout_ms=timeout_ms,
        )
        outcome, timed_out = self._turn(request, member, timeout_ms)
        if timed_out:
            return f"supervisor escalation timed out after {timeout_ms}ms"
        if isinstance(outcome, DispatchError):
            return str(outcome)
        if isinstance(outcome, Failed):
            return outcome.reason
        if isinstance(outcome, Canceled):
            return "canceled"
        self._emit(
            "supervisor_escalation",
            run_id=self.run_id,
            step_id=step_id,
            escalated_to=member.identity,
        )
        return None

    def _fold_unfinished(self) -> None:
        for step_id, status in self.flow_state["step_status"].items():
            if status in (None, "Dispatched"):
                self.flow_state["step_status"][step_id] = "Canceled"

    def _terminal(
        self, status: RunStatus, kind: str, fields: dict[str, Any], detail: str | None = None
    ) -> None:
        self._flush()
        self.flow_state["phase"] = status.capitalize()
        run = self.runs.get_run(self.run_id)
        assert run is not None
        event = NewMobEvent(mob_id=self.mob_id, kind=EventKind(type=kind, **fields))
        self._refresh_registrations()
        appended = self.runs.cas_run_snapshot_and_append_terminal_event(
            self.run_id,
            run.status,
            run.flow_state,
            status,
            FlowRunState(**self.flow_state),
            event,
            fence=self.token,
        )
        if appended is None:
            raise CustodyLost(self.mob_id, self.run_id)
        extras: dict[str, Any] = {"terminal_detail": detail} if detail else {}
        owner = run.mobctl.owner if run.mobctl else None
        if owner is not None:
            extras["owner"] = owner.model_copy(update={"released_at": timestamp()}).document()
        if extras:
            with contextlib.suppress(Exception):
                self.runs.mutate_run(self.run_id, RunExpectation(), RunMutation(mobctl=extras))
        unsigned = sign_after_terminal(self.store, self.mob_id)  # up to the terminal event
        if unsigned is not None:
            self.warnings.append(unsigned)
        self.on_event(kind, fields)

    def _abort(self, fatal: RunFatal) -> str:
        """Run-fatal: stop dispatching, kill turns, fold statuses, terminalise."""
        self._deadline_passed = fatal.detail == "deadline"
        self._stop_turns()
        ended: NodeStatus = "Canceled" if fatal.cause == "cancel_requested" else "Failed"
        unstarted, self._pending_turns = self._pending_turns, []
        for task, _, _ in unstarted:
            task.pending -= 1
        deadline = time.monotonic() + 10
        while any(t.pending for t in self.tasks.values()) and time.monotonic() < deadline:
            try:
                report = self.done.get(timeout=0.1)
            except queue.Empty:
                continue
            self._attempt_result(report)  # its event; no retry while stopping
            report.task.pending -= 1
        for task in self.tasks.values():
            task.frame.state.status[task.node_id] = ended
        self.tasks.clear()
        for frame in self.frames.values():
            for node_id in frame.state.running():
                frame.state.status[node_id] = (
                    "Canceled" if fatal.cause == "cancel_requested" else "Failed"
                )
        self._fold_unfinished()
        if fatal.cause == "cancel_requested":
            self._terminal(
                "canceled",
                "flow_canceled",
                {"run_id": self.run_id, "flow_id": self.flow_id, "cause": "cancel_requested"},
            )
        else:
            self._terminal(
                "failed",
                "flow_failed",
                {
                    "run_id": self.run_id,
                    "flow_id": self.flow_id,
                    "cause": fatal.cause,
                    "reason": fatal.reason,
                },
                detail=fatal.detail,
            )
        return fatal.cause
