"""Waiting for a run to end (``mobctl runs wait``, ``events tail -f --run``), for CI: the run's
exit code once it is terminal (0 completed, 3 failed, 4 canceled, 5 timed out), or
:class:`RunOrphaned` as soon as nobody owns it any more (it would never end by itself).

It reads the snapshot, never locks, and costs one read per poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mobctl.api.failures import run_failure
from mobctl.api.running import RunOutcome
from mobctl.api.runs import cause_of, resolve_run
from mobctl.clock import now
from mobctl.engine.custody import orphan_reason
from mobctl.errors import ExitCode, NotFound, RunOrphaned
from mobctl.ids import is_run_id
from mobctl.store.contract import Store
from mobctl.store.models import MobRun, timed_out

WAIT_POLL_INTERVAL = 0.2  # seconds between two looks at the run
ORPHAN_CHECK_INTERVAL = 1.0  # a follower looks whether the run's owner is gone this often


def exit_code_of(run: MobRun) -> ExitCode:
    """The exit code of a terminal run, as ``mobctl run`` exits for it."""
    return _exit_code(run.status, run.mobctl.terminal_event if run.mobctl else None)


def _exit_code(status: str, terminal_kind: dict[str, Any] | None) -> ExitCode:
    if status == "completed":
        return ExitCode.OK
    if status == "canceled":
        return ExitCode.RUN_CANCELED
    return ExitCode.RUN_TIMED_OUT if timed_out(terminal_kind) else ExitCode.RUN_FAILED


def ended(store: Store, run: MobRun) -> RunOutcome:
    """A terminal run as ``mobctl run`` reports its end."""
    cause = cause_of(run)
    code = exit_code_of(run)
    failure = run_failure(store, run, cause)
    return RunOutcome(run, cause, code == ExitCode.RUN_TIMED_OUT, code, failure=failure)


def orphaned(run: MobRun) -> RunOrphaned:
    reason = orphan_reason(run, now()) or "nobody owns it"
    return RunOrphaned(run.mob_id, run.run_id, reason)


def wait_run(
    store: Store,
    mob_id: str,
    ref: str,
    *,
    poll_interval: float = WAIT_POLL_INTERVAL,
) -> RunOutcome:
    """Block until the run ``ref`` names is terminal and return how it ended; raise
    :class:`RunOrphaned` once it is orphaned (its owner is gone: it will not end by itself)."""
    run_id = resolve_run(store, mob_id, ref).run_id
    runs = store.runs(mob_id)
    while True:
        run = runs.get_run(run_id)
        if run is None:
            raise NotFound(f"run {run_id} of mob '{mob_id}' is gone (deleted while waiting)")
        if run.terminal:
            return ended(store, run)
        if orphan_reason(run, now()) is not None:
            raise orphaned(run)
        time.sleep(poll_interval)


class OrphanWatch:
    """A follower's ``stop``: true once the run is orphaned (looked at every
    :data:`ORPHAN_CHECK_INTERVAL` seconds), or when ``outer`` says so."""

    def __init__(self, store: Store, run: MobRun, outer: Callable[[], bool] | None) -> None:
        self.runs = store.runs(run.mob_id)
        self.run_id = run.run_id
        self.outer = outer
        self.next_check = time.monotonic() + ORPHAN_CHECK_INTERVAL
        self.orphan: MobRun | None = None

    def __call__(self) -> bool:
        if self.outer is not None and self.outer():
            return True
        if time.monotonic() < self.next_check:
            return False
        self.next_check = time.monotonic() + ORPHAN_CHECK_INTERVAL
        run = self.runs.get_run(self.run_id)
        if run is not None and orphan_reason(run, now()) is not None:
            self.orphan = run
            return True
        return False


@dataclass(frozen=True)
class RunEnd:
    """How a followed run ended: its exit code, or that it is orphaned."""

    code: ExitCode | None  # None: not ended (the follower was stopped)
    orphan: RunOrphaned | None = None


def run_end(store: Store, mob_id: str, ref: str) -> RunEnd:
    """How the run ``ref`` names stands once a follower of it stopped: ended (its exit code),
    orphaned, or neither (the follower was interrupted). A run whose snapshot is gone is
    judged by its terminal event in the log."""
    try:
        run = resolve_run(store, mob_id, ref)
    except NotFound:
        if not is_run_id(ref):
            raise
        event = store.events(mob_id).find_terminal_event(ref)
        kind = event.kind.model_dump(mode="json") if event is not None else None
        return RunEnd(
            None if kind is None else _exit_code(kind["type"].removeprefix("flow_"), kind)
        )
    if run.terminal:
        return RunEnd(exit_code_of(run))
    if orphan_reason(run, now()) is not None:
        return RunEnd(None, orphaned(run))
    return RunEnd(None)
