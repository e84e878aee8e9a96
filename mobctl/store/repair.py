"""Repairs that keep the log consistent with the snapshots (store contract §8.9)."""

from __future__ import annotations

from mobctl.clock import parse_timestamp
from mobctl.store.contract import Store
from mobctl.store.models import TERMINAL_EVENT_TYPES, EventKind, MobRun, NewMobEvent

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
    """Terminal runs whose terminal event is not in the log: one pass over the runs, and one
    over the log only when some run is terminal (not one log scan per run)."""
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
    logged = {
        (event.kind.field("run_id"), event.kind.field("flow_id"))
        for event in events.replay_all()
        if event.kind.type in TERMINAL_EVENT_TYPES
    }
    return [run for run in terminal if (run.run_id, run.flow_id) not in logged]


def repair_terminal_events(store: Store, mob_id: str) -> list[str]:
    """Re-append the missing terminal event of every terminal run; the run ids repaired.

    The append is "if absent" under the log's lock, so concurrent repairs add each event once."""
    repaired = []
    events = store.events(mob_id)
    for run in missing_terminal_events(store, mob_id):
        if events.append_terminal_event_if_absent(terminal_event_of(run)):
            repaired.append(run.run_id)
    return repaired
