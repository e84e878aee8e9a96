"""Value types of the store contract, with Meerkat's field names (store contract §1).

Run-state internals (flow state, frames, loops) belong to the engine; the store treats them
as JSON that it compares structurally, so their models accept any further fields.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue
from pydantic_core import PydanticCustomError

from mobctl.canonical import canonical
from mobctl.clock import parse_timestamp

RunStatus = Literal["pending", "running", "completed", "failed", "canceled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "canceled"})
TERMINAL_EVENT_TYPES: frozenset[str] = frozenset({"flow_completed", "flow_failed", "flow_canceled"})
# what a run that passed its deadline says in its flow_failed reason (flow-semantics §6, §7.6):
# "flow failed for run {run_id}: max flow duration exceeded for {run_id}"
DEADLINE_EXCEEDED = "max flow duration exceeded for "


def timed_out(kind: dict[str, Any] | None) -> bool:
    """Whether a terminal event's kind (``{"type", "cause", "reason", ...}``) ends a run that
    passed its deadline (``max_flow_duration_ms`` or ``--timeout``): Meerkat records it as
    ``flow_failed`` with cause ``step_error``, and only the reason tells it apart."""
    if not kind or kind.get("type") != "flow_failed" or kind.get("cause") != "step_error":
        return False
    reason = kind.get("reason")
    return isinstance(reason, str) and f": {DEADLINE_EXCEEDED}" in reason


FLOW_SYSTEM_MEMBER = "__flow_system_member__"
RUN_SCHEMA_VERSION = 7
SNAPSHOT_FORMAT = 2  # 2: the run journal (store/journal.py); 1 had none


def _rfc3339(text: str) -> str:
    try:
        parse_timestamp(text)
    except ValueError:  # its message quotes the text: the store's content
        raise PydanticCustomError("timestamp", "Input should be an RFC 3339 timestamp") from None
    return text


Timestamp = Annotated[str, AfterValidator(_rfc3339)]
"""A stored time (RFC 3339, any offset; kept as written): refused, never quoted, when it is
not one, so that readers can rely on it."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def document(self) -> dict[str, Any]:
        """The canonical JSON document (optional fields omitted when null)."""
        return self.model_dump(mode="json", exclude_none=True)


class _Open(_Model):
    model_config = ConfigDict(extra="allow")


# --- events ---------------------------------------------------------------------------------


class EventKind(_Open):
    """``{"type": "<kind>", ...fields}``; the fields are the kind's (flow-semantics §14.1)."""

    type: str

    def field(self, name: str) -> Any:
        return (self.model_extra or {}).get(name)


class NewMobEvent(_Model):
    mob_id: str
    kind: EventKind
    timestamp: str | None = None


class MobEvent(_Model):
    cursor: int
    timestamp: str
    mob_id: str
    kind: EventKind


# --- members (the roster index, store contract §4.9) ----------------------------------------

MEMBER_EVENT_TYPES: frozenset[str] = frozenset({"member_spawned", "member_retired"})


class RosterMember(_Model):
    identity: str
    generation: int
    role: str  # the profile the member was spawned from
    runtime_mode: str = "autonomous_host"


class Roster(_Model):
    """The active members of a mob, folded from its ``member_spawned`` / ``member_retired``
    events up to ``cursor`` (flow-semantics §2)."""

    cursor: int = 0  # the last event folded in
    hash: str = ""  # that event's chain hash (a backend's check that the roster is current)
    active: dict[str, RosterMember] = Field(default_factory=dict)
    last_generation: dict[str, int] = Field(default_factory=dict)  # active or not

    def of_role(self, role: str) -> list[RosterMember]:
        """Active members of a role, sorted by identity as plain strings (w-10 < w-2, kept)."""
        return sorted((m for m in self.active.values() if m.role == role), key=lambda m: m.identity)

    def fold(self, event: MobEvent | NewMobEvent, cursor: int, hash: str) -> None:
        """Apply one event (any type: only member events change the members)."""
        self.cursor, self.hash = cursor, hash
        kind = event.kind
        identity = kind.field("agent_identity")
        if kind.type not in MEMBER_EVENT_TYPES or not isinstance(identity, str):
            return
        generation = kind.field("generation")
        generation = generation if isinstance(generation, int) else 0
        if kind.type == "member_spawned":
            mode = kind.field("runtime_mode")
            self.active[identity] = RosterMember(
                identity=identity,
                generation=generation,
                role=str(kind.field("role")),
                runtime_mode=mode if isinstance(mode, str) else "autonomous_host",
            )
            self.last_generation[identity] = max(
                self.last_generation.get(identity, generation), generation
            )
        elif (member := self.active.get(identity)) is not None and member.generation == generation:
            del self.active[identity]


# --- runs -----------------------------------------------------------------------------------


class StepLedgerEntry(_Model):
    step_id: str
    agent_identity: str = FLOW_SYSTEM_MEMBER
    status: Literal["dispatched", "completed", "failed", "skipped", "canceled"]
    output: JsonValue = None
    timestamp: Timestamp


class FailureLedgerEntry(_Model):
    step_id: str
    reason: str
    timestamp: Timestamp
    error_report: JsonValue = None
    error: JsonValue = None


class LoopIterationLedgerEntry(_Model):
    loop_instance_id: str
    iteration: int
    frame_id: str


class FlowRunState(_Open):
    """The run-level flow state: its fields as flow-semantics §15 has them, each checked
    (strictly: a value is never converted, so the document stays what the store holds) when
    present, so a reader can rely on their types; fields of another tool are kept as they are."""

    model_config = ConfigDict(strict=True)

    phase: str = "Absent"
    tracked_steps: list[str] | None = None
    ordered_steps: list[str] | None = None
    step_status: dict[str, str | None] | None = None
    output_recorded: dict[str, bool] | None = None
    step_condition_results: dict[str, bool | None] | None = None
    step_has_conditions: dict[str, bool] | None = None
    step_dependencies: dict[str, list[str]] | None = None
    step_dependency_modes: dict[str, str] | None = None
    step_branches: dict[str, str | None] | None = None
    step_collection_policies: dict[str, str] | None = None
    step_quorum_thresholds: dict[str, int] | None = None
    step_target_counts: dict[str, int] | None = None
    step_target_success_counts: dict[str, int] | None = None
    step_target_terminal_failure_counts: dict[str, int] | None = None
    target_retry_counts: dict[str, int] | None = None
    failure_count: int | None = None
    consecutive_failure_count: int | None = None
    escalation_threshold: int | None = None
    max_step_retries: int | None = None
    ready_frames: list[str] | None = None
    ready_frame_membership: dict[str, bool] | None = None
    pending_body_frame_loops: list[str] | None = None
    pending_body_frame_loop_membership: dict[str, bool] | None = None
    active_node_count: int | None = None
    active_frame_count: int | None = None
    max_active_nodes: int | None = None
    max_active_frames: int | None = None
    max_frame_depth: int | None = None
    last_granted_frame: str | None = None
    last_granted_loop: str | None = None


class FrameSnapshot(_Open):
    kernel_state: dict[str, JsonValue] = Field(default_factory=dict)


class LoopSnapshot(_Open):
    kernel_state: dict[str, JsonValue] = Field(default_factory=dict)


class RunOwner(_Model):
    token: str
    pid: int
    host: str
    process_start: str = ""
    acquired_at: Timestamp
    heartbeat_at: Timestamp
    ttl_ms: int = 30_000
    released_at: Timestamp | None = None


class MobctlRunState(_Model):
    snapshot_format: int = SNAPSHOT_FORMAT
    spec_revision: int | None = None
    flow_config: JsonValue = None
    owner: RunOwner | None = None
    cancel_requested: dict[str, JsonValue] | None = None
    skip_reasons: dict[str, str] = Field(default_factory=dict)
    terminal_detail: str | None = None
    # the terminal event's kind, written with the terminal status so repair can re-append it
    terminal_event: dict[str, JsonValue] | None = None
    journal_seq: int = 0  # the last journal line folded into this base snapshot
    drivers: list[str] | None = None  # the --driver specs it was started with (resume reuses)
    first_cursor: int | None = None  # every event of the run has a cursor at least this
    # token usage per member and per step (mobctl.engine.accounting), kept as turns end
    accounting: dict[str, JsonValue] | None = None


class MobRun(_Model):
    run_id: str
    mob_id: str
    flow_id: str
    flow_definition_digest: str = ""
    status: RunStatus = "pending"
    flow_state: FlowRunState = Field(default_factory=FlowRunState)
    activation_params: dict[str, JsonValue] = Field(default_factory=dict)
    created_at: Timestamp
    completed_at: Timestamp | None = None
    step_ledger: list[StepLedgerEntry] = Field(default_factory=list)
    failure_ledger: list[FailureLedgerEntry] = Field(default_factory=list)
    frames: dict[str, FrameSnapshot] = Field(default_factory=dict)
    loops: dict[str, LoopSnapshot] = Field(default_factory=dict)
    loop_iteration_ledger: list[LoopIterationLedgerEntry] = Field(default_factory=list)
    schema_version: int = RUN_SCHEMA_VERSION
    root_step_outputs: dict[str, JsonValue] = Field(default_factory=dict)
    loop_iteration_outputs: dict[str, list[dict[str, JsonValue]]] = Field(default_factory=dict)
    flow_authority_inputs: list[JsonValue] = Field(default_factory=list)
    mobctl: MobctlRunState | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class RunIndexEntry(_Model):
    """A run as the run index knows it (store contract §4.9): created (``created_at`` set),
    then settled (terminal, its terminal event in the log)."""

    run_id: str
    flow_id: str | None = None
    created_at: Timestamp | None = None
    first_cursor: int | None = None
    status: RunStatus | None = None  # set once settled
    cause: str | None = None
    completed_at: Timestamp | None = None
    terminal_cursor: int | None = None
    timed_out: bool | None = None  # True for a failed run that passed its deadline

    @property
    def settled(self) -> bool:
        return self.status is not None


# --- specs and profiles ---------------------------------------------------------------------


class SpecSource(_Model):
    path: str
    format: Literal["toml", "json"]
    text: str


class SpecResources(_Model):
    schemas: dict[str, JsonValue] = Field(default_factory=dict)
    skills: dict[str, str] = Field(default_factory=dict)


def definition_digest(definition: dict[str, Any]) -> str:
    """A spec's ``digest``: ``sha256:`` and the hex SHA-256 of its canonical JSON (§5)."""
    return "sha256:" + hashlib.sha256(canonical(definition).encode("utf-8")).hexdigest()


class SpecRecord(_Model):
    mob_id: str
    revision: int
    digest: str
    registered_at: Timestamp
    updated_at: Timestamp
    definition: dict[str, JsonValue]
    source: SpecSource | None = None
    resources: SpecResources = Field(default_factory=SpecResources)
    schema_version: int = 1


class StoredRealmProfile(_Model):
    name: str
    profile: dict[str, JsonValue]
    revision: int
    created_at: Timestamp
    updated_at: Timestamp
    schema_version: int = 1


# --- runtime metadata -----------------------------------------------------------------------


class PendingRotation(_Open):
    operation_id: str | None = None
    secret_key: list[int]
    public_peer_id: str
    epoch: int
    protocol_version: int
    accepted_peer_ids: list[str] = Field(default_factory=list)


class SupervisorAuthorityRecord(_Model):
    secret_key: list[int]
    public_peer_id: str
    epoch: int = 0
    protocol_version: int = 5
    pending_rotation: PendingRotation | None = None


class ExternalBindingOverlayRecord(_Open):
    agent_identity: str
    generation: int
    normalized_member_ref: JsonValue = None
    bootstrap_token: str | None = None
    status: JsonValue = "Normalized"
    updated_at: Timestamp


class SupervisorHistoryEntry(_Model):
    """One line of ``metadata/supervisor-history.jsonl``: an authority key and its endorsements.

    ``endorsement`` is the signature of the previous epoch's key (whose public key is
    ``previous_public_key``) and ``acceptance`` this key's own signature, both over
    :func:`mobctl.store.authority.history_message`; the first entry has no predecessor.
    """

    epoch: int
    public_peer_id: str
    public_key: str  # "ed25519:" + base64 of the raw 32-byte key
    activated_at: Timestamp
    previous_public_key: str | None = None
    endorsement: str | None = None  # base64 Ed25519 signature by previous_public_key
    acceptance: str | None = None  # base64 Ed25519 signature by public_key


class Checkpoint(_Model):
    """One line of ``checkpoints.jsonl``: the event log's chain hash at ``cursor``, signed."""

    cursor: int
    hash: str
    epoch: int
    public_peer_id: str
    public_key: str
    signed_at: Timestamp
    signature: str  # base64 Ed25519 signature of the checkpoint message (checkpoints.py)
