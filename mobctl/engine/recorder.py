"""The recorder: the one part of the engine that writes a run's changes to the store.

Transitions stage what they changed; ``flush`` writes it all as one run change (the flow state
and frames as the patch ops of what changed, store contract §4.6), then the transitions' events
as one batch, then lets the turns they dispatched start: a turn never starts before its
dispatch is durable, and the snapshot and the log always agree on order.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from mobctl.clock import timestamp
from mobctl.engine.records import LoopRun
from mobctl.engine.run_context import RunContext
from mobctl.errors import CustodyLost
from mobctl.store.changes import Op, Output, RunExpectation, RunMutation
from mobctl.store.models import (
    EventKind,
    FailureLedgerEntry,
    FlowRunState,
    LoopIterationLedgerEntry,
    MobEvent,
    MobRun,
    NewMobEvent,
    RunStatus,
    StepLedgerEntry,
)


class Recorder:
    def __init__(self, run: RunContext, *, after_flush: Callable[[], None]) -> None:
        self.run = run
        self.after_flush = after_flush  # starts the turns dispatched since the last flush
        self.last_write = time.monotonic()
        self._pending = RunMutation()
        self._pending_output_bytes = 0  # of the outputs in ``_pending``
        self._pending_loops: dict[str, LoopRun] = {}
        self._pending_events: list[tuple[str, dict[str, Any]]] = []

    def create(self, run: MobRun) -> None:
        self.run.runs.create_run(run)

    # --- staging ----------------------------------------------------------------------------

    def stage(
        self,
        *,
        loops: tuple[LoopRun, ...] = (),
        status: RunStatus | None = None,
        step_entries: list[StepLedgerEntry] | None = None,
        step_entries_if_absent: list[StepLedgerEntry] | None = None,
        failures: list[FailureLedgerEntry] | None = None,
        loop_ledger: list[LoopIterationLedgerEntry] | None = None,
        outputs: list[Output] | None = None,
    ) -> None:
        """Add to the next write the parts a transition changed besides the flow state and the
        frames (which are tracked as they change)."""
        pending = self._pending
        if status is not None:
            pending.status = status
        for loop in loops:
            self._pending_loops[loop.instance_id] = loop
        pending.step_entries += step_entries or []
        pending.step_entries_if_absent += step_entries_if_absent or []
        pending.failure_entries += failures or []
        pending.loop_ledger += loop_ledger or []
        pending.outputs += outputs or []

    def room_for(self, size: int) -> None:
        """Make room in the next write for an output of ``size`` bytes: each output fits a run
        change (the engine checks), several staged together may not."""
        if self._pending_output_bytes + size > self.run.output_limit:
            self.flush()
        self._pending_output_bytes += size

    def emit(self, kind: str, **fields: Any) -> None:
        self._pending_events.append((kind, fields))

    def discard_events(self) -> None:
        """Forget the staged events: they tell of changes a refused write did not record."""
        self._pending_events.clear()

    # --- writing ----------------------------------------------------------------------------

    def flush(self) -> None:
        """Write the staged changes as one run change, then their events as one batch, then
        start the turns they dispatched."""
        run = self.run
        mutation, self._pending = self._pending, RunMutation()
        self._pending_output_bytes = 0
        mutation.sets = self._state_ops()
        mutation.loops = {i: loop.snapshot() for i, loop in self._pending_loops.items()}
        self._pending_loops = {}
        if mutation != RunMutation():
            if not run.runs.mutate_run(run.run_id, RunExpectation(), mutation, fence=run.token):
                raise CustodyLost(run.mob_id, run.run_id)
            self.last_write = time.monotonic()
        events, self._pending_events = self._pending_events, []
        if events:
            run.events.append_batch(
                [
                    NewMobEvent(mob_id=run.mob_id, kind=EventKind(type=kind, **fields))
                    for kind, fields in events
                ]
            )
            for kind, fields in events:
                run.on_event(kind, fields)
        self.after_flush()

    def _state_ops(self) -> list[Op]:
        run = self.run
        run.flow_state.set_registrations(run.ready_frames())
        ops = run.flow_state.ops() + run.accounting.ops()
        for frame_id, frame in list(run.live.items()):
            ops += frame.changes()
            if frame.sealed_as is not None:
                del run.live[frame_id]
        return ops

    def step_failed(self, step_id: str, reason: str) -> None:
        """``step_failed`` is written if absent (repair may have written it): after a flush,
        so that it keeps its place in the log."""
        run = self.run
        self.flush()
        run.events.append_step_failed_event_if_absent(
            NewMobEvent(
                mob_id=run.mob_id,
                kind=EventKind(
                    type="step_failed", run_id=run.run_id, step_id=step_id, reason=reason
                ),
            ),
            after=run.since,
        )
        run.on_event("step_failed", {"step_id": step_id, "reason": reason})

    def renew(self) -> None:
        """Renew the lease of an idle run (a busy one renews it with every write)."""
        run = self.run
        if not run.runs.renew_run_lease(run.run_id, run.token):
            raise CustodyLost(run.mob_id, run.run_id)
        self.last_write = time.monotonic()

    def terminal(
        self, status: RunStatus, kind: str, fields: dict[str, Any], detail: str | None = None
    ) -> MobEvent:
        """The terminal write (§11): what is staged, then the terminal status with the whole
        flow state, then the terminal event if absent; the lease is released after."""
        run = self.run
        self.flush()
        run.flow_state.phase = status.capitalize()
        current = run.runs.get_run(run.run_id)
        assert current is not None
        event = NewMobEvent(mob_id=run.mob_id, kind=EventKind(type=kind, **fields))
        run.flow_state.set_registrations(run.ready_frames())
        appended = run.runs.cas_run_snapshot_and_append_terminal_event(
            run.run_id,
            current.status,
            current.flow_state,
            status,
            FlowRunState(**run.flow_state.document()),
            event,
            fence=run.token,
        )
        if appended is None:
            raise CustodyLost(run.mob_id, run.run_id)
        run.flow_state.drain()
        extras: dict[str, Any] = {"terminal_detail": detail} if detail else {}
        owner = current.mobctl.owner if current.mobctl else None
        if owner is not None:
            extras["owner"] = owner.model_copy(update={"released_at": timestamp()}).document()
        if extras:
            with contextlib.suppress(Exception):
                run.runs.mutate_run(run.run_id, RunExpectation(), RunMutation(mobctl=extras))
        run.on_event(kind, fields)
        return appended
