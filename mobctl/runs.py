"""The API of ``mobctl runs``: list, show, cancel and recover the runs of a mob.

A sibling of :mod:`mobctl.api` (one function per user action). Nothing here prints or exits;
errors are :class:`mobctl.errors.MobctlError` subclasses.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mobctl import host
from mobctl.clock import now, parse_timestamp
from mobctl.drivers.selection import Drivers, parse_drivers, runs_a_program, shown_spec
from mobctl.engine.custody import CustodyLostError, cancel_in_custody, orphan_reason, take_over
from mobctl.engine.flow_state import FlowState
from mobctl.errors import (
    AmbiguousRunIdError,
    CasConflict,
    DriverRequired,
    NotFound,
    RunNotResumable,
    UsageError,
)
from mobctl.ids import is_run_id, require_slug, shown_id
from mobctl.store.checkpoints import sign_after_terminal
from mobctl.store.models import TERMINAL_EVENT_TYPES, MobEvent, MobRun
from mobctl.store.repair import repair_terminal_events

if TYPE_CHECKING:
    from mobctl.definition.model import MobDefinition
    from mobctl.store.directory import DirectoryStore

STATUSES = ("pending", "running", "completed", "failed", "canceled", "orphaned")
CANCEL_GRACE_MS = 5000  # cancel_grace_timeout_ms (flow-semantics §12.1)
_POLL = 0.1


# --- list ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    """One run as ``runs list`` shows it."""

    run: MobRun
    orphaned: str | None  # why it is orphaned (flow-semantics §12.2), None when it is not
    cause: str | None
    duration_ms: int | None

    def document(self) -> dict[str, Any]:
        run = self.run
        extras = run.mobctl
        owner = extras.owner if extras else None
        return {
            "run_id": run.run_id,
            "mob_id": run.mob_id,
            "flow_id": run.flow_id,
            "status": run.status,
            "cause": self.cause,
            "orphaned": self.orphaned is not None,
            "orphan_reason": self.orphaned,
            "cancel_requested": bool(extras and extras.cancel_requested),
            "created_at": run.created_at,
            "completed_at": run.completed_at,
            "duration_ms": self.duration_ms,
            "owner": {"pid": owner.pid, "host": owner.host} if owner else None,
        }


def summarize(run: MobRun, moment: datetime) -> RunSummary:
    end = parse_timestamp(run.completed_at) if run.completed_at else moment
    duration = int((end - parse_timestamp(run.created_at)).total_seconds() * 1000)
    return RunSummary(run, orphan_reason(run, moment), cause_of(run), max(duration, 0))


def list_runs(
    store: DirectoryStore, mob_id: str, *, flow: str | None = None, statuses: Sequence[str] = ()
) -> list[RunSummary]:
    """The runs of a mob, newest first, filtered by flow and by status (``orphaned`` selects
    the orphaned ones)."""
    for status in statuses:
        if status not in STATUSES:
            raise UsageError(
                f"unknown status '{status}'", hint=f"use one of: {', '.join(STATUSES)}"
            )
    _require_mob(store, mob_id)
    moment = now()
    found = [summarize(run, moment) for run in store.runs(mob_id).list_runs(flow)]
    if statuses:
        found = [
            s
            for s in found
            if s.run.status in statuses or ("orphaned" in statuses and s.orphaned is not None)
        ]
    return sorted(found, key=lambda s: (s.run.created_at, s.run.run_id), reverse=True)


def cause_of(run: MobRun, events: list[MobEvent] | None = None) -> str | None:
    """The ``cause`` of a failed or canceled run: recorded with its terminal status, else taken
    from its terminal event when the log is at hand."""
    if not run.terminal:
        return None
    recorded = run.mobctl.terminal_event if run.mobctl else None
    if recorded is not None:
        cause = recorded.get("cause")
        return cause if isinstance(cause, str) else None
    for event in events or []:
        if event.kind.type in TERMINAL_EVENT_TYPES and event.kind.field("run_id") == run.run_id:
            cause = event.kind.field("cause")
            return cause if isinstance(cause, str) else None
    return None


# --- resolve and show ------------------------------------------------------------------------


def _require_mob(store: DirectoryStore, mob_id: str) -> None:
    require_slug(mob_id, "mob id")
    if mob_id not in store.mob_ids():
        raise NotFound(
            f"no mob '{mob_id}' in {store.root}",
            hint="`mobctl specs list` shows the registered mobs",
        )


def resolve_run(store: DirectoryStore, mob_id: str, ref: str) -> MobRun:
    """The run ``ref`` names: a whole run id, or a prefix of exactly one run id."""
    _require_mob(store, mob_id)
    runs = store.runs(mob_id)
    wanted = ref.strip().lower()
    if is_run_id(wanted):
        run = runs.get_run(wanted)
        if run is not None:
            return run
    matches = [run for run in runs.list_runs() if wanted and run.run_id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(
            f"mob '{mob_id}' has no run '{shown_id(ref)}'",
            hint=f"`mobctl runs list {mob_id}` lists its runs",
        )
    shown = ", ".join(run.run_id for run in matches[:10])
    more = f" and {len(matches) - 10} more" if len(matches) > 10 else ""
    raise AmbiguousRunIdError(
        f"run id prefix '{ref}' matches {len(matches)} runs of mob '{mob_id}': {shown}{more}",
        hint="give more characters of the run id",
    )


@dataclass
class StepSummary:
    """A run-level step as ``runs show`` shows it: status from the snapshot, members,
    attempts and timing from the event log."""

    step_id: str
    status: str
    members: list[str] = field(default_factory=list)
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    reason: str | None = None
    failed_attempts: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        span = parse_timestamp(self.finished_at) - parse_timestamp(self.started_at)
        return max(int(span.total_seconds() * 1000), 0)


@dataclass(frozen=True)
class RunDetail:
    summary: RunSummary
    steps: list[StepSummary]
    result: Any


def show_run(store: DirectoryStore, mob_id: str, ref: str) -> RunDetail:
    from mobctl.engine.outputs import result_envelope

    run = resolve_run(store, mob_id, ref)
    events = [
        event
        for event in store.events(mob_id).replay_all()
        if event.kind.field("run_id") == run.run_id
    ]
    summary = summarize(run, now())
    if summary.cause is None and run.terminal:
        summary = RunSummary(run, summary.orphaned, cause_of(run, events), summary.duration_ms)
    return RunDetail(summary, step_summaries(run, events), result_envelope(run.root_step_outputs))


def step_summaries(run: MobRun, events: list[MobEvent]) -> list[StepSummary]:
    statuses = FlowState.from_document(run.flow_state.model_dump(mode="json")).step_statuses()
    steps = {step: StepSummary(step, status) for step, status in statuses.items()}
    last_attempt: dict[tuple[str, str], int] = {}
    for event in events:
        kind = event.kind
        step = steps.get(str(kind.field("step_id")))
        if step is None:
            continue
        target = kind.field("target")
        identity = str(target.get("identity")) if isinstance(target, dict) else ""
        if kind.type == "step_dispatched":
            attempt = int(kind.field("attempt") or 1)
            last_attempt[(step.step_id, identity)] = attempt
            if identity not in step.members:
                step.members.append(identity)
            step.attempts = max(step.attempts, attempt)
            step.started_at = step.started_at or event.timestamp
        elif kind.type == "step_target_failed":
            attempt = last_attempt.get((step.step_id, identity), 1)
            step.failed_attempts.append((identity, attempt, str(kind.field("reason"))))
            if step.status == "canceled":
                step.finished_at = event.timestamp
                step.reason = str(kind.field("reason"))
        elif kind.type in ("step_completed", "step_failed", "step_skipped"):
            step.finished_at = event.timestamp
            step.started_at = step.started_at or event.timestamp
            if kind.type != "step_completed":
                step.reason = str(kind.field("reason"))
    for entry in run.failure_ledger:
        step = steps.get(entry.step_id)
        if step is not None and step.reason is None:
            step.reason = entry.reason
    return list(steps.values())


# --- repair, cancel, recover -----------------------------------------------------------------


CancelAction = Literal["already_terminal", "requested", "stopped", "canceled_here"]


@dataclass(frozen=True)
class CancelOutcome:
    """``action``: ``already_terminal`` (nothing done), ``requested`` (the owner will stop
    it), ``stopped`` (its owner, or another process, recorded the end), ``canceled_here`` (this
    process took custody and recorded the cancel: the run was orphaned, or its owner did not
    stop in time)."""

    run: MobRun
    action: CancelAction
    why: str | None = None  # for canceled_here: why custody was taken
    repaired: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {
            "run_id": self.run.run_id,
            "status": self.run.status,
            "cause": cause_of(self.run),
            "action": self.action,
            "reason": self.why,
        }


def cancel_run(
    store: DirectoryStore,
    mob_id: str,
    ref: str,
    *,
    wait: bool = False,
    grace_ms: int = CANCEL_GRACE_MS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> CancelOutcome:
    """Cancel a run from any process (flow-semantics §12.1).

    A terminal run: nothing to do. Otherwise the request is recorded in the snapshot. An
    orphaned run is canceled here at once (cause ``cancel_requested``). A run with a live owner
    is stopped by that owner; with ``wait`` this waits for it, and when the owner has not
    finished within ``grace_ms`` this process takes the lease over and records the cancel."""
    run = resolve_run(store, mob_id, ref)
    outcome = _cancel(store, mob_id, run, wait, grace_ms, sleep, clock)
    if outcome.repaired or outcome.action == "canceled_here":  # terminal events written here
        outcome.warnings.extend(_sign(store, mob_id))
    return outcome


def _sign(store: DirectoryStore, mob_id: str) -> list[str]:
    """Sign the log after this process wrote terminal events (as a run does when it ends)."""
    unsigned = sign_after_terminal(store, mob_id)
    return [] if unsigned is None else [unsigned]


def _cancel(
    store: DirectoryStore,
    mob_id: str,
    run: MobRun,
    wait: bool,
    grace_ms: int,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> CancelOutcome:
    repaired = repair_terminal_events(store, mob_id)  # a writing command (§8.9)
    if run.terminal:
        return CancelOutcome(run, "already_terminal", repaired=repaired)
    pid, where, _ = host.me()
    by: dict[str, Any] = {"pid": pid, "host": where, "command": "mobctl runs cancel"}
    runs = store.runs(mob_id)
    if not runs.request_cancel(run.run_id, by):
        return CancelOutcome(_reread(store, run), "already_terminal", repaired=repaired)
    run = _reread(store, run)
    reason = orphan_reason(run, now())
    if reason is not None:
        return _cancel_here(store, run, reason, repaired)
    if not wait:
        return CancelOutcome(run, "requested", repaired=repaired)
    deadline = clock() + grace_ms / 1000
    while True:
        run = _reread(store, run)
        if run.terminal:
            return CancelOutcome(run, "stopped", repaired=repaired)
        reason = orphan_reason(run, now())
        if reason is None and clock() >= deadline:
            reason = f"its owner did not stop within {grace_ms}ms"
        if reason is not None:
            return _cancel_here(store, run, reason, repaired)
        sleep(_POLL)


def _reread(store: DirectoryStore, run: MobRun) -> MobRun:
    current = store.runs(run.mob_id).get_run(run.run_id)
    if current is None:
        raise NotFound(f"run {run.run_id} of mob '{run.mob_id}' disappeared")
    return current


def _converge(store: DirectoryStore, run: MobRun, cause: str) -> tuple[MobRun, bool]:
    """Take custody of ``run`` and record it canceled with ``cause``: the snapshot after, and
    whether this process recorded the end (False: another process holds or ended it)."""
    owner = take_over(store, run)
    if owner is None:
        return _reread(store, run), False
    try:
        cancel_in_custody(store, run.mob_id, run.run_id, owner, cause)
    except CustodyLostError:
        return _reread(store, run), False
    return _reread(store, run), True


def _cancel_here(
    store: DirectoryStore, run: MobRun, why: str, repaired: list[str]
) -> CancelOutcome:
    final, ours = _converge(store, run, "cancel_requested")
    if ours:
        return CancelOutcome(final, "canceled_here", why, repaired)
    if final.terminal:
        return CancelOutcome(final, "stopped", repaired=repaired)
    raise CasConflict(
        f"run {run.run_id} was taken over by another process while it was being canceled",
        hint=f"`mobctl runs show {run.mob_id} {run.run_id}` shows who holds it",
    )


@dataclass(frozen=True)
class Orphan:
    """An orphaned run found by ``runs recover``; ``outcome``: ``orphaned`` (listed),
    ``canceled`` (converged by this process), ``taken`` (another process took it over or
    ended it meanwhile)."""

    run: MobRun
    reason: str
    outcome: Literal["orphaned", "canceled", "taken"]

    def document(self) -> dict[str, Any]:
        return {
            "run_id": self.run.run_id,
            "flow_id": self.run.flow_id,
            "status": self.run.status,
            "reason": self.reason,
            "outcome": self.outcome,
        }


@dataclass(frozen=True)
class Recovery:
    repaired: list[str]
    orphans: list[Orphan]
    warnings: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {"repaired": self.repaired, "orphans": [o.document() for o in self.orphans]}


def recover(store: DirectoryStore, mob_id: str, *, cancel: bool = False) -> Recovery:
    """Repair missing terminal events, then list the orphaned runs; with ``cancel``, converge
    each to ``canceled`` with cause ``execution_custody_lost`` (flow-semantics §12.4)."""
    _require_mob(store, mob_id)
    repaired = repair_terminal_events(store, mob_id)  # a writing command (§8.9)
    moment = now()
    orphans = []
    for run in store.runs(mob_id).list_runs():
        reason = orphan_reason(run, moment)
        if reason is None:
            continue
        if not cancel:
            orphans.append(Orphan(run, reason, "orphaned"))
            continue
        final, ours = _converge(store, run, "execution_custody_lost")
        orphans.append(Orphan(final, reason, "canceled" if ours else "taken"))
    wrote = repaired or any(o.outcome == "canceled" for o in orphans)
    return Recovery(repaired, orphans, _sign(store, mob_id) if wrote else [])


# --- resume ----------------------------------------------------------------------------------


@dataclass
class Resumable:
    """An orphaned run taken over by this process, with what is needed to run it on."""

    run: MobRun
    token: str
    definition: MobDefinition
    revision: int
    schemas: dict[str, Any]
    base_dir: Path
    drivers: Drivers
    reused: list[str]  # the recorded driver specs it runs on again (none: --driver was given)


def take_up(store: DirectoryStore, mob_id: str, ref: str, drivers: Sequence[str]) -> Resumable:
    """Judge the run orphaned and take its lease over (flow-semantics §12.3): refused for a
    finished run, a run whose owner lives, and a run whose flow changed since it started.

    ``drivers``: the ``--driver`` specs given. Without any, the specs the run was started with
    are used again, unless one is ``command:``: a program named only in the store (which
    anyone who can write it can edit) is never run (:class:`DriverRequired`). Every check,
    the drivers' included, comes before the lease is taken."""
    from mobctl import api
    from mobctl.engine.config import flow_digest

    given = parse_drivers(list(drivers), output_cap=store.max_record_bytes)
    run = resolve_run(store, mob_id, ref)
    if run.terminal:
        raise RunNotResumable(f"run {run.run_id} is already {run.status}; nothing to resume")
    if run.mobctl is None:
        raise RunNotResumable(
            f"run {run.run_id} was not written by mobctl (no mobctl state); it cannot be resumed",
            hint=f"`mobctl runs recover {mob_id} --cancel` ends it",
        )
    why = orphan_reason(run, now())
    owner = run.mobctl.owner
    if why is None and owner is not None:
        raise RunNotResumable(
            f"run {run.run_id} still has a live owner: pid {owner.pid} on {owner.host}, last "
            f"heartbeat {owner.heartbeat_at}",
            hint=f"wait for it, or stop it with `mobctl runs cancel {mob_id} {run.run_id}`",
        )
    definition, _, revision, schemas, base_dir = api.prepare_run(store, mob_id, run.flow_id)
    if flow_digest(definition, run.flow_id) != run.flow_definition_digest:
        raise RunNotResumable(
            f"flow '{run.flow_id}' of mob '{mob_id}' changed since run {run.run_id} started "
            f"(spec revision {run.mobctl.spec_revision} then, {revision} now)",
            hint=f"`mobctl runs recover {mob_id} --cancel` ends it; then start a new run",
        )
    reused = [] if drivers else list(run.mobctl.drivers or [])
    if any(runs_a_program(spec) for spec in reused):
        raise _driver_required(run, reused)
    chosen = parse_drivers(reused, output_cap=store.max_record_bytes) if reused else given
    lease = take_over(store, run)
    if lease is None:
        raise RunNotResumable(
            f"run {run.run_id} changed hands while it was being taken over; look again",
            hint=f"`mobctl runs show {mob_id} {run.run_id}`",
        )
    return Resumable(
        _reread(store, run), lease.token, definition, revision, schemas, base_dir, chosen, reused
    )


SHOWN_SPECS = 8  # recorded driver specs a driver_required hint spells out


def _driver_required(run: MobRun, recorded: list[str]) -> DriverRequired:
    programs = [shown_spec(spec) for spec in recorded if runs_a_program(spec)]
    flags = " ".join(f"--driver {shlex.quote(shown_spec(spec))}" for spec in recorded[:SHOWN_SPECS])
    more = len(recorded) - SHOWN_SPECS
    return DriverRequired(
        f"run {run.run_id} was started with a driver that runs a program "
        f"({', '.join(programs[:SHOWN_SPECS])}); a resume never runs a program that only the "
        "store names",
        hint=f"if you trust it, pass the drivers again yourself: mobctl runs resume "
        f"{run.mob_id} {run.run_id} {flags}" + (f" (and {more} more)" if more > 0 else ""),
    )
