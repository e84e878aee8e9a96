"""Supervisor escalation (flow-semantics §13), evaluated when a run reaches its end."""

from __future__ import annotations

from mobctl.drivers.base import Canceled, DispatchError, Failed, TurnRequest
from mobctl.engine.members import member_of
from mobctl.engine.recorder import Recorder
from mobctl.engine.run_context import RunContext
from mobctl.engine.steps import Steps
from mobctl.engine.turns import Turns


class Escalation:
    def __init__(self, run: RunContext, recorder: Recorder, turns: Turns, steps: Steps) -> None:
        self.run = run
        self.recorder = recorder
        self.turns = turns
        self.steps = steps  # for the live roster

    def escalate(self, root_failed: bool) -> str | None:
        """Walk the steps in run-level order and escalate failures past the threshold; the
        escalation error that aborts the run (root failed), else None."""
        run, state = self.run, self.run.flow_state
        supervisor = run.definition.supervisor
        if supervisor is None or supervisor.escalation_threshold == 0:
            return None
        consecutive = state.consecutive_failure_count
        for step_id in run.ordered_steps:
            status = state.step_status.get(step_id)
            if status == "Completed":
                consecutive = 0
            elif status == "Failed":
                escalate = consecutive + 1 >= supervisor.escalation_threshold
                consecutive += 1
                if not escalate:
                    continue
                error = self._turn(
                    step_id, self._failure_reason(step_id), supervisor.role,
                    supervisor.turn_timeout_ms,
                )  # fmt: skip
                if error is not None:
                    if root_failed:
                        return error
                    self.recorder.emit(
                        "supervisor_escalation_failed",
                        run_id=run.run_id,
                        step_id=step_id,
                        reason=error,
                    )
                elif root_failed:  # force reset: every member is retired (§13, kept)
                    roster = self.steps.roster()
                    for member in sorted(roster.active.values(), key=lambda m: m.identity):
                        self.recorder.emit(
                            "member_retired",
                            agent_identity=member.identity,
                            generation=member.generation,
                            role=member.role,
                        )
        state.consecutive_failure_count = consecutive
        return None

    def _failure_reason(self, step_id: str) -> str:
        current = self.run.runs.get_run(self.run.run_id)
        for entry in reversed(current.failure_ledger if current else []):
            if entry.step_id == step_id:
                return entry.reason
        return "failed"

    def _turn(self, step_id: str, reason: str, role: str, timeout_ms: int) -> str | None:
        """The escalation turn; its error, or None when the supervisor took it."""
        run = self.run
        members = self.steps.roster().of_role(role)
        if not members:
            return f"no active supervisor member for role '{role}'"
        member = member_of(members[0])
        request = TurnRequest(
            kind="escalation",
            mob_id=run.mob_id,
            run_id=run.run_id,
            flow_id=run.flow_id,
            step_id=step_id,
            member=member,
            message=f"Supervisor escalation for run '{run.run_id}', step '{step_id}': {reason}",
            params=run.params,
            timeout_ms=timeout_ms,
            profile=run.profiles.get(member.role),
        )
        outcome, timed_out = self.turns.run(request, member, timeout_ms)
        if not isinstance(outcome, DispatchError):
            run.accounting.count(member, None, outcome.usage)
        if timed_out:
            return f"supervisor escalation timed out after {timeout_ms}ms"
        if isinstance(outcome, DispatchError):
            return str(outcome)
        if isinstance(outcome, Failed):
            return outcome.reason
        if isinstance(outcome, Canceled):
            return "canceled"
        self.recorder.emit(
            "supervisor_escalation",
            run_id=run.run_id,
            step_id=step_id,
            escalated_to=member.identity,
        )
        return None
