"""The directory backend's run store: one JSON snapshot per run plus its change journal
(store contract §4, §8.7), and the run index.

``mutate_run`` is the one write path: under the run's lock, read the current document, compare
every expected component and plan the change (``store.changes``, shared by every backend),
append it to the journal as one line. Every other operation of the contract is built on it
(``store.run_ops``), so each CAS, however many parts it has, is all-or-nothing.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, JsonValue, ValidationError

from mobctl.canonical import canonical, parse_json
from mobctl.clock import parse_timestamp, timestamp
from mobctl.errors import (
    InternalStoreError,
    NotFound,
    RecordTooLarge,
    StoreCorrupt,
    StoreFormatTooNew,
    WriteFailed,
)
from mobctl.ids import is_run_id
from mobctl.store.changes import Op, RunExpectation, RunMutation, RunView, holds, matches, plan
from mobctl.store.changes import apply as apply_ops
from mobctl.store.defects import unreadable
from mobctl.store.directory import journal
from mobctl.store.directory.eventlog import DirectoryEventStore
from mobctl.store.directory.files import StoreFiles
from mobctl.store.directory.locks import Locks
from mobctl.store.directory.run_index import RunIndex
from mobctl.store.models import (
    RUN_SCHEMA_VERSION,
    SNAPSHOT_FORMAT,
    TERMINAL_STATUSES,
    MobEvent,
    MobRun,
    RunIndexEntry,
    timed_out,
)
from mobctl.store.run_ops import RunOperations

Snapshot = dict[str, Any]
Plan = Callable[[RunView], list[Op] | None]  # None: a lost CAS; must not mutate
FOLD_AT_LEAST = 64 * 1024  # fold the journal into the base once it is this big and ...
# ... bigger than the base: reads stay linear in the snapshot, folds are rare (geometric)


class _SnapshotFormat(BaseModel):
    snapshot_format: int = 1
    journal_seq: int = 0


class _SnapshotHead(BaseModel):
    """What is read of a base snapshot before its journal applies (``MobRun`` checks the
    rest when the run is asked for)."""

    mobctl: _SnapshotFormat | None = None


class _Loaded(RunView):
    """A snapshot as this process last read it, and how far into the journal that was."""

    def __init__(
        self, base_id: tuple[int, int, int], base_size: int, doc: Snapshot, seq: int
    ) -> None:
        super().__init__(doc)
        self.base_id = base_id
        self.base_size = base_size
        self.seq = seq
        self.offset = 0  # byte offset of the journal read so far


class DirectoryRunStore(RunOperations):
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
        self.index = RunIndex(files, locks, mob_dir, mob_id)
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
            raise unreadable(path, "a run snapshot", exc, MobRun) from None
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
        return _Loaded(base_id, len(data), document, seq)

    def _read(self, run_id: str) -> Snapshot | None:
        """The current document; shared with the cache, so callers must not change it."""
        loaded = self._load(run_id)
        return None if loaded is None else loaded.doc

    def get_run(self, run_id: str) -> MobRun | None:
        document = self._read(run_id)
        if document is None:
            return None
        path = self.path(run_id)
        try:
            run = MobRun.model_validate(document)
        except ValidationError as exc:
            raise unreadable(path, "a run snapshot", exc, MobRun) from None
        missing = _unwritten(document)
        if missing is not None:
            raise StoreCorrupt(f"{path} is not a run snapshot: {missing}: Field required")
        # a copy under another name, or a run of another mob: not this file's run (it would be
        # listed twice, found under a name it does not have, repaired into the wrong log)
        if run.run_id != run_id:
            raise _misfiled(path, "run_id: not the run id of its file name")
        if run.mob_id != self.mob_id:
            raise _misfiled(path, "mob_id: not the mob whose directory holds it")
        return run

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

    # --- the run index (store contract §4.9) ------------------------------------------------

    def match_runs(self, prefix: str) -> list[str]:
        """The ids of the mob's runs that start with ``prefix`` (file names: no snapshot is
        read)."""
        return sorted(
            stem
            for stem in self.files.stems(self.dir, ".json")
            if is_run_id(stem) and stem.startswith(prefix)
        )

    def newest_runs(self) -> Iterator[RunIndexEntry] | None:
        """Every run, newest first, as the index knows it (``None``: there is no index yet,
        see :meth:`rebuild_index`). Read from the end of the index: taking a few costs a few."""
        if not self.index.present():
            return None
        return self.index.newest()

    def unsettled_runs(self) -> list[str]:
        """The runs not known to have their terminal event in the log (the ones a repair looks
        at); the index is rebuilt first when it is missing."""
        live = self.index.unsettled()
        if live is None:
            if not self.files.exists(self.dir):
                return []  # no run yet: nothing to index
            self.rebuild_index()
            live = self.index.unsettled() or []
        return live

    def settle(self, run_id: str, event: MobEvent | None) -> None:
        run = self.get_run(run_id)
        if run is None or not run.terminal:
            return
        self.index.settled(
            RunIndexEntry(run_id=run_id, completed_at=run.completed_at, **_settlement(run, event))
        )

    def forget(self, run_id: str) -> None:
        """Drop an index entry whose run does not exist (created in the index, then a crash)."""
        self.index.forget(run_id)

    def rebuild_index(self) -> None:
        """The run index anew from the snapshots and one pass over the log: a run is settled
        when it is terminal and its terminal event is in the log. A run indexed but whose
        snapshot is not written yet (a writer between the two) keeps its entries."""
        self._prepare()
        created, unsettled = self._derived_index()
        known = {entry.run_id for entry in created}
        pending = [r for r in self.index.unsettled() or [] if r not in known]
        early = [e for e in self.index.newest() if e.run_id in pending and e.created_at]
        self.index.rebuild(created + early[::-1], unsettled + [e.run_id for e in early])

    def index_problems(self) -> list[str]:
        """Where the run index disagrees with the snapshots and the log (a damaged or planted
        index could hide a run from `runs list` and from repair, or bound a search wrongly).
        A missing index is no problem: it is rebuilt on first use."""
        if not self.index.present():
            return []
        created, unsettled = self._derived_index()
        indexed = {entry.run_id: entry for entry in self.index.newest()}
        live = set(self.index.unsettled() or [])
        problems = []
        for entry in created:
            found = indexed.pop(entry.run_id, None)
            if found is None:
                problems.append(f"run {entry.run_id} is missing from the index")
            elif entry.run_id in unsettled and entry.run_id not in live:
                problems.append(f"run {entry.run_id} is unsettled but not listed as live")
            elif (found.flow_id, found.first_cursor) != (entry.flow_id, entry.first_cursor) or (
                found.settled and found.status != entry.status
            ):
                problems.append(f"run {entry.run_id} is indexed with other facts than its own")
        problems += [f"run {r} is indexed but has no snapshot" for r in indexed if r not in live]
        return problems

    def _derived_index(self) -> tuple[list[RunIndexEntry], list[str]]:
        """What the run index should hold: every run (oldest first, settled ones with their
        settlement) and the runs not settled. A terminal run is settled when its terminal
        event is in the log, or when it ended before a prune's horizon (the event may be gone
        on purpose, as repair judges it)."""
        runs = self.list_runs()
        logged = self.events.terminal_events()
        horizon = self.events.pruned_before()
        created, unsettled = [], []
        for run in runs:
            entry = _created(run)
            event = logged.get(run.run_id)
            pruned = bool(
                horizon and run.completed_at and parse_timestamp(run.completed_at) < horizon
            )
            if run.terminal and (event is not None or pruned):
                settlement = _settlement(run, event) | {"completed_at": run.completed_at}
                entry = entry.model_copy(update=settlement)
            else:
                unsettled.append(run.run_id)
            created.append(entry)
        return created, unsettled

    # --- the one write path -----------------------------------------------------------------

    def _commit(
        self, run_id: str, plan: Plan, *, fence: str | None, missing_raises: bool
    ) -> Snapshot | None:
        """Plan the change against the current snapshot under the run's lock and append it to
        the journal as one line; the new snapshot, or None if the CAS was lost."""
        self.path(run_id)  # a run id, before it names a lock
        self._prepare()
        with self.locks.hold(f"mobs/{self.mob_id}/runs/{run_id}"), self._mutex:
            loaded = self._load(run_id, writer=True)
            if loaded is None:
                if missing_raises:
                    raise NotFound(f"run {run_id} does not exist in mob '{self.mob_id}'")
                return None
            doc = loaded.doc
            if fence is not None and not holds(doc, fence):
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
                apply_ops(doc, parse_json(line)["ops"])
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

    # --- create and mutate -------------------------------------------------------------------

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
        data = canonical(run.document()).encode("utf-8")
        if len(data) > self.max_record_bytes:
            raise RecordTooLarge(
                f"run snapshot would be {len(data)} bytes; the limit is {self.max_record_bytes}",
                hint="activation params are kept in the run snapshot: keep them small",
            )
        self._prepare()
        if not self.index.present():
            self.rebuild_index()
        self.index.created(_created(run))  # first: the index never hides a run
        with self.locks.hold(f"mobs/{self.mob_id}/runs/{run.run_id}"):
            if self.files.exists(path):
                raise InternalStoreError(f"run already exists: {run.run_id}")
            with contextlib.suppress(FileNotFoundError):
                self.files.remove(self.journal_path(run.run_id))  # a leftover of an unreadable run
            self.files.write_atomic(path, data)

    def mutate_run(
        self,
        run_id: str,
        expect: RunExpectation,
        apply: RunMutation,
        *,
        fence: str | None = None,
        missing_raises: bool = True,
    ) -> bool:
        def planned(view: RunView) -> list[Op] | None:
            return plan(view, apply) if matches(view, expect) else None

        return self._commit(run_id, planned, fence=fence, missing_raises=missing_raises) is not None


# what every writer of a snapshot writes, and a change reads as it is (``store.changes``): a
# document without one reads as a run (a model fills in the default) but cannot be changed
_WRITTEN = (
    *("status", "flow_state", "frames", "loops", "step_ledger", "failure_ledger"),
    *("loop_iteration_ledger", "root_step_outputs", "loop_iteration_outputs"),
)


def _unwritten(document: Snapshot) -> str | None:
    """The first field that a valid run ``document`` leaves out but every writer writes."""
    missing = next((name for name in _WRITTEN if name not in document), None)
    if missing is not None:
        return missing
    for index, entry in enumerate(document["step_ledger"]):
        if "agent_identity" not in entry:
            return f"step_ledger.{index}.agent_identity"
    return None


def _misfiled(path: Path, why: str) -> StoreCorrupt:
    return StoreCorrupt(
        f"{path} is not a snapshot of this run: {why}",
        hint="`mobctl store check` reports it; restore the file from a backup",
    )


def _settlement(run: MobRun, event: MobEvent | None) -> dict[str, Any]:
    """What the index keeps of a terminal run's end: its status, cause, terminal cursor, and
    whether it timed out."""
    kind = event.kind.model_dump(mode="json") if event is not None else None
    cause = kind.get("cause") if kind else None
    return {
        "status": run.status,
        "cause": cause if isinstance(cause, str) else None,
        "terminal_cursor": event.cursor if event is not None else None,
        "timed_out": True if timed_out(kind) else None,
    }


def _created(run: MobRun) -> RunIndexEntry:
    return RunIndexEntry(
        run_id=run.run_id,
        flow_id=run.flow_id,
        created_at=run.created_at,
        first_cursor=run.mobctl.first_cursor if run.mobctl else None,
    )
