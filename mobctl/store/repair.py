"""Repairs that keep the log consistent with the snapshots (store contract §8.9)."""

from __future__ import annotations

from mobctl.store.contract import Store
from mobctl.store.models import EventKind, MobRun, NewMobEvent

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


def repair_terminal_events(store: Store, mob_id: str) -> list[str]:
    """Re-append the missing terminal event of every terminal run; the run ids repaired."""
    repaired = []
    events = store.events(mob_id)
    for run in store.runs(mob_id).list_runs():
        if run.terminal and events.append_terminal_event_if_absent(terminal_event_of(run)):
            repaired.append(run.run_id)
    return repaired
