"""Ending runs from outside (flow-semantics §12): ``runs cancel`` from any process, and
``runs recover`` for orphaned runs (Meerkat's cancel on custody loss)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from mobctl import host
from mobctl.api.runs import cause_of, require_mob, resolve_run
from mobctl.api.session import writing
from mobctl.clock import now
from mobctl.engine.custody import cancel_in_custody, orphan_reason, take_over
from mobctl.errors import CasConflict, CustodyLost, NotFound
from mobctl.ids import require_slug
from mobctl.store.contract import Store
from mobctl.store.models import MobRun

CANCEL_GRACE_MS = 5000  # cancel_grace_timeout_ms (flow-semantics §12.1)
_POLL = 0.1


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
    store: Store,
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
    with writing(store, require_slug(mob_id, "mob id")) as session:
        run = resolve_run(store, mob_id, ref)
        outcome = _cancel(store, mob_id, run, wait, grace_ms, sleep, clock, session.repaired)
        if outcome.action == "canceled_here":  # a terminal event written here
            session.wrote_terminal()
    outcome.warnings.extend(session.warnings)
    return outcome


def _cancel(
    store: Store,
    mob_id: str,
    run: MobRun,
    wait: bool,
    grace_ms: int,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    repaired: list[str],
) -> CancelOutcome:
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


def _reread(store: Store, run: MobRun) -> MobRun:
    current = store.runs(run.mob_id).get_run(run.run_id)
    if current is None:
        raise NotFound(f"run {run.run_id} of mob '{run.mob_id}' disappeared")
    return current


def _converge(store: Store, run: MobRun, cause: str) -> tuple[MobRun, bool]:
    """Take custody of ``run`` and record it canceled with ``cause``: the snapshot after, and
    whether this process recorded the end (False: another process holds or ended it)."""
    owner = take_over(store, run)
    if owner is None:
        return _reread(store, run), False
    try:
        cancel_in_custody(store, run.mob_id, run.run_id, owner, cause)
    except CustodyLost:
        return _reread(store, run), False
    return _reread(store, run), True


def _cancel_here(store: Store, run: MobRun, why: str, repaired: list[str]) -> CancelOutcome:
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


def recover(store: Store, mob_id: str, *, cancel: bool = False) -> Recovery:
    """Repair missing terminal events, then list the orphaned runs; with ``cancel``, converge
    each to ``canceled`` with cause ``execution_custody_lost`` (flow-semantics §12.4)."""
    require_mob(store, mob_id)
    with writing(store, mob_id) as session:
        moment = now()
        orphans = []
        runs = store.runs(mob_id)
        for run_id in runs.unsettled_runs():  # a settled run is terminal: never orphaned
            run = runs.get_run(run_id)
            reason = None if run is None else orphan_reason(run, moment)
            if run is None or reason is None:
                continue
            if not cancel:
                orphans.append(Orphan(run, reason, "orphaned"))
                continue
            final, ours = _converge(store, run, "execution_custody_lost")
            orphans.append(Orphan(final, reason, "canceled" if ours else "taken"))
        if any(o.outcome == "canceled" for o in orphans):
            session.wrote_terminal()
    return Recovery(session.repaired, orphans, session.warnings)
