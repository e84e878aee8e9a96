"""Repairs that keep the log consistent with the snapshots (store contract §8.9), through the
contract: a terminal run whose terminal event is not in the log gets it, exactly once.

Only the runs the run index does not know to be settled are looked at, and each one's log is
searched from its first cursor, so a repair costs the same however much history the mob has.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import JsonValue

from mobctl.clock import parse_timestamp
from mobctl.store.contract import Store
from mobctl.store.models import EventKind, MobRun, NewMobEvent, SpecRecord
from mobctl.store.run_ops import first_cursor

_TERMINAL_KIND = {
    "completed": "flow_completed",
    "failed": "flow_failed",
    "canceled": "flow_canceled",
}


def terminal_event_of(run: MobRun) -> NewMobEvent:
    """The terminal event a terminal run must have: the one recorded with its status, else a
    minimal one rebuilt from the snapshot (runs written by other tools)."""
    recorded = run.mobctl.terminal_event if run.mobctl else None
    if recorded is not None:
        kind = EventKind.model_validate(recorded)
    else:
        fields: dict[str, object] = {"run_id": run.run_id, "flow_id": run.flow_id}
        if run.status == "failed":
            fields |= {"cause": "unknown", "reason": "recorded by repair"}
        elif run.status == "canceled":
            fields |= {"cause": "unknown"}
        kind = EventKind(type=_TERMINAL_KIND[run.status], **fields)
    return NewMobEvent(mob_id=run.mob_id, kind=kind)


def missing_terminal_events(store: Store, mob_id: str) -> list[MobRun]:
    """Every terminal run whose terminal event is not in the log (one pass over the runs and
    one over the log: ``store check`` judges everything, not only the unsettled runs)."""
    events = store.events(mob_id)
    horizon = events.pruned_before()
    terminal = [
        run
        for run in store.runs(mob_id).list_runs()
        if run.terminal
        # a run that ended before the newest prune's horizon may have had its event pruned
        and not (horizon and run.completed_at and parse_timestamp(run.completed_at) < horizon)
    ]
    if not terminal:
        return []
    logged = events.terminal_events()
    return [run for run in terminal if run.run_id not in logged]


def definition_event(
    mob_id: str, revision: int, digest: str, definition: dict[str, JsonValue]
) -> NewMobEvent:
    """The event that logs a spec revision: ``mob_created`` for the first, else
    ``mob_definition_updated``."""
    kind = (
        EventKind(type="mob_created", definition=definition)
        if revision == 1
        else EventKind(
            type="mob_definition_updated", revision=revision, digest=digest, definition=definition
        )
    )
    return NewMobEvent(mob_id=mob_id, kind=kind)


def missing_definition_event(store: Store, mob_id: str) -> SpecRecord | None:
    """The mob's spec when its revision is newer than the newest the log records (the spec
    was written, then its event's append failed and so did putting the spec back). None when
    the log records no revision at all: a spec put through the contract by another tool, or
    definition events pruned, say nothing either way."""
    spec = store.specs.get_spec(mob_id)
    if spec is None:
        return None
    events = store.events(mob_id)
    logged = 0
    for event in events.replay_all():
        if event.kind.type == "mob_created":
            logged = 1
        elif event.kind.type == "mob_definition_updated":
            revision = event.kind.field("revision")
            logged = revision if isinstance(revision, int) else logged
    return spec if 0 < logged < spec.revision else None


def repair_definition_event(store: Store, mob_id: str) -> int | None:
    """Log the spec's revision if its event is missing (the caller holds the spec's lock, so
    no registration runs meanwhile); the revision logged."""
    spec = missing_definition_event(store, mob_id)
    if spec is None:
        return None
    store.events(mob_id).append(
        definition_event(mob_id, spec.revision, spec.digest, spec.definition)
    )
    return spec.revision


def repair_terminal_events(store: Store, mob_id: str, also: Sequence[str] = ()) -> list[str]:
    """Re-append the missing terminal event of every terminal run the run index does not know
    to be settled, and of the runs ``also`` names (settled ones whose event went missing since,
    as ``store check`` finds them); the run ids repaired.

    The append is "if absent" under the log's lock, so concurrent repairs add each event once.
    A run that ended before the newest prune's horizon may have had its event pruned on
    purpose: it is settled without one."""
    runs = store.runs(mob_id)
    events = store.events(mob_id)
    repaired = []
    horizon = None
    for run_id in dict.fromkeys([*runs.unsettled_runs(), *also]):
        run = runs.get_run(run_id)
        if run is None:  # indexed, then a crash before its snapshot was written
            runs.forget(run_id)
            continue
        if not run.terminal:
            continue
        horizon = horizon or events.pruned_before()
        pruned = horizon and run.completed_at and parse_timestamp(run.completed_at) < horizon
        since = first_cursor(run)
        found = events.find_terminal_event(run_id, after=since)
        if found is None and not pruned:
            found = events.append_terminal_event_if_absent(terminal_event_of(run), after=since)
            if found is not None:
                repaired.append(run_id)
            found = found or events.find_terminal_event(run_id, after=since)
        runs.settle(run_id, found)
    return repaired
