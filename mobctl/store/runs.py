"""The directory backend's run store: one JSON snapshot per run (store contract §4, §8.7).

Every mutation is ``mutate_run``: under the run's lock, read the whole snapshot, compare every
expected component (type-strict JSON equality), apply every change, replace the file
atomically. So each CAS of the contract, however many parts it has, is all-or-nothing.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, JsonValue, ValidationError

from mobctl.canonical import canonical, json_equal, parse_json
from mobctl.clock import timestamp
from mobctl.errors import (
    InternalStoreError,
    NotFound,
    RecordTooLarge,
    StoreCorrupt,
    StoreFormatTooNew,
    TerminalEventPending,
    WriteFailed,
)
from mobctl.ids import is_run_id
from mobctl.store import journal
from mobctl.store.defects import unreadable
from mobctl.store.eventlog import DirectoryEventStore
from mobctl.store.files import StoreFiles
from mobctl.store.locks import Locks
from mobctl.store.models import (
    FLOW_SYSTEM_MEMBER,
    RUN_SCHEMA_VERSION,
    SNAPSHOT_FORMAT,
    TERMINAL_EVENT_TYPES,
    TERMINAL_STATUSES,
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


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()
TERMINAL_LEDGER = frozenset({"completed", "failed", "skipped"})


@dataclass
class RunExpectation:
    """What ``mutate_run`` compares before writing (unset parts are not compared)."""

    status: RunStatus | None = None
    non_terminal: bool = False
    flow_state: FlowRunState | None = None
    frames: dict[str, FrameSnapshot | _Absent] = field(default_factory=dict)
    loops: dict[str, LoopSnapshot | _Absent] = field(default_factory=dict)


@dataclass
class Output:
    key: str
    value: JsonValue
    loop_context: tuple[str, int] | None = None


@dataclass
class RunMutation:
    """What ``mutate_run`` writes when every expectation holds."""

    status: RunStatus | None = None
    flow_state: FlowRunState | None = None
    frames: dict[str, FrameSnapshot] = field(default_factory=dict)
    loops: dict[str, LoopSnapshot] = field(default_factory=dict)
    step_entries: list[StepLedgerEntry] = field(default_factory=list)
    step_entries_if_absent: list[StepLedgerEntry] = field(default_factory=list)
    failure_entries: list[FailureLedgerEntry] = field(default_factory=list)
    loop_ledger: list[LoopIterationLedgerEntry] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    mobctl: dict[str, JsonValue] = field(default_factory=dict)
    # raw journal ops (mobctl's engine: the exact parts of flow state and frames it changed)
    sets: list[journal.Op] = field(default_factory=list)


Snapshot = dict[str, Any]
Change = Callable[[Snapshot], Snapshot | None]  # None: a lost CAS
Plan = Callable[["_Loaded"], list[journal.Op] | None]  # None: a lost CAS; must not mutate
FOLD_AT_LEAST = 64 * 1024  # fold the journal into the base once it is this big and ...
# ... bigger than the base: reads stay linear in the snapshot, folds are rare (geometric)


class _SnapshotFormat(BaseModel):
    snapshot_format: int = 1
    journal_seq: int = 0


class _SnapshotHead(BaseModel):
    """What is read of a base snapshot before its journal applies (``MobRun`` checks the
    rest when the run is asked for)."""

    mobctl: _SnapshotFormat | None = None


@dataclass
class _Loaded:
    """A snapshot as this process last read it, and how far into the journal that was."""

    base_id: tuple[int, int, int]
    base_size: int
    doc: Snapshot
    seq: int
    offset: int
    by_step: dict[str, list[Snapshot]] = field(default_factory=dict)
    indexed: int = 0  # step-ledger entries in ``by_step``
    iterations: set[str] = field(default_factory=set)  # loop-iteration ledger entries ...
    iterations_indexed: int = 0  # ... as canonical JSON, and how many

    def ledger_of(self, step_id: str) -> list[Snapshot]:
        """The step's ledger entries (an index caught up lazily: O(new entries))."""
        ledger = self.doc["step_ledger"]
        for entry in ledger[self.indexed :]:
            self.by_step.setdefault(entry["step_id"], []).append(entry)
        self.indexed = len(ledger)
        return self.by_step.get(step_id, [])

    def iteration_recorded(self, entry: Snapshot) -> bool:
        """Whether the loop-iteration ledger holds ``entry`` (lazily indexed, like
        :meth:`ledger_of`: a loop's iterations do not cost more as it goes on)."""
        ledger = self.doc["loop_iteration_ledger"]
        self.iterations.update(_key(e) for e in ledger[self.iterations_indexed :])
        self.iterations_indexed = len(ledger)
        return _key(entry) in self.iterations


class DirectoryRunStore:
    """``RunStore`` for one mob: ``mobs/<mob_id>/runs/<run_id>.json`` plus its journal."""

    def __init__(
        self,
        files: StoreFiles,
        mob_dir: Path,
        mob_id: str,
        locks: Locks,
        events: DirectoryEventStore,
        *,
        max_record_bytes: int,
        prepare: Callable[[], object] = lambda: None,
    ) -> None:
        self.files = files
        self.mob_id = mob_id
        self.dir = mob_dir / "runs"
        self.locks = locks
        self.events = events
        self.max_record_bytes = max_record_bytes
        self._prepare = prepare
        self._loaded: dict[str, _Loaded] = {}
        self._mutex = threading.RLock()  # the cache is shared by this process's threads

    def path(self, run_id: str) -> Path:
        if not is_run_id(run_id):
            raise NotFound(f"'{run_id}' is not a run id (a lowercase UUID)")
        return self.dir / f"{run_id}.json"

    def journal_path(self, run_id: str) -> Path:
        return self.path(run_id).with_suffix(".journal")

    # --- reading (no locks: the base is replaced atomically, the journal only grows) --------

    def _load(self, run_id: str, *, writer: bool = False) -> _Loaded | None:
        """The current snapshot (cached: only journal lines new since the last read are
        parsed). A writer, holding the run's lock, also cuts off an unfinished last line."""
        path = self.path(run_id)
        with self._mutex:
            for _ in range(10):
                loaded = self._loaded.get(run_id)
                try:
                    loaded = self._base(path, loaded)
                except FileNotFoundError:
                    self._loaded.pop(run_id, None)
                    return None
                journal_file = self.journal_path(run_id)
                try:
                    with self.files.reader(journal_file) as handle:
                        if os.fstat(handle.fileno()).st_size == loaded.offset:
                            data = b""  # nothing new
                        else:
                            handle.seek(loaded.offset)
                            data = handle.read()
                except FileNotFoundError:
                    data = b""
                try:
                    seq, end = journal.replay(loaded.doc, loaded.seq, data, loaded.offset)
                except journal.JournalGap:
                    self._loaded.pop(run_id, None)  # folded meanwhile: read the new base
                    continue
                except journal.JournalCorrupt as exc:
                    self._loaded.pop(run_id, None)
                    raise StoreCorrupt(
                        f"run journal {journal_file} is corrupt: {exc}",
                        hint="the base snapshot is intact; `mobctl store check` reports the run",
                    ) from exc
                except BaseException:
                    self._loaded.pop(run_id, None)
                    raise
                if writer and end < loaded.offset + len(data):
                    self.files.truncate(journal_file, end)  # an append that never finished
                loaded.seq, loaded.offset = seq, end
                self._loaded[run_id] = loaded
                return loaded
        raise StoreCorrupt(f"run {run_id} keeps changing under the reader; try again")

    def _base(self, path: Path, loaded: _Loaded | None) -> _Loaded:
        if loaded is not None:
            info = self.files.stat(path)
            if loaded.base_id == (info.st_ino, info.st_mtime_ns, info.st_size):
                return loaded
        with self.files.reader(path) as handle:
            info = os.fstat(handle.fileno())
            base_id = (info.st_ino, info.st_mtime_ns, info.st_size)
            if loaded is not None and loaded.base_id == base_id:
                return loaded
            data = handle.read()
        try:
            document = parse_json(data)
        except ValueError as exc:
            raise unreadable(path, "a run snapshot", exc) from None
        if not isinstance(document, dict) or document.get("schema_version") != RUN_SCHEMA_VERSION:
            raise StoreCorrupt(f"run snapshot {path} is not a schema_version 7 MobRun")
        try:
            extras = _SnapshotHead.model_validate(document).mobctl
        except ValidationError as exc:
            raise unreadable(path, "a run snapshot", exc, _SnapshotHead) from None
        if extras is not None and extras.snapshot_format > SNAPSHOT_FORMAT:
            raise StoreFormatTooNew(
                f"run snapshot {path} was written by a newer mobctl",
                hint="upgrade mobctl to read this run",
            )
        seq = 0 if extras is None else extras.journal_seq
        return _Loaded(base_id, len(data), document, seq, 0)

    def _read(self, run_id: str) -> Snapshot | None:
        """The current document; shared with the cache, so callers must not change it."""
        loaded = self._load(run_id)
        return None if loaded is None else loaded.doc

    def get_run(self, run_id: str) -> MobRun | None:
        document = self._read(run_id)
        if document is None:
            return None
        try:
            return MobRun.model_validate(document)
        except ValidationError as exc:
            raise unreadable(self.path(run_id), "a run snapshot", exc, MobRun) from None

    def list_runs(self, flow_id: str | None = None) -> list[MobRun]:
        runs = []
        for stem in self.files.stems(self.dir, ".json"):
            run = self.get_run(stem) if is_run_id(stem) else None
            if run is not None and (flow_id is None or run.flow_id == flow_id):
                runs.append(run)
        return sorted(runs, key=lambda r: (r.created_at, r.run_id))

    def cancel_request(self, run_id: str) -> JsonValue:
        """``mobctl.cancel_requested`` of a run (cheap: no model validation), or None."""
        document = self._read(run_id)
        extras = (document or {}).get("mobctl")
        return extras.get("cancel_requested") if isinstance(extras, dict) else None

    # --- the one write path -----------------------------------------------------------------

    def _commit(
        self, run_id: str, plan: Plan, *, fence: str | None, missing_raises: bool
    ) -> Snapshot | None:
        """Plan the change against the current snapshot under the run's lock and append it to
        the journal as one line; the new snapshot, or None if the CAS was lost."""
        self._prepare()
        with self.locks.hold(f"mobs/{self.mob_id}/runs/{run_id}"), self._mutex:
            loaded = self._load(run_id, writer=True)
            if loaded is None:
                if missing_raises:
                    raise NotFound(f"run {run_id} does not exist in mob '{self.mob_id}'")
                return None
            doc = loaded.doc
            if fence is not None and not _holds(doc, fence):
                return None
            ops = plan(loaded)
            if ops is None:
                return None
            if fence is not None:
                ops.append(("set", ("mobctl", "owner", "heartbeat_at"), timestamp()))
            line = journal.encode(loaded.seq + 1, ops)
            if len(line) > self.max_record_bytes:
                raise RecordTooLarge(
                    f"a run change of {len(line)} bytes; the limit is {self.max_record_bytes}",
                    hint="a run change records outputs and failure reasons: keep outputs small, or "
                    "raise MOBCTL_MAX_RECORD_BYTES",
                )
            journal_file = self.journal_path(run_id)
            try:
                self.files.append(journal_file, line, create=False)
            except FileNotFoundError:
                self.files.write_atomic(journal_file, line)
            try:  # the decoded line: the cache holds exactly what the file says
                journal.apply(doc, parse_json(line)["ops"])
            except BaseException:
                self._loaded.pop(run_id, None)
                raise
            loaded.seq += 1
            loaded.offset += len(line)
            if doc["status"] in TERMINAL_STATUSES or (
                loaded.offset > max(FOLD_AT_LEAST, loaded.base_size)
            ):
                self._fold(run_id, loaded)
            return doc

    def _fold(self, run_id: str, loaded: _Loaded) -> None:
        """Write the current snapshot as the new base, then empty the journal. A crash in
        between is harmless: lines up to the base's ``journal_seq`` are skipped on replay.
        A failure is not the mutation's: it is already durable in the journal."""
        doc = loaded.doc
        extras = doc.get("mobctl")
        if not isinstance(extras, dict):  # a run another tool wrote, now changed by mobctl
            extras = doc["mobctl"] = {"snapshot_format": SNAPSHOT_FORMAT}
        extras["journal_seq"] = loaded.seq
        data = canonical(doc).encode("utf-8")
        try:
            self.files.write_atomic(self.path(run_id), data)
            if doc["status"] in TERMINAL_STATUSES:  # a finished run is one plain JSON file
                self.files.remove(self.journal_path(run_id))
            else:
                self.files.write_atomic(self.journal_path(run_id), b"")
        except (WriteFailed, OSError):
            return
        self._loaded.pop(run_id, None)  # the next read takes the new base's identity

    def _change(
        self, run_id: str, change: Change, *, fence: str | None, missing_raises: bool
    ) -> Snapshot | None:
        """``_commit`` for a change written as an edit of a copy of the document."""

        def plan(loaded: _Loaded) -> list[journal.Op] | None:
            edited = change(copy.deepcopy(loaded.doc))
            return None if edited is None else journal.diff(loaded.doc, edited)

        return self._commit(run_id, plan, fence=fence, missing_raises=missing_raises)

    # --- create -----------------------------------------------------------------------------

    def create_run(self, run: MobRun) -> None:
        if run.schema_version != RUN_SCHEMA_VERSION:
            raise InternalStoreError(f"run schema_version must be 7, not {run.schema_version}")
        if run.terminal:
            raise InternalStoreError("a run cannot be created in a terminal status")
        if run.step_ledger or run.failure_ledger:
            raise InternalStoreError("a new run must have empty ledgers")
        if run.mob_id != self.mob_id:
            raise InternalStoreError(f"run of mob '{run.mob_id}' created in mob '{self.mob_id}'")
        path = self.path(run.run_id)
        self._prepare()
        with self.locks.hold(f"mobs/{self.mob_id}/runs/{run.run_id}"):
            if self.files.exists(path):
                raise InternalStoreError(f"run already exists: {run.run_id}")
            data = canonical(run.document()).encode("utf-8")
            if len(data) > self.max_record_bytes:
                raise RecordTooLarge(
                    f"run snapshot would be {len(data)} bytes; the limit is "
                    f"{self.max_record_bytes}",
                    hint="activation params are kept in the run snapshot: keep them small",
                )
            with contextlib.suppress(FileNotFoundError):
                self.files.remove(self.journal_path(run.run_id))  # a leftover of an unreadable run
            self.files.write_atomic(path, data)

    # --- mutate_run and the operations built on it ------------------------------------------

    def mutate_run(
        self,
        run_id: str,
        expect: RunExpectation,
        apply: RunMutation,
        *,
        fence: str | None = None,
        missing_raises: bool = True,
    ) -> bool:
        def plan(loaded: _Loaded) -> list[journal.Op] | None:
            return _plan(loaded, apply) if _matches(loaded.doc, expect) else None

        return self._commit(run_id, plan, fence=fence, missing_raises=missing_raises) is not None

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
        """Snapshot first (the source of truth), then the terminal event if absent."""
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
        try:
            appended = self.events.append_terminal_event_if_absent(event)
        except WriteFailed as exc:
            raise TerminalEventPending(
                f"run {run_id} is {next_status}, but its terminal event is not written yet: "
                f"{exc.message}",
                hint="`mobctl store check --repair` (or the next command that opens the mob) "
                "adds it",
            ) from exc
        if appended is not None:
            return appended
        return self.terminal_event(run_id)

    def terminal_event(self, run_id: str) -> MobEvent | None:
        for event in self.events.replay_all():
            if event.kind.type in TERMINAL_EVENT_TYPES and event.kind.field("run_id") == run_id:
                return event
        return None

    # --- ledgers and outputs ----------------------------------------------------------------

    def append_step_entry(
        self, run_id: str, entry: StepLedgerEntry, *, fence: str | None = None
    ) -> None:
        self.mutate_run(run_id, RunExpectation(), RunMutation(step_entries=[entry]), fence=fence)

    def append_step_entry_if_absent(
        self, run_id: str, entry: StepLedgerEntry, *, fence: str | None = None
    ) -> bool:
        appended = False

        def change(doc: Snapshot) -> Snapshot | None:
            nonlocal appended
            appended = _append_step(doc, entry, if_absent=True)
            return doc if appended else None

        self._change(run_id, change, fence=fence, missing_raises=True)
        return appended

    def put_step_output(
        self, run_id: str, step_id: str, output: JsonValue, *, fence: str | None = None
    ) -> None:
        def change(doc: Snapshot) -> Snapshot:
            for entry in reversed(doc["step_ledger"]):
                if entry["step_id"] == step_id:
                    entry["output"] = output
                    return doc
            raise InternalStoreError(f"no ledger entry for step '{step_id}' in run {run_id}")

        self._change(run_id, change, fence=fence, missing_raises=True)

    def append_failure_entry(
        self, run_id: str, entry: FailureLedgerEntry, *, fence: str | None = None
    ) -> None:
        self.mutate_run(run_id, RunExpectation(), RunMutation(failure_entries=[entry]), fence=fence)

    def append_failure_entry_if_absent(
        self, run_id: str, entry: FailureLedgerEntry, *, fence: str | None = None
    ) -> bool:
        _check_failure(entry)
        appended = False

        def change(doc: Snapshot) -> Snapshot | None:
            nonlocal appended
            for existing in doc["failure_ledger"]:
                if existing["step_id"] != entry.step_id:
                    continue
                same = (
                    existing.get("reason") == entry.reason
                    and json_equal(existing.get("error_report"), entry.error_report)
                    and json_equal(existing.get("error"), entry.error)
                )
                if same:
                    return None
                raise InternalStoreError(f"failure ledger conflict for step '{entry.step_id}'")
            doc["failure_ledger"].append(entry.document())
            appended = True
            return doc

        self._change(run_id, change, fence=fence, missing_raises=True)
        return appended

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

    # --- the eight frame-aware CAS operations -----------------------------------------------

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

    # --- owner lease and cancel request -----------------------------------------------------

    def acquire_run_lease(
        self, run_id: str, owner: RunOwner, *, expected_token: str | None
    ) -> bool:
        def change(doc: Snapshot) -> Snapshot | None:
            if doc["status"] in TERMINAL_STATUSES:
                return None
            extras = doc.setdefault("mobctl", {"snapshot_format": SNAPSHOT_FORMAT})
            current = extras.get("owner")
            free = current is None or current.get("released_at") is not None
            if expected_token is None and not free:
                return None
            if expected_token is not None and (
                current is None or current.get("token") != expected_token
            ):
                return None
            extras["owner"] = owner.document()
            return doc

        return self._change(run_id, change, fence=None, missing_raises=True) is not None

    def renew_run_lease(self, run_id: str, token: str) -> bool:
        return self._commit(run_id, lambda _: [], fence=token, missing_raises=True) is not None

    def release_run_lease(self, run_id: str, token: str) -> bool:
        def change(doc: Snapshot) -> Snapshot | None:
            owner = (doc.get("mobctl") or {}).get("owner")
            if owner is None or owner.get("token") != token:
                return None
            owner["released_at"] = timestamp()
            return doc

        return self._change(run_id, change, fence=None, missing_raises=True) is not None

    def request_cancel(self, run_id: str, requested_by: dict[str, JsonValue]) -> bool:
        def change(doc: Snapshot) -> Snapshot | None:
            if doc["status"] in TERMINAL_STATUSES:
                return None
            extras = doc.setdefault("mobctl", {"snapshot_format": SNAPSHOT_FORMAT})
            if extras.get("cancel_requested") is None:
                extras["cancel_requested"] = {"at": timestamp(), "by": requested_by}
                return doc
            return None

        current = self._read(run_id)
        if current is None:
            raise NotFound(f"run {run_id} does not exist in mob '{self.mob_id}'")
        if current["status"] in TERMINAL_STATUSES:
            return False
        self._change(run_id, change, fence=None, missing_raises=True)
        return True


# --- pure helpers ----------------------------------------------------------------------------


def _holds(doc: Snapshot, fence: str) -> bool:
    owner = (doc.get("mobctl") or {}).get("owner") or {}
    return bool(owner.get("token") == fence and owner.get("released_at") is None)


def _matches(doc: Snapshot, expect: RunExpectation) -> bool:
    if expect.non_terminal and doc["status"] in TERMINAL_STATUSES:
        return False
    if expect.status is not None and doc["status"] != expect.status:
        return False
    if expect.flow_state is not None and not json_equal(
        doc["flow_state"], expect.flow_state.document()
    ):
        return False
    for table, wanted in (("frames", expect.frames), ("loops", expect.loops)):
        for key, value in wanted.items():
            current = doc[table].get(key)
            if isinstance(value, _Absent):
                if current is not None:
                    return False
            elif current is None or not json_equal(current, value.document()):
                return False
    return True


def _plan(loaded: _Loaded, change: RunMutation) -> list[journal.Op]:
    """The journal ops of a mutation (the document is only read)."""
    doc = loaded.doc
    ops: list[journal.Op] = list(change.sets)
    if change.status is not None:
        ops.append(("set", ("status",), change.status))
        if change.status in TERMINAL_STATUSES and doc.get("completed_at") is None:
            ops.append(("set", ("completed_at",), timestamp()))
    if change.flow_state is not None:
        ops += journal.diff(doc["flow_state"], change.flow_state.document(), ("flow_state",))
    for table, snapshots in (("frames", change.frames), ("loops", change.loops)):
        for key, snapshot in snapshots.items():
            current = doc[table].get(key)
            document = snapshot.document()
            if current is None:
                ops.append(("set", (table, key), document))
            else:
                ops += journal.diff(current, document, (table, key))
    added: list[Snapshot] = []
    for entry, if_absent in [(e, False) for e in change.step_entries] + [
        (e, True) for e in change.step_entries_if_absent
    ]:
        same_step = [*loaded.ledger_of(entry.step_id), *added]
        if _step_entry_fits(same_step, entry, if_absent=if_absent):
            added.append(entry.document())
    ops += [("push", ("step_ledger",), entry) for entry in added]
    for failure in change.failure_entries:
        _check_failure(failure)
        ops.append(("push", ("failure_ledger",), failure.document()))
    pushed: set[str] = set()
    for ledger in change.loop_ledger:
        document = ledger.document()
        if not loaded.iteration_recorded(document) and _key(document) not in pushed:
            pushed.add(_key(document))
            ops.append(("push", ("loop_iteration_ledger",), document))
    lengths: dict[str, int] = {}  # of the loop histories, as the ops so far leave them
    for output in change.outputs:
        if output.loop_context is None:
            ops.append(("set", ("root_step_outputs", output.key), output.value))
            continue
        # only what changed: a new iteration's map, the output's key (never the whole history)
        loop_id, iteration = output.loop_context
        path: journal.Path_ = ("loop_iteration_outputs", loop_id)
        if loop_id not in lengths:
            history = doc["loop_iteration_outputs"].get(loop_id)
            if history is None:
                ops.append(("set", path, []))
            lengths[loop_id] = len(history or [])
        while lengths[loop_id] <= iteration:  # padded with empty maps
            ops.append(("push", path, {}))
            lengths[loop_id] += 1
        ops.append(("set", (*path, iteration, output.key), output.value))
    if change.mobctl:
        if isinstance(doc.get("mobctl"), dict):
            ops += [("set", ("mobctl", key), value) for key, value in change.mobctl.items()]
        else:
            ops.append(("set", ("mobctl",), {"snapshot_format": SNAPSHOT_FORMAT, **change.mobctl}))
    return ops


def _key(document: Snapshot) -> str:
    """A ledger entry as canonical JSON with sorted keys: equal keys, equal JSON values."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _step_entry_fits(ledger: list[Snapshot], entry: StepLedgerEntry, *, if_absent: bool) -> bool:
    """Whether ``entry`` is appended to ``ledger`` (False: present, for an if-absent entry)."""
    if entry.agent_identity != FLOW_SYSTEM_MEMBER:
        raise InternalStoreError(f"step ledger entries belong to {FLOW_SYSTEM_MEMBER}")
    same_step = [e for e in ledger if e["step_id"] == entry.step_id]
    if if_absent and any(
        e["agent_identity"] == entry.agent_identity and e["status"] == entry.status
        for e in same_step
    ):
        return False
    if entry.status in TERMINAL_LEDGER and any(e["status"] in TERMINAL_LEDGER for e in same_step):
        raise InternalStoreError(f"step '{entry.step_id}' already has a terminal ledger entry")
    return True


def _append_step(doc: Snapshot, entry: StepLedgerEntry, *, if_absent: bool) -> bool:
    if not _step_entry_fits(doc["step_ledger"], entry, if_absent=if_absent):
        return False
    doc["step_ledger"].append(entry.document())
    return True


def _check_failure(entry: FailureLedgerEntry) -> None:
    if entry.error_report is not None or entry.error is not None:
        raise InternalStoreError("failure ledger entries may not carry error metadata")
