"""Step execution (flow-semantics §7): an admitted step node from its condition to its terminal
transition, and what a terminal transition records (outputs, ledgers, skips, events)."""

from __future__ import annotations

from typing import Any

from mobctl.canonical import canonical
from mobctl.clock import timestamp
from mobctl.definition.model import Frame, QuorumPolicy, RepeatUntilNode, Step, StepNode
from mobctl.definition.schemas import InlineSchema, parse_schema_ref, schema_validator
from mobctl.engine.attempts import Attempts
from mobctl.engine.conditions import ConditionError, evaluate
from mobctl.engine.members import member_of
from mobctl.engine.outputs import Collected, collect
from mobctl.engine.reasons import clip_reason
from mobctl.engine.recorder import Recorder
from mobctl.engine.records import (
    DEFAULT_STEP_TIMEOUT_MS,
    FrameRun,
    RunFatal,
    StepTask,
    TurnDone,
)
from mobctl.engine.rendering import RenderError, render_message
from mobctl.engine.run_context import RunContext
from mobctl.engine.turn_schemas import step_schema
from mobctl.store.changes import Output
from mobctl.store.models import DEADLINE_EXCEEDED, FailureLedgerEntry, Roster, StepLedgerEntry


class Steps:
    def __init__(self, run: RunContext, recorder: Recorder, attempts: Attempts) -> None:
        self.run = run
        self.recorder = recorder
        self.attempts = attempts
        self._roster_seen: Roster | None = None  # brought up to date before each dispatch

    def start(self, frame: FrameRun, node_id: str, *, again: bool = False) -> None:
        """A new execution of a step (``again``: a resumed run's running step, dispatched
        again, whose attempt numbers continue)."""
        run = self.run
        node = frame.spec.nodes[node_id]
        assert isinstance(node, StepNode)
        step_id = node.step_id
        step = run.flow.steps[step_id]
        context = run.context(frame)
        if step.condition is not None:
            try:
                ok = evaluate(step.condition, context)
            except ConditionError as exc:
                raise RunFatal("internal", exc.message(step=step_id)) from exc
            if not ok:
                self.terminal(
                    frame, node_id, step_id, "Skipped", reason="condition evaluated to false"
                )
                return
        try:
            message = render_message(step.message, context)
        except RenderError as exc:
            self.terminal(frame, node_id, step_id, "Failed", reason=exc.message(step_id))
            return
        self._check_topology(step)
        current = self.roster()
        targets = [member_of(m) for m in current.of_role(step.role)]
        policy = step.collection_policy
        if isinstance(policy, QuorumPolicy) and len(targets) < policy.n:
            raise RunFatal(
                "insufficient_targets",
                f"insufficient targets for step {step_id}: required {policy.n}, "
                f"available {len(targets)}",
            )
        if not targets:
            reason = f"insufficient targets for step {step_id}: required 1, available 0"
            self.terminal(frame, node_id, step_id, "Failed", reason=reason)
            return
        if step.dispatch_mode == "one_to_one":
            targets = targets[:1]
        run.flow_state.step_target_counts[step_id] = len(targets)
        timeout = step.timeout_ms or DEFAULT_STEP_TIMEOUT_MS
        fail_flow = False
        remaining = run.remaining_ms()
        if remaining is not None and remaining <= timeout:
            timeout, fail_flow = max(int(remaining), 1), True
        rendered = (
            message if isinstance(message, str) else [b.model_dump(mode="json") for b in message]
        )
        # each member's runtime mode as recorded when it was spawned (from a realm profile
        # too) decides whether a tool overlay can be enforced (§7.5)
        runtime = {m.identity: m.runtime_mode for m in current.active.values()}
        task = StepTask(
            frame, node_id, step_id, step, targets, fail_flow, rendered, timeout, runtime,
            schema=step_schema(step, run.schemas), pending=len(targets),
        )  # fmt: skip
        run.tasks[(frame.frame_id, node_id)] = task
        counts = run.flow_state.target_retry_counts
        for member in targets:
            if not again:  # attempts count per execution: from 1 in each loop iteration (§7.5)
                counts[f"{step_id}:{member.identity}"] = 0
            self.attempts.dispatch(task, member)

    def roster(self) -> Roster:
        """The active members now: a member retired during the run gets no new turn. Read
        incrementally (only the events since the last look), so a step costs the same late in
        a long run as early."""
        self._roster_seen = self.run.events.roster(since=self._roster_seen)
        return self._roster_seen

    def _check_topology(self, step: Step) -> None:
        definition = self.run.definition
        topology, orchestrator = definition.topology, definition.mob.orchestrator
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
        self.recorder.emit("topology_violation", from_role=source, to_role=step.role)

    def turn_ended(self, report: TurnDone) -> None:
        """A target's attempt ended: its event, then a retry, or the target's result (and the
        step's, once every target has one)."""
        result = self.attempts.result(report)
        if result is None:
            self.attempts.retry_later(report.task, report.member)
            return
        task = report.task
        task.results.append(result)
        task.pending -= 1
        if task.pending == 0 and not self.run.stopping:
            self._complete(task)

    def _complete(self, task: StepTask) -> None:
        run = self.run
        del run.tasks[(task.frame.frame_id, task.node_id)]
        if run.fail_flow:
            raise RunFatal(
                "step_error",
                f"flow failed for run {run.run_id}: {DEADLINE_EXCEEDED}{run.run_id}",
                detail="deadline",
            )
        step, step_id = task.step, task.step_id
        run.flow_state.step_target_success_counts[step_id] = sum(1 for r in task.results if r.ok)
        collected = collect(task.results, step.collection_policy, step.dispatch_mode)
        if collected.ok and step.expected_schema_ref is not None:
            problem = self._schema_problem(step.expected_schema_ref, collected.aggregate)
            if problem is not None:
                reason = f"schema validation failed for step {step_id}: {problem}"
                self.terminal(task.frame, task.node_id, step_id, "Failed", reason=reason)
                return
        size = len(canonical(collected.aggregate).encode()) if collected.ok else 0
        if size > run.output_limit:
            collected = Collected(False, reason=self.attempts.too_large(f"step {step_id}", size))
        if not collected.ok:
            self.terminal(task.frame, task.node_id, step_id, "Failed", reason=collected.reason)
            return
        self.recorder.room_for(size)
        self.recorder.emit("step_completed", run_id=run.run_id, step_id=step_id)
        self.terminal(task.frame, task.node_id, step_id, "Completed", output=collected.aggregate)

    def _schema_problem(self, ref_text: str, value: Any) -> str | None:
        import jsonschema
        from referencing.exceptions import Unresolvable

        ref = parse_schema_ref(ref_text)
        try:
            if isinstance(ref, InlineSchema):
                schema = ref.schema
            elif ref.name in self.run.schemas:
                schema = self.run.schemas[ref.name]
            else:  # a run never reads a file: a later one may not be what was validated
                return (
                    f"schema file '{ref.name}' has no stored copy (it could not be read when "
                    f"{_revision(self.run.revision)} was registered); register the definition "
                    "again"
                )
            error = jsonschema.exceptions.best_match(schema_validator(schema).iter_errors(value))
        except (OSError, ValueError, jsonschema.SchemaError) as exc:
            return str(exc).splitlines()[0]
        except Unresolvable as exc:
            return f"the schema's $ref {exc.ref!r} is not inside the schema (never fetched)"
        except RecursionError:  # a recursive schema walking a deep output: Python's stack
            return "the output is nested too deeply to validate"
        return None if error is None else error.message

    # --- terminal transitions ---------------------------------------------------------------

    def terminal(
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
        run, state = self.run, self.run.flow_state
        if reason is not None:  # several targets' reasons joined, a schema error, ...
            reason = clip_reason(reason)
        skipped = frame.state.finish(node_id, status, reason if status == "Skipped" else None)  # type: ignore[arg-type]
        state.active_node_count = max(state.active_node_count - 1, 0)
        root_level = frame.loop is None
        entries: list[StepLedgerEntry] = []
        failures: list[FailureLedgerEntry] = []
        outputs: list[Output] = []
        now = timestamp()
        if status == "Completed":
            if frame.loop is None:
                run.root_outputs[step_id] = output
                outputs.append(Output(step_id, output))
            else:
                history = run.loop_outputs.setdefault(frame.loop.loop_id, [])
                while len(history) <= frame.iteration:
                    history.append({})
                history[frame.iteration][step_id] = output
                outputs.append(Output(step_id, output, (frame.loop.loop_id, frame.iteration)))
            state.output_recorded[step_id] = True
        if root_level:
            state.step_status[step_id] = status
            entries.append(
                StepLedgerEntry(
                    step_id=step_id,
                    status=status.lower(),
                    output=output if status == "Completed" else None,
                    timestamp=now,
                )
            )
            if status == "Failed":
                failures.append(
                    FailureLedgerEntry(step_id=step_id, reason=reason or "", timestamp=now)
                )
                state.failure_count += 1
        else:
            run.body_results.setdefault(step_id, {})[status] = (output, reason)
        propagated = self.record_skips(frame, skipped, entries, now)
        self.recorder.stage(step_entries=entries, failures=failures, outputs=outputs)
        if root_level and status == "Failed":
            self.recorder.step_failed(step_id, reason or "")
        if root_level and status == "Skipped":
            self.recorder.emit(
                "step_skipped", run_id=run.run_id, step_id=step_id, reason=reason or ""
            )
        for skipped_step, why in propagated:
            self.recorder.emit("step_skipped", run_id=run.run_id, step_id=skipped_step, reason=why)

    def record_skips(
        self,
        frame: FrameRun,
        skipped: list[tuple[str, str]],
        entries: list[StepLedgerEntry],
        now: str,
    ) -> list[tuple[str, str]]:
        """Run-level records of nodes skipped by propagation (root-frame steps, loop bodies):
        the ledger entries go to ``entries``; the (step, reason) of each event is returned."""
        events = []
        for node_id, why in skipped:
            node = frame.spec.nodes[node_id]
            if isinstance(node, RepeatUntilNode):
                why = f"enclosing loop '{node.loop_id}' was skipped"
                for body_step in self.body_steps(node.body):
                    events += self._skip(frame, body_step, why, entries, now)
            else:
                events += self._skip(frame, node.step_id, why, entries, now)
        return events

    def _skip(
        self, frame: FrameRun, step_id: str, why: str, entries: list[StepLedgerEntry], now: str
    ) -> list[tuple[str, str]]:
        """A skipped step: recorded now in the root frame, at its loop's end in a body."""
        if frame.loop is None:
            self.run.flow_state.step_status[step_id] = "Skipped"
            entries.append(StepLedgerEntry(step_id=step_id, status="skipped", timestamp=now))
            return [(step_id, why)]
        self.run.body_results.setdefault(step_id, {})["Skipped"] = (None, why)
        return []

    def body_steps(self, frame: Frame) -> list[str]:
        """The steps of a loop body (nested loops' too), in run-level order."""
        found = []
        for node in frame.nodes.values():
            if isinstance(node, StepNode):
                found.append(node.step_id)
            else:
                found += self.body_steps(node.body)
        order = self.run.ordered_steps
        return sorted(found, key=lambda s: order.index(s) if s in order else 0)


def _revision(revision: int | None) -> str:
    return "the definition" if revision is None else f"revision {revision}"
