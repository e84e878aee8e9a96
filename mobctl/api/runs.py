"""The runs of a mob: list, find, show (``mobctl runs list|show``), through the run index.

Listing reads the index from its newest end and a snapshot only for a run the index does not
know to be settled (to tell whether it is orphaned), so it costs the same however many runs
the mob has; a run's events are read from its first cursor to its terminal event.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mobctl.clock import now, parse_timestamp
from mobctl.engine.accounting import shown
from mobctl.engine.custody import orphan_reason
from mobctl.engine.flow_state import FlowState
from mobctl.engine.outputs import result_envelope
from mobctl.errors import AmbiguousRunIdError, NotFound, UsageError
from mobctl.ids import is_run_id, is_slug, require_slug, shown_id
from mobctl.store.contract import Store
from mobctl.store.models import (
    TERMINAL_EVENT_TYPES,
    MobEvent,
    MobRun,
    RunIndexEntry,
    timed_out,
)
from mobctl.store.run_ops import first_cursor

STATUSES = ("pending", "running", "completed", "failed", "timed_out", "canceled", "orphaned")
PAGE = 1000


@dataclass(frozen=True)
class RunSummary:
    """One run as ``runs list`` shows it."""

    run_id: str
    mob_id: str
    flow_id: str
    status: str
    cause: str | None
    created_at: str
    completed_at: str | None
    duration_ms: int | None
    orphaned: str | None = None  # why it is orphaned (flow-semantics §12.2)
    cancel_requested: bool = False
    owner: dict[str, Any] | None = None  # pid and host of a live run's owner
    timed_out: bool = False  # failed because it passed its deadline (exit 5)

    @property
    def shown_status(self) -> str:
        """The status for people: "timed out" for a run that failed on its deadline."""
        return "timed out" if self.timed_out else self.status

    def document(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "mob_id": self.mob_id,
            "flow_id": self.flow_id,
            "status": self.status,
            "cause": self.cause,
            "timed_out": self.timed_out,
            "orphaned": self.orphaned is not None,
            "orphan_reason": self.orphaned,
            "cancel_requested": self.cancel_requested,
            "created_at": self.created_at,
            "completed_at": self.completed_at,
            "duration_ms": self.duration_ms,
            "owner": self.owner,
        }


def summarize(run: MobRun, moment: datetime) -> RunSummary:
    extras = run.mobctl
    owner = extras.owner if extras else None
    return RunSummary(
        run_id=run.run_id,
        mob_id=run.mob_id,
        flow_id=run.flow_id,
        status=run.status,
        cause=cause_of(run),
        created_at=run.created_at,
        completed_at=run.completed_at,
        duration_ms=_duration(run.created_at, run.completed_at, moment),
        orphaned=orphan_reason(run, moment),
        cancel_requested=bool(extras and extras.cancel_requested),
        owner={"pid": owner.pid, "host": owner.host} if owner else None,
        timed_out=timed_out(extras.terminal_event if extras else None),
    )


def _settled(mob_id: str, entry: RunIndexEntry, moment: datetime) -> RunSummary:
    assert entry.status is not None
    assert entry.created_at is not None
    return RunSummary(
        run_id=entry.run_id,
        mob_id=mob_id,
        flow_id=entry.flow_id or "",
        status=entry.status,
        cause=entry.cause,
        created_at=entry.created_at,
        completed_at=entry.completed_at,
        duration_ms=_duration(entry.created_at, entry.completed_at, moment),
        timed_out=bool(entry.timed_out),
    )


def _duration(start: str, end: str | None, moment: datetime) -> int:
    finished = parse_timestamp(end) if end else moment
    return max(int((finished - parse_timestamp(start)).total_seconds() * 1000), 0)


def list_runs(
    store: Store,
    mob_id: str | None,
    *,
    flow: str | None = None,
    statuses: Sequence[str] = (),
    limit: int | None = None,
) -> list[RunSummary]:
    """The runs of a mob (of every mob when ``mob_id`` is None), newest first, filtered by
    flow and by status (``orphaned`` selects the orphaned ones, ``timed_out`` the failed ones
    that passed their deadline); at most ``limit`` of them (None: all). Each mob's run index is
    read from its newest end, so a limit costs the same however long the history is."""
    for status in statuses:
        if status not in STATUSES:
            raise UsageError(
                f"unknown status '{shown_id(status)}'", hint=f"use one of: {', '.join(STATUSES)}"
            )
    moment = now()
    if mob_id is None:
        newest: Iterator[RunSummary] = heapq.merge(
            *(_newest(store, mob, moment, flow) for mob in store.mob_ids() if is_slug(mob)),
            key=lambda summary: (summary.created_at, summary.run_id),
            reverse=True,
        )
    else:
        require_mob(store, mob_id)
        newest = _newest(store, mob_id, moment, flow)
    found: list[RunSummary] = []
    for summary in newest:
        if statuses and not (
            summary.status in statuses
            or ("orphaned" in statuses and summary.orphaned)
            or ("timed_out" in statuses and summary.timed_out)
        ):
            continue
        found.append(summary)
        if limit is not None and len(found) >= limit:
            break
    return found


def _newest(store: Store, mob_id: str, moment: datetime, flow: str | None) -> Iterator[RunSummary]:
    runs = store.runs(mob_id)
    index = runs.newest_runs()
    if index is None:  # no index yet (a store of an older mobctl): every snapshot, once
        every = sorted(runs.list_runs(flow), key=lambda r: (r.created_at, r.run_id), reverse=True)
        yield from (summarize(run, moment) for run in every)
        return
    for entry in index:
        if flow is not None and entry.flow_id != flow:
            continue
        if entry.settled:
            yield _settled(mob_id, entry, moment)
            continue
        run = runs.get_run(entry.run_id)  # live, orphaned, or crashed before its snapshot
        if run is not None:
            yield summarize(run, moment)


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


def require_mob(store: Store, mob_id: str) -> None:
    require_slug(mob_id, "mob id")
    if mob_id not in store.mob_ids():
        raise NotFound(
            f"no mob '{mob_id}' in {store.location}",
            hint="`mobctl specs list` shows the registered mobs",
        )


def resolve_run(store: Store, mob_id: str, ref: str) -> MobRun:
    """The run ``ref`` names: a whole run id, or a prefix of exactly one run id."""
    require_mob(store, mob_id)
    runs = store.runs(mob_id)
    wanted = ref.strip().lower()
    if is_run_id(wanted):
        run = runs.get_run(wanted)
        if run is not None:
            return run
    matches = runs.match_runs(wanted) if wanted else []
    if len(matches) == 1:
        run = runs.get_run(matches[0])
        if run is not None:
            return run
    if not matches:
        raise NotFound(
            f"mob '{mob_id}' has no run '{shown_id(ref)}'",
            hint=f"`mobctl runs list {mob_id}` lists its runs",
        )
    shown = ", ".join(matches[:10])
    more = f" and {len(matches) - 10} more" if len(matches) > 10 else ""
    raise AmbiguousRunIdError(
        f"run id prefix '{shown_id(ref)}' matches {len(matches)} runs of mob '{mob_id}': "
        f"{shown}{more}",
        hint="give more characters of the run id",
    )


def run_events(store: Store, run: MobRun) -> Iterator[MobEvent]:
    """The events of one run, in order: read from its first cursor, and (once it is terminal)
    no further than its terminal event."""
    log = store.events(run.mob_id)
    after = first_cursor(run)
    while page := log.poll(after, PAGE):
        for event in page:
            if event.kind.field("run_id") == run.run_id:
                yield event
                if event.kind.type in TERMINAL_EVENT_TYPES:
                    return
        after = page[-1].cursor


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
    run: MobRun
    summary: RunSummary
    steps: list[StepSummary]
    result: Any
    accounting: dict[str, Any]


def run_accounting(run: MobRun, step_order: Iterable[str] = ()) -> dict[str, Any]:
    """The run's token accounting as ``run --json`` and ``runs show`` give it."""
    return shown(run.mobctl.accounting if run.mobctl else None, step_order)


def show_run(store: Store, mob_id: str, ref: str) -> RunDetail:
    run = resolve_run(store, mob_id, ref)
    events = list(run_events(store, run))
    summary = summarize(run, now())
    if summary.cause is None and run.terminal:
        cause = cause_of(run, events)
        summary = RunSummary(**{**summary.__dict__, "cause": cause})
    steps = step_summaries(run, events)
    accounting = run_accounting(run, [step.step_id for step in steps])
    return RunDetail(run, summary, steps, result_envelope(run.root_step_outputs), accounting)


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
        summary = steps.get(entry.step_id)
        if summary is not None and summary.reason is None:
            summary.reason = entry.reason
    return list(steps.values())
