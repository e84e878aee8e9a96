"""Why a run did not complete, where people look (``runs show`` and the end of ``mobctl run``):
its status as people say it ("timed out" for a run that passed its deadline), the run's cause
and reason, and each step that failed with the member and the whole reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mobctl.api.runs import StepSummary, run_events, step_summaries
from mobctl.store.contract import Store
from mobctl.store.models import MobRun, timed_out


@dataclass(frozen=True)
class StepFailure:
    step_id: str
    member: str | None  # None: the step failed before any member took it (a template error)
    reason: str

    def document(self) -> dict[str, Any]:
        return {"step_id": self.step_id, "member": self.member, "reason": self.reason}


@dataclass(frozen=True)
class Failure:
    """How a terminal run that did not complete ended."""

    status: str  # "failed", "timed out" or "canceled"
    cause: str | None
    reason: str | None  # the run's own (``flow_failed.reason``), when it has one
    steps: list[StepFailure] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {
            "cause": self.cause,
            "reason": self.reason,
            "steps": [step.document() for step in self.steps],
        }


def failure_of(run: MobRun, steps: list[StepSummary], cause: str | None) -> Failure | None:
    """The failure of a failed or canceled run (None for any other): the run's reason from
    its terminal event, and every step that failed, or was stopped with a reason (a timeout),
    with the member of its last failed attempt."""
    if run.status not in ("failed", "canceled"):
        return None
    kind = run.mobctl.terminal_event if run.mobctl else None
    reason = kind.get("reason") if kind else None
    failed = []
    for step in steps:
        if step.reason is None or step.status not in ("failed", "canceled"):
            continue
        last = step.failed_attempts[-1] if step.failed_attempts else None
        failed.append(StepFailure(step.step_id, last[0] if last else None, step.reason))
    status = "timed out" if timed_out(kind) else run.status
    return Failure(status, cause, reason if isinstance(reason, str) else None, failed)


def run_failure(store: Store, run: MobRun, cause: str | None) -> Failure | None:
    """:func:`failure_of` with the steps read from the run's events."""
    if run.status not in ("failed", "canceled"):
        return None
    return failure_of(run, step_summaries(run, list(run_events(store, run))), cause)
