"""The store contract as Protocols (store contract §1-§7).

The engine and the CLI use only these; a second backend (PostgreSQL) is a drop-in that runs the
same conformance suite (``tests/store/conformance.py``). Errors: ``mobctl.errors.StoreError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Protocol

from pydantic import JsonValue

from mobctl.store.models import (
    ExternalBindingOverlayRecord,
    FailureLedgerEntry,
    FlowRunState,
    FrameSnapshot,
    LoopIterationLedgerEntry,
    LoopSnapshot,
    MobEvent,
    MobRun,
    NewMobEvent,
    Roster,
    RunOwner,
    RunStatus,
    SpecRecord,
    SpecResources,
    SpecSource,
    StepLedgerEntry,
    StoredRealmProfile,
    SupervisorAuthorityRecord,
)
from mobctl.store.runs import RunExpectation, RunMutation


class EventStore(Protocol):
    def check_fits(self, event: NewMobEvent) -> None: ...
    def append(self, event: NewMobEvent) -> MobEvent: ...
    def append_batch(self, events: list[NewMobEvent]) -> list[MobEvent]: ...
    def append_terminal_event_if_absent(self, event: NewMobEvent) -> MobEvent | None: ...
    def append_step_failed_event_if_absent(self, event: NewMobEvent) -> MobEvent | None: ...
    def append_if_absent(self, event: NewMobEvent, key: tuple[str, ...]) -> MobEvent | None: ...
    def roster(self, since: Roster | None = None) -> Roster: ...
    def append_member_event(
        self, build: Callable[[Roster], NewMobEvent | None]
    ) -> MobEvent | None: ...
    def poll(self, after_cursor: int, limit: int) -> list[MobEvent]: ...
    def replay_all(self) -> list[MobEvent]: ...
    def tail(self, count: int) -> list[MobEvent]: ...
    def latest_cursor(self) -> int: ...
    def prune(self, older_than: datetime) -> int: ...
    def pruned_before(self) -> datetime | None: ...
    def clear(self) -> None: ...
    def follow(
        self,
        after_cursor: int,
        *,
        poll_interval: float = 0.2,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[MobEvent]: ...


class RunStore(Protocol):
    def create_run(self, run: MobRun) -> None: ...
    def get_run(self, run_id: str) -> MobRun | None: ...
    def cancel_request(self, run_id: str) -> JsonValue: ...
    def list_runs(self, flow_id: str | None = None) -> list[MobRun]: ...
    def mutate_run(
        self,
        run_id: str,
        expect: RunExpectation,
        apply: RunMutation,
        *,
        fence: str | None = None,
        missing_raises: bool = True,
    ) -> bool: ...
    def cas_run_status(
        self, run_id: str, expected: RunStatus, next_status: RunStatus, *, fence: str | None = None
    ) -> bool: ...
    def cas_flow_state(
        self,
        run_id: str,
        expected: FlowRunState,
        next_state: FlowRunState,
        *,
        fence: str | None = None,
    ) -> bool: ...
    def cas_run_snapshot(
        self,
        run_id: str,
        expected_status: RunStatus,
        expected_state: FlowRunState,
        next_status: RunStatus,
        next_state: FlowRunState,
        *,
        fence: str | None = None,
    ) -> bool: ...
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
    ) -> MobEvent | None: ...
    def append_step_entry(
        self, run_id: str, entry: StepLedgerEntry, *, fence: str | None = None
    ) -> None: ...
    def append_step_entry_if_absent(
        self, run_id: str, entry: StepLedgerEntry, *, fence: str | None = None
    ) -> bool: ...
    def put_step_output(
        self, run_id: str, step_id: str, output: JsonValue, *, fence: str | None = None
    ) -> None: ...
    def append_failure_entry(
        self, run_id: str, entry: FailureLedgerEntry, *, fence: str | None = None
    ) -> None: ...
    def append_failure_entry_if_absent(
        self, run_id: str, entry: FailureLedgerEntry, *, fence: str | None = None
    ) -> bool: ...
    def upsert_loop_snapshot(
        self,
        run_id: str,
        loop_instance_id: str,
        snapshot: LoopSnapshot,
        ledger_entry: LoopIterationLedgerEntry | None = None,
        *,
        fence: str | None = None,
    ) -> None: ...
    def cas_frame_state(
        self,
        run_id: str,
        frame_id: str,
        expected: FrameSnapshot | None,
        next_frame: FrameSnapshot,
        *,
        fence: str | None = None,
    ) -> bool: ...
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
    ) -> bool: ...
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
    ) -> bool: ...
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
    ) -> bool: ...
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
    ) -> bool: ...
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
    ) -> bool: ...
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
    ) -> bool: ...
    def cas_complete_loop(
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
    ) -> bool: ...
    def acquire_run_lease(
        self, run_id: str, owner: RunOwner, *, expected_token: str | None
    ) -> bool: ...
    def renew_run_lease(self, run_id: str, token: str) -> bool: ...
    def release_run_lease(self, run_id: str, token: str) -> bool: ...
    def request_cancel(self, run_id: str, requested_by: dict[str, JsonValue]) -> bool: ...


class SpecStore(Protocol):
    def put_spec(
        self,
        mob_id: str,
        definition: dict[str, JsonValue],
        revision: int | None,
        *,
        source: SpecSource | None = None,
        resources: SpecResources | None = None,
        then: Callable[[int], object] | None = None,
    ) -> int: ...
    def get_spec(self, mob_id: str) -> SpecRecord | None: ...
    def list_specs(self) -> list[str]: ...
    def delete_spec(self, mob_id: str, revision: int | None) -> bool: ...


class RealmProfileStore(Protocol):
    def create(self, name: str, profile: dict[str, JsonValue]) -> StoredRealmProfile: ...
    def get(self, name: str) -> StoredRealmProfile | None: ...
    def list(self) -> list[StoredRealmProfile]: ...
    def update(
        self, name: str, profile: dict[str, JsonValue], expected_revision: int
    ) -> StoredRealmProfile: ...
    def delete(self, name: str, expected_revision: int) -> StoredRealmProfile: ...


class RuntimeMetadataStore(Protocol):
    def load_supervisor_authority(self, mob_id: str) -> SupervisorAuthorityRecord | None: ...
    def put_supervisor_authority(self, mob_id: str, record: SupervisorAuthorityRecord) -> None: ...
    def put_supervisor_authority_if_absent(
        self, mob_id: str, record: SupervisorAuthorityRecord
    ) -> bool: ...
    def compare_and_put_supervisor_authority(
        self,
        mob_id: str,
        expected: SupervisorAuthorityRecord,
        record: SupervisorAuthorityRecord,
    ) -> bool: ...
    def delete_supervisor_authority(
        self, mob_id: str, expected: SupervisorAuthorityRecord | None = None
    ) -> bool: ...
    def list_external_binding_overlays(self, mob_id: str) -> list[ExternalBindingOverlayRecord]: ...
    def put_external_binding_overlay_if_absent(
        self, mob_id: str, record: ExternalBindingOverlayRecord
    ) -> bool: ...
    def upsert_external_binding_overlay(
        self, mob_id: str, record: ExternalBindingOverlayRecord
    ) -> None: ...
    def delete_external_binding_overlay(
        self, mob_id: str, agent_identity: str, generation: int
    ) -> None: ...
    def delete_external_binding_overlays(self, mob_id: str) -> None: ...


class Store(Protocol):
    """A whole store: per-mob event and run stores, and the store-wide ones."""

    max_record_bytes: int  # the largest event line or run change it writes (§2.5)

    @property
    def specs(self) -> SpecStore: ...
    @property
    def profiles(self) -> RealmProfileStore: ...
    @property
    def metadata(self) -> RuntimeMetadataStore: ...
    def events(self, mob_id: str) -> EventStore: ...
    def runs(self, mob_id: str) -> RunStore: ...
