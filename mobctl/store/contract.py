"""The store contract as Protocols (store contract §1-§8): everything the engine, the api and
the CLI may ask of a store.

A backend is a drop-in when it implements these and passes the backend-neutral conformance
suite (``tests/store/conformance``); the directory backend (``store.directory``) is the
embedded default. The change types of ``mutate_run`` are in :mod:`mobctl.store.changes`, the
compare-and-swap operations built on it in :mod:`mobctl.store.run_ops` (a backend inherits
them). Errors: ``mobctl.errors.StoreError`` and its subclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pydantic import JsonValue

from mobctl.store.changes import RunExpectation, RunMutation
from mobctl.store.models import (
    Checkpoint,
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
    RunIndexEntry,
    RunOwner,
    RunStatus,
    SpecRecord,
    SpecResources,
    SpecSource,
    StepLedgerEntry,
    StoredRealmProfile,
    SupervisorAuthorityRecord,
    SupervisorHistoryEntry,
)


@dataclass(frozen=True)
class ChainRecord:
    """A record of the event log as stored: where it is, its cursor, its stored chain hash and
    the exact bytes that hash covers (store contract §8.4)."""

    position: int  # a byte offset (directory backend) or any increasing position
    cursor: int
    hash: str
    body: bytes


@dataclass
class ChainView:
    """The event log as stored, for verification against signed checkpoints: its readable
    records in stored order, what could not be read, and the chain's genesis and links."""

    records: list[ChainRecord] = field(default_factory=list)
    unreadable: dict[int, int] = field(default_factory=dict)  # cursor (best guess) -> position
    torn_after: int = -1  # unreadable records after this position are a torn tail, not damage
    genesis: str = "0" * 64
    chain_links: dict[str, str] = field(default_factory=dict)
    next_cursor: int = 1  # the cursor high-water (a pruned tail's cursors stay issued)


@dataclass(frozen=True, slots=True)
class LogProblem:
    offset: int
    message: str


@dataclass
class LogVerification:
    """What ``verify_log`` found: records that verified, and the problems in file order."""

    records: int = 0
    last_cursor: int = 0
    problems: list[LogProblem] = field(default_factory=list)

    def add(self, offset: int, message: str) -> None:
        self.problems.append(LogProblem(offset, message))


@dataclass(frozen=True)
class Problem:
    """A problem ``check`` found: its code (an error code), where, what, and whether
    ``repair`` fixes it."""

    code: str
    path: str
    message: str
    repairable: bool


@dataclass
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)  # what a repair did, one line each

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, order=True)
class TurnKey:
    """Which turn a transcript is of (store contract §4.10): ``{step}/{iteration}/{member}/
    {attempt}``, or ``escalation/{step}/{member}/{attempt}`` for a supervisor escalation turn.
    ``iteration`` is the loop iteration of the step's frame, dotted for nested loops (``0``
    outside any loop, ``2``, ``1.3``)."""

    step_id: str
    iteration: str
    member: str
    attempt: int
    escalation: bool = False

    def __str__(self) -> str:
        if self.escalation:
            return f"escalation/{self.step_id}/{self.member}/{self.attempt}"
        return f"{self.step_id}/{self.iteration}/{self.member}/{self.attempt}"


@dataclass(frozen=True)
class Transcript:
    """One turn's transcript as stored: its key and the record (JSON)."""

    key: TurnKey
    record: dict[str, JsonValue]


Seal = Callable[[int, str, Checkpoint | None], Checkpoint]
"""``(head cursor, head chain hash, last checkpoint) -> the checkpoint of that head`` (the last
one when it already covers it)."""


class EventStore(Protocol):
    location: str  # where the log is, as messages name it

    # --- appends (§3.2) ---
    def check_fits(self, event: NewMobEvent) -> None: ...
    def append(self, event: NewMobEvent) -> MobEvent: ...
    def append_batch(self, events: list[NewMobEvent]) -> list[MobEvent]: ...
    def append_terminal_event_if_absent(
        self, event: NewMobEvent, *, after: int = 0
    ) -> MobEvent | None: ...
    def append_step_failed_event_if_absent(
        self, event: NewMobEvent, *, after: int = 0
    ) -> MobEvent | None: ...
    def append_if_absent(self, event: NewMobEvent, key: tuple[str, ...]) -> MobEvent | None: ...
    # --- reads ---
    def poll(self, after_cursor: int, limit: int) -> list[MobEvent]: ...
    def replay_all(self) -> list[MobEvent]: ...
    def tail(self, count: int) -> list[MobEvent]: ...
    def latest_cursor(self) -> int: ...
    def find_terminal_event(self, run_id: str, *, after: int = 0) -> MobEvent | None: ...
    def terminal_events(self) -> dict[str, MobEvent]: ...
    def follow(
        self,
        after_cursor: int,
        *,
        poll_interval: float = 0.2,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[MobEvent]: ...
    # --- prune, clear ---
    def prune(self, older_than: datetime) -> int: ...
    def pruned_before(self) -> datetime | None: ...
    def clear(self) -> None: ...
    # --- the roster (§4.9) ---
    def roster(self, since: Roster | None = None) -> Roster: ...
    def append_member_event(
        self, build: Callable[[Roster], NewMobEvent | None]
    ) -> MobEvent | None: ...
    # --- integrity and signed checkpoints (§8.4, §8.8) ---
    def chain(self) -> ChainView: ...
    def verify_log(self) -> LogVerification: ...
    def checkpoints(self) -> tuple[list[tuple[int, Checkpoint]], list[int]]: ...
    def seal(self, sign: Seal) -> tuple[Checkpoint, bool] | None: ...


class RunStore(Protocol):
    mob_id: str

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
    # --- the run index (§4.9) ---
    def match_runs(self, prefix: str) -> list[str]: ...
    def newest_runs(self) -> Iterator[RunIndexEntry] | None: ...
    def unsettled_runs(self) -> list[str]: ...
    def settle(self, run_id: str, event: MobEvent | None) -> None: ...
    def forget(self, run_id: str) -> None: ...
    def rebuild_index(self) -> None: ...
    # --- the compare-and-swap operations (§4.3-§4.5, built on mutate_run) ---
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
    # --- owner lease and cancel request (§4.8) ---
    def acquire_run_lease(
        self, run_id: str, owner: RunOwner, *, expected_token: str | None
    ) -> bool: ...
    def renew_run_lease(self, run_id: str, token: str) -> bool: ...
    def release_run_lease(self, run_id: str, token: str) -> bool: ...
    def request_cancel(self, run_id: str, requested_by: dict[str, JsonValue]) -> bool: ...


class TranscriptStore(Protocol):
    """A mob's turn transcripts (store contract §4.10): one record per turn, private, at most
    the store's record cap (``RecordTooLarge`` otherwise), never holding credentials."""

    def put_transcript(self, run_id: str, key: TurnKey, record: dict[str, JsonValue]) -> None:
        """Store (or replace) the transcript of one turn of the run ``run_id``."""
        ...

    def list_transcripts(
        self, run_id: str, *, step: str | None = None, member: str | None = None
    ) -> list[Transcript]:
        """The run's transcripts (of one step, one member) in key order; [] for none."""
        ...


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
    def supervisor_secret_at_rest(self, mob_id: str) -> str | None: ...
    # the authority history (§8.8): every key that was ever the authority, endorsed
    def load_supervisor_history(self, mob_id: str) -> list[SupervisorHistoryEntry]: ...
    def record_supervisor_activation(self, mob_id: str, entry: SupervisorHistoryEntry) -> bool: ...
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
    def location(self) -> str:
        """Where the store is, as messages name it (a directory, a database URL)."""
        ...

    @property
    def specs(self) -> SpecStore: ...
    @property
    def profiles(self) -> RealmProfileStore: ...
    @property
    def metadata(self) -> RuntimeMetadataStore: ...
    def events(self, mob_id: str) -> EventStore: ...
    def runs(self, mob_id: str) -> RunStore: ...
    def transcripts(self, mob_id: str) -> TranscriptStore: ...
    def mob_ids(self) -> list[str]: ...
    def prepare(self) -> bool:
        """Create the store if it does not exist yet (idempotent); True when created now."""
        ...

    def check(self, *, repair: bool = False) -> CheckReport:
        """Every problem of the whole store (store contract §8.9); with ``repair``, first fix
        what is safe and list each action."""
        ...
