"""The run store's compare-and-swap operations (store contract §4.3-§4.5, §4.8), written once
over ``mutate_run``.

A backend implements the primitives (``create_run``, ``get_run``, ``mutate_run``, the run
index) and inherits every operation here, so each has the same semantics on every backend:
a lost CAS returns ``False`` (or ``None``) and writes nothing; a multi-part CAS compares every
part first and writes every part in one atomic change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from pydantic import JsonValue

from mobctl.clock import timestamp
from mobctl.errors import InternalStoreError, NotFound, TerminalEventPending, WriteFailed
from mobctl.store.changes import ABSENT, Output, RunExpectation, RunMutation
from mobctl.store.contract import EventStore
from mobctl.store.models import (
    TERMINAL_EVENT_TYPES,
    FailureLedgerEntry,
    FlowRunState,
    FrameSnapshot,
    LoopIterationLedgerEntry,
    LoopSnapshot,
    MobEvent,
    MobRun,
    NewMobEvent,
    RunOwner,
    RunStatus,
    StepLedgerEntry,
)


class RunOperations(ABC):
    """The operations of ``RunStore`` built on its primitives."""

    mob_id: str
    events: EventStore

    @abstractmethod
    def get_run(self, run_id: str) -> MobRun | None: ...

    @abstractmethod
    def mutate_run(
        self,
        run_id: str,
        expect: RunExpectation,
        apply: RunMutation,
        *,
        fence: str | None = None,
        missing_raises: bool = True,
    ) -> bool: ...

    @abstractmethod
    def settle(self, run_id: str, event: MobEvent | None) -> None:
        """Record in the run index that the terminal run ``run_id`` has its terminal event
        (``None``: it had one, pruned since)."""

    # --- status and flow state (§4.3) -------------------------------------------------------

    def cas_run_status(
        self, run_id: str, expected: RunStatus, next_status: RunStatus, *, fence: str | None = None
    ) -> bool:
        return self.mutate_run(
            run_id,
            RunExpectation(status=expected, non_terminal=True),
            RunMutation(status=next_status),
            fence=fence,
            missing_raises=False,
        )

    def cas_flow_state(
        self,
        run_id: str,
        expected: FlowRunState,
        next_state: FlowRunState,
        *,
        fence: str | None = None,
    ) -> bool:
        return self.mutate_run(
            run_id,
            RunExpectation(flow_state=expected),
            RunMutation(flow_state=next_state),
            fence=fence,
            missing_raises=False,
        )

    def cas_run_snapshot(
        self,
        run_id: str,
        expected_status: RunStatus,
        expected_state: FlowRunState,
        next_status: RunStatus,
        next_state: FlowRunState,
        *,
        fence: str | None = None,
    ) -> bool:
        return self.mutate_run(
            run_id,
            RunExpectation(status=expected_status, non_terminal=True, flow_state=expected_state),
            RunMutation(status=next_status, flow_state=next_state),
            fence=fence,
            missing_raises=False,
        )

    def cas_run_snapshot_and_append_terminal_event(
        self,
        run_id: str,
        expected_status: RunStatus,
        expected_state: FlowRunState,
        next_status: RunStatus,
        next_state: FlowRunState,
        event: NewMobEvent,
        *,
        fence: str | None = None,
    ) -> MobEvent | None:
        """The snapshot first (the source of truth), then the terminal event if absent; the
        run index then knows the run is settled."""
        if (
            event.kind.type not in TERMINAL_EVENT_TYPES
            or event.kind.field("run_id") != run_id
            or event.mob_id != self.mob_id
        ):
            raise InternalStoreError("the terminal event does not belong to this run")
        current = self.get_run(run_id)
        if current is not None and event.kind.field("flow_id") != current.flow_id:
            raise InternalStoreError("the terminal event names another flow")
        won = self.mutate_run(
            run_id,
            RunExpectation(status=expected_status, non_terminal=True, flow_state=expected_state),
            RunMutation(
                status=next_status,
                flow_state=next_state,
                mobctl={"terminal_event": event.kind.model_dump(mode="json")},
            ),
            fence=fence,
            missing_raises=False,
        )
        if not won:
            return None
        since = first_cursor(current)
        try:
            appended = self.events.append_terminal_event_if_absent(event, after=since)
        except WriteFailed as exc:
            raise TerminalEventPending(
                f"run {run_id} is {next_status}, but its terminal event is not written yet: "
                f"{exc.message}",
                hint="`mobctl store check --repair` (or the next command that opens the mob) "
                "adds it",
            ) from exc
        stored = appended or self.events.find_terminal_event(run_id, after=since)
        self.settle(run_id, stored)
        return stored

    # --- ledgers and outputs (§4.4) ---------------------------------------------------------

    def append_step_entry(
        self, run_id: str, entry: StepLedgerEntry, *, fence: str | None = None
    ) -> None:
        self.mutate_run(run_id, RunExpectation(), RunMutation(step_entries=[entry]), fence=fence)

    def append_step_entry_if_absent(
        self, run_id: str, entry: StepLedgerEntry, *, fence: str | None = None
    ) -> bool:
        return self.mutate_run(
            run_id,
            RunExpectation(step_entry_absent=entry),
            RunMutation(step_entries=[entry]),
            fence=fence,
        )

    def put_step_output(
        self, run_id: str, step_id: str, output: JsonValue, *, fence: str | None = None
    ) -> None:
        self.mutate_run(
            run_id, RunExpectation(), RunMutation(step_output=(step_id, output)), fence=fence
        )

    def append_failure_entry(
        self, run_id: str, entry: FailureLedgerEntry, *, fence: str | None = None
    ) -> None:
        self.mutate_run(run_id, RunExpectation(), RunMutation(failure_entries=[entry]), fence=fence)

    def append_failure_entry_if_absent(
        self, run_id: str, entry: FailureLedgerEntry, *, fence: str | None = None
    ) -> bool:
        return self.mutate_run(
            run_id,
            RunExpectation(failure_absent=entry),
            RunMutation(failure_entries=[entry]),
            fence=fence,
        )

    def upsert_loop_snapshot(
        self,
        run_id: str,
        loop_instance_id: str,
        snapshot: LoopSnapshot,
        ledger_entry: LoopIterationLedgerEntry | None = None,
        *,
        fence: str | None = None,
    ) -> None:
        mutation = RunMutation(
            loops={loop_instance_id: snapshot}, loop_ledger=[ledger_entry] if ledger_entry else []
        )
        self.mutate_run(run_id, RunExpectation(), mutation, fence=fence)

    # --- the eight frame-aware CAS operations (§4.5) ----------------------------------------

    def cas_frame_state(
        self,
        run_id: str,
        frame_id: str,
        expected: FrameSnapshot | None,
        next_frame: FrameSnapshot,
        *,
        fence: str | None = None,
    ) -> bool:
        return self.mutate_run(
            run_id,
            RunExpectation(frames={frame_id: ABSENT if expected is None else expected}),
            RunMutation(frames={frame_id: next_frame}),
            fence=fence,
        )

    def cas_grant_node_slot(
        self,
        run_id: str,
        expected_run_state: FlowRunState,
        next_run_state: FlowRunState,
        frame_id: str,
        expected_frame: FrameSnapshot,
        next_frame: FrameSnapshot,
        *,
        fence: str | None = None,
    ) -> bool:
        return self.mutate_run(
            run_id,
            RunExpectation(flow_state=expected_run_state, frames={frame_id: expected_frame}),
            RunMutation(flow_state=next_run_state, frames={frame_id: next_frame}),
            fence=fence,
        )

    def cas_complete_step_and_record_output(
        self,
        run_id: str,
        frame_id: str,
        expected_frame: FrameSnapshot,
        next_frame: FrameSnapshot,
        step_output_key: str,
        step_output: JsonValue,
        loop_context: tuple[str, int] | None,
        *,
        fence: str | None = None,
    ) -> bool:
        return self.mutate_run(
            run_id,
            RunExpectation(frames={frame_id: expected_frame}),
            RunMutation(
                frames={frame_id: next_frame},
                outputs=[Output(step_output_key, step_output, loop_context)],
            ),
            fence=fence,
        )

    def cas_start_loop(
        self,
        run_id: str,
        loop_instance_id: str,
        expected_run_state: FlowRunState,
        next_run_state: FlowRunState,
        frame_id: str,
        expected_frame: FrameSnapshot,
        next_frame: FrameSnapshot,
        initial_loop: LoopSnapshot,
        *,
        fence: str | None = None,
    ) -> bool:
        return self.mutate_run(
            run_id,
            RunExpectation(
                flow_state=expected_run_state,
                frames={frame_id: expected_frame},
                loops={loop_instance_id: ABSENT},
            ),
            RunMutation(
                flow_state=next_run_state,
                frames={frame_id: next_frame},
                loops={loop_instance_id: initial_loop},
            ),
            fence=fence,
        )

    def cas_loop_request_body_frame(
        self,
        run_id: str,
        loop_instance_id: str,
        expected_loop: LoopSnapshot,
        next_loop: LoopSnapshot,
        expected_run_state: FlowRunState,
        next_run_state: FlowRunState,
        *,
        fence: str | None = None,
    ) -> bool:
        return self.mutate_run(
            run_id,
            RunExpectation(flow_state=expected_run_state, loops={loop_instance_id: expected_loop}),
            RunMutation(flow_state=next_run_state, loops={loop_instance_id: next_loop}),
            fence=fence,
        )

    def cas_grant_body_frame_start(
        self,
        run_id: str,
        loop_instance_id: str,
        expected_loop: LoopSnapshot,
        next_loop: LoopSnapshot,
        frame_id: str,
        initial_frame: FrameSnapshot,
        ledger_entry: LoopIterationLedgerEntry,
        expected_run_state: FlowRunState,
        next_run_state: FlowRunState,
        *,
        fence: str | None = None,
    ) -> bool:
        return self.mutate_run(
            run_id,
            RunExpectation(
                flow_state=expected_run_state,
                loops={loop_instance_id: expected_loop},
                frames={frame_id: ABSENT},
            ),
            RunMutation(
                flow_state=next_run_state,
                loops={loop_instance_id: next_loop},
                frames={frame_id: initial_frame},
                loop_ledger=[ledger_entry],
            ),
            fence=fence,
        )

    def cas_complete_body_frame(
        self,
        run_id: str,
        loop_instance_id: str,
        expected_loop: LoopSnapshot,
        next_loop: LoopSnapshot,
        frame_id: str,
        expected_frame: FrameSnapshot,
        next_frame: FrameSnapshot,
        expected_run_state: FlowRunState,
        next_run_state: FlowRunState,
        *,
        fence: str | None = None,
    ) -> bool:
        return self.mutate_run(
            run_id,
            RunExpectation(
                flow_state=expected_run_state,
                loops={loop_instance_id: expected_loop},
                frames={frame_id: expected_frame},
            ),
            RunMutation(
                flow_state=next_run_state,
                loops={loop_instance_id: next_loop},
                frames={frame_id: next_frame},
            ),
            fence=fence,
        )

    cas_complete_loop = cas_complete_body_frame  # same shape; the frame is the parent frame

    # --- owner lease and cancel request (§4.8) ----------------------------------------------

    def acquire_run_lease(
        self, run_id: str, owner: RunOwner, *, expected_token: str | None
    ) -> bool:
        expect = RunExpectation(
            non_terminal=True, lease=expected_token, lease_free=expected_token is None
        )
        return self.mutate_run(run_id, expect, RunMutation(mobctl={"owner": owner.document()}))

    def renew_run_lease(self, run_id: str, token: str) -> bool:
        """A write of nothing, fenced: it refreshes the heartbeat while the lease holds."""
        return self.mutate_run(run_id, RunExpectation(), RunMutation(), fence=token)

    def release_run_lease(self, run_id: str, token: str) -> bool:
        release = RunMutation(sets=[("set", ("mobctl", "owner", "released_at"), timestamp())])
        return self.mutate_run(run_id, RunExpectation(lease=token), release)

    def request_cancel(self, run_id: str, requested_by: dict[str, JsonValue]) -> bool:
        """Record a cancel request (once); False when the run is terminal."""
        request: dict[str, JsonValue] = {"at": timestamp(), "by": requested_by}
        if self.mutate_run(
            run_id,
            RunExpectation(non_terminal=True, cancel_unrequested=True),
            RunMutation(mobctl={"cancel_requested": request}),
        ):
            return True
        current = self.get_run(run_id)
        if current is None:
            raise NotFound(f"run {run_id} does not exist in mob '{self.mob_id}'")
        return not current.terminal  # requested already (True), or terminal (False)


def first_cursor(run: MobRun | None) -> int:
    """The cursor before the run's first event (its events are all after it; 0: unknown, a
    run of another tool or of an older mobctl)."""
    recorded = run.mobctl.first_cursor if run is not None and run.mobctl is not None else None
    return max((recorded or 1) - 1, 0)
