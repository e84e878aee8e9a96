"""Attempts of a step's targets (flow-semantics §7.5): dispatching one, judging its outcome,
and retrying it while the retry budget allows, after a backoff (:mod:`mobctl.engine.backoff`)."""

from __future__ import annotations

import heapq
import itertools
import time

from mobctl.canonical import canonical
from mobctl.clock import timestamp
from mobctl.drivers.base import (
    Canceled,
    Completed,
    DispatchError,
    Failed,
    Member,
    TurnRequest,
)
from mobctl.engine.backoff import bounded
from mobctl.engine.outputs import MalformedOutput, TargetResult, parse_output
from mobctl.engine.reasons import encodable
from mobctl.engine.recorder import Recorder
from mobctl.engine.records import StepTask, TurnDone
from mobctl.engine.run_context import RunContext
from mobctl.engine.turn_schemas import turn_schema
from mobctl.engine.turns import Turns
from mobctl.store.models import StepLedgerEntry


class Attempts:
    def __init__(self, run: RunContext, recorder: Recorder, turns: Turns) -> None:
        self.run = run
        self.recorder = recorder
        self.turns = turns
        self._waiting: list[tuple[float, int, StepTask, Member]] = []  # retries, by due time
        self._order = itertools.count()

    def retry_later(self, task: StepTask, member: Member) -> None:
        """Dispatch the target's next attempt once its backoff has passed (never later than
        the flow's deadline)."""
        failures = task.failures.get(member.identity, 1)
        delay = bounded(self.run.backoff(failures), self.run.remaining_ms())
        entry = (time.monotonic() + delay, next(self._order), task, member)
        heapq.heappush(self._waiting, entry)

    def dispatch_due(self) -> None:
        """The retries whose backoff has passed."""
        now = time.monotonic()
        while self._waiting and self._waiting[0][0] <= now:
            _, _, task, member = heapq.heappop(self._waiting)
            self.dispatch(task, member)

    def next_due(self) -> float | None:
        """Seconds until the next waiting retry is due (None: none waits)."""
        return self._waiting[0][0] - time.monotonic() if self._waiting else None

    def drop_waiting(self) -> list[StepTask]:
        """The run is ending: the retries that will not happen (their tasks, once each)."""
        waiting, self._waiting = self._waiting, []
        return [task for _, _, task, _ in waiting]

    def dispatch(self, task: StepTask, member: Member) -> None:
        """One attempt of one target: recorded (written before the turn starts), then the
        turn is queued for the next flush."""
        run, step, step_id = self.run, task.step, task.step_id
        counts = run.flow_state.target_retry_counts
        key = f"{step_id}:{member.identity}"
        attempt = counts.get(key, 0) + 1
        counts[key] = attempt
        run.flow_state.step_status[step_id] = "Dispatched"
        if task.frame.loop is None:
            entry = StepLedgerEntry(step_id=step_id, status="dispatched", timestamp=timestamp())
            self.recorder.stage(step_entries_if_absent=[entry])
        target = {"identity": member.identity, "generation": member.generation}
        self.recorder.emit(
            "step_dispatched", run_id=run.run_id, step_id=step_id, target=target, attempt=attempt
        )
        overlay = step.allowed_tools is not None or step.blocked_tools is not None
        if overlay and task.runtime.get(member.identity) == "autonomous_host":
            self.turns.reject(
                task,
                member,
                DispatchError(
                    f"flow step dispatch rejected for '{member.identity}': turn tool overlay "
                    "cannot be enforced for an autonomous-host member (overlay_autonomous)"
                ),
            )
            return
        request = TurnRequest(
            kind="step",
            mob_id=run.mob_id,
            run_id=run.run_id,
            flow_id=run.flow_id,
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
            params=run.params,
            timeout_ms=task.timeout_ms,
            profile=run.profiles.get(member.role),
            expected_schema=turn_schema(task.schema, step, member.identity),
        )
        self.turns.queue(task, member, request)

    def result(self, report: TurnDone) -> TargetResult | None:
        """The target's result, or None when the attempt is to be retried."""
        run = self.run
        task, member, outcome = report.task, report.member, report.outcome
        step, step_id = task.step, task.step_id
        target = {"identity": member.identity, "generation": member.generation}
        reason: str | None = None
        retry = False
        if report.failure is not None:
            raise report.failure
        if isinstance(outcome, DispatchError):
            return TargetResult(member.identity, False, reason=str(outcome))
        run.accounting.count(member, step_id, outcome.usage)
        cut = isinstance(outcome, Canceled) and run.deadline_passed and task.fail_flow
        if report.timed_out or cut:  # cut: its timeout is the flow deadline, seen first here
            reason = f"timeout + canceled after {task.timeout_ms}ms"
        elif isinstance(outcome, Canceled):
            reason = (
                "run canceled while remote turn was in flight"
                if run.cancel_flag.is_set() or run.stopping
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
                if size > run.output_limit:
                    return self._oversized(task, member, size)
                self.recorder.emit(
                    "step_target_completed",
                    run_id=run.run_id,
                    step_id=step_id,
                    target=target,
                    output=value,
                )
                return TargetResult(member.identity, True, value)
        self.recorder.emit(
            "step_target_failed", run_id=run.run_id, step_id=step_id, target=target, reason=reason
        )
        failed = task.failures[member.identity] = task.failures.get(member.identity, 0) + 1
        if report.timed_out and task.fail_flow:
            run.fail_flow = True
        if not retry or failed > run.flow_state.max_step_retries or run.stopping:
            return TargetResult(member.identity, False, reason=reason or "failed")
        return None

    def too_large(self, what: str, size: int) -> str:
        return (
            f"the output of {what} is {size} bytes; outputs are limited to "
            f"{self.run.output_limit} bytes (half of the store's record cap, "
            "MOBCTL_MAX_RECORD_BYTES)"
        )

    def _oversized(self, task: StepTask, member: Member, size: int) -> TargetResult:
        """A target's output too large to record: the attempt fails (a retry would not help)."""
        reason = self.too_large(f"'{member.identity}' for step {task.step_id}", size)
        target = {"identity": member.identity, "generation": member.generation}
        self.recorder.emit(
            "step_target_failed",
            run_id=self.run.run_id,
            step_id=task.step_id,
            target=target,
            reason=reason,
        )
        return TargetResult(member.identity, False, reason=reason)
