"""The directory backend's event log: one JSONL file per mob (store contract §3, §8.4-§8.6).

Every line carries a chained SHA-256 (``hash``) that is also its checksum; a batch of two or
more events carries ``batch: [first_cursor, count]`` on each line and is written with one
``os.write``. Readers never lock and surface only lines that verify and whole batches; the next
writer quarantines a torn tail.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Literal

from pydantic import ValidationError

from mobctl.canonical import canonical, parse_json
from mobctl.clock import now, parse_timestamp, timestamp
from mobctl.errors import (
    InternalStoreError,
    RecordTooLarge,
    StaleCursor,
    WriteFailed,
)
from mobctl.store.contract import ChainRecord, ChainView, LogVerification, Seal
from mobctl.store.defects import unreadable
from mobctl.store.directory.files import StoreFiles
from mobctl.store.directory.locks import Locks
from mobctl.store.directory.log_lines import (
    CURSOR,
    EVENT_TYPE,
    HASH_TAIL,
    Meta,
    PendingPrune,
    Record,
    file_identity,
    find_line,
    framing_problem,
    kind_problem,
    last_line_end,
    line_before,
    parse_line,
    prunable,
    read_forward,
    read_line,
    starts_batch,
    stored_hash,
    stored_line,
)
from mobctl.store.hashing import line_hash
from mobctl.store.models import (
    TERMINAL_EVENT_TYPES,
    Checkpoint,
    MobEvent,
    NewMobEvent,
    Roster,
)

# a roster read that folded this many events rewrites the index, so reads stay cheap
ROSTER_REFRESH_AFTER = 256


_APPENDED_KEPT = 256  # a step appends a few events; a roster is checked every step


class DirectoryEventStore:
    """``EventStore`` for one mob, on ``mobs/<mob_id>/events.jsonl``."""

    def __init__(
        self,
        files: StoreFiles,
        mob_dir: Path,
        mob_id: str,
        locks: Locks,
        *,
        max_record_bytes: int,
        prepare: Callable[[], object] = lambda: None,
    ) -> None:
        self.files = files
        self.mob_id = mob_id
        self.dir = mob_dir
        self.log = mob_dir / "events.jsonl"
        self.location = str(self.log)
        self.meta_path = mob_dir / "events.meta.json"
        self.roster_path = mob_dir / "roster.json"
        self.checkpoints_path = mob_dir / "checkpoints.jsonl"
        self.quarantine = mob_dir / "quarantine"
        self.locks = locks
        self.lock_name = f"mobs/{mob_id}/events"
        self.max_record_bytes = max_record_bytes
        self._prepare = prepare  # creates store.json on the first write
        # (inode, size, mtime) of the log after our own last append, with its last record:
        # while the file is unchanged the next append need not re-read its tail
        self._tail_cache: tuple[tuple[int, int, int], Record | None] | None = None
        # the events this handle appended since the log last changed under it, with their
        # chain hashes: a roster brought up to date folds them without reading the file
        self._appended: list[tuple[MobEvent, str]] = []
        self.appended_hash = ""

    # --- meta -------------------------------------------------------------------------------

    def read_meta(self) -> Meta:
        try:
            return Meta.model_validate(parse_json(self.files.read(self.meta_path)))
        except FileNotFoundError:
            return Meta()
        except ValueError as exc:
            hint = "`mobctl store check` reports it; restore it from a backup"
            what = "an event log's meta record"
            raise unreadable(self.meta_path, what, exc, Meta, hint=hint) from None

    def _write_meta(self, meta: Meta) -> None:
        document = {
            "next_cursor": meta.next_cursor,
            "genesis": meta.genesis,
            "chain_links": meta.chain_links,
        }
        if meta.pruned_before is not None:
            document["pruned_before"] = meta.pruned_before
        if meta.pending_prune is not None:
            document["pending_prune"] = meta.pending_prune.model_dump()
        self.files.write_atomic(self.meta_path, canonical(document).encode())

    # --- validation -------------------------------------------------------------------------

    def _check(self, event: NewMobEvent) -> None:
        if event.mob_id != self.mob_id:
            raise InternalStoreError(
                f"event for mob '{event.mob_id}' appended to the log of '{self.mob_id}'"
            )
        if not EVENT_TYPE.fullmatch(event.kind.type):
            raise InternalStoreError(f"invalid event type '{event.kind.type}'")
        problem = kind_problem({"type": event.kind.type, **(event.kind.model_extra or {})})
        if problem is not None:  # readers would refuse the line
            raise InternalStoreError(f"invalid '{event.kind.type}' event: {problem}")
        if event.timestamp is not None:
            try:
                parse_timestamp(event.timestamp)
            except ValueError:
                raise InternalStoreError("an event's timestamp must be RFC 3339") from None
        extra = event.kind.model_extra or {}
        if event.kind.type == "step_target_failed" and (
            extra.get("error_report") is not None or extra.get("error") is not None
        ):
            raise InternalStoreError("step_target_failed events may not carry error metadata")

    # --- appends ----------------------------------------------------------------------------

    def append(self, event: NewMobEvent) -> MobEvent:
        return self.append_batch([event])[0]

    def append_batch(self, events: list[NewMobEvent]) -> list[MobEvent]:
        if not events:
            return []
        for event in events:
            self._check(event)
        self._prepare()
        with self.locks.hold(self.lock_name):
            return self._append_locked(events)

    def _append_locked(self, events: list[NewMobEvent]) -> list[MobEvent]:
        meta = self.read_meta()
        cached = self._cached_tail()
        last = self._repair_tail(meta) if cached is False else cached
        first = max(meta.next_cursor, (last.cursor + 1) if last else 1)
        prev = last.hash if last else meta.genesis
        if first > (last.cursor + 1 if last else 1) and str(first) not in meta.chain_links:
            # the first record after a prune of the newest records: link it across the hole,
            # as a prune links every survivor after a hole, so a checkpoint of a pruned record
            # reads as pruned, not as records deleted
            meta.chain_links[str(first)] = prev
            self._write_meta(meta)
        lines: list[bytes] = []
        stored: list[MobEvent] = []
        hashes: list[str] = []
        now = timestamp()
        now_json = canonical(now)
        mob_json = canonical(self.mob_id)
        batch_json = f',"batch":[{first},{len(events)}]' if len(events) > 1 else ""
        for index, event in enumerate(events):
            cursor = first + index
            moment = now if event.timestamp is None else event.timestamp
            moment_json = now_json if event.timestamp is None else canonical(moment)
            body = self._body(event, cursor, moment_json, mob_json, batch_json)
            prev = line_hash(meta.predecessor(cursor, prev), body)
            line = body[:-1] + b',"hash":"' + prev.encode() + b'"}\n'
            self._check_size(event, len(line))
            lines.append(line)
            hashes.append(prev)
            stored.append(
                MobEvent(cursor=cursor, timestamp=moment, mob_id=event.mob_id, kind=event.kind)
            )
        try:
            info: os.stat_result | None = self.files.append(self.log, b"".join(lines), create=False)
        except FileNotFoundError:  # the first append creates the log with a durable name
            self.files.write_atomic(self.log, b"".join(lines))
            info = None
        batch = (first, len(events)) if len(events) > 1 else None
        self.appended_hash = prev  # the chain hash of the last record this process appended
        tail = Record(-1, lines[-1], first + len(events) - 1, prev, batch, {})
        identity = file_identity(info) if info is not None else self._file_identity()
        self._tail_cache = None if identity is None else (identity, tail)
        if cached is False or (self._appended and self._appended[-1][0].cursor + 1 != first):
            self._appended = []  # someone else's records (or a gap) may sit before ours
        self._appended = [*self._appended, *zip(stored, hashes, strict=True)][-_APPENDED_KEPT:]
        return stored

    @staticmethod
    def _body(
        event: NewMobEvent, cursor: int, moment_json: str, mob_json: str, batch_json: str
    ) -> bytes:
        """The canonical line without its hash, key by key (cursor, timestamp, mob_id, kind
        [, batch])."""
        return (
            f'{{"cursor":{cursor},"timestamp":{moment_json},"mob_id":{mob_json},'
            f'"kind":{canonical(event.kind.model_dump(mode="json"))}{batch_json}}}'
        ).encode()

    def _check_size(self, event: NewMobEvent, size: int) -> None:
        if size > self.max_record_bytes:
            raise RecordTooLarge(
                f"event '{event.kind.type}' is {size} bytes; the limit is "
                f"{self.max_record_bytes} bytes",
                hint="keep outputs small, or raise MOBCTL_MAX_RECORD_BYTES",
            )

    def check_fits(self, event: NewMobEvent) -> None:
        """``RecordTooLarge`` now if ``event`` would be refused by ``append`` (its line with
        the largest cursor and timestamp it could get), so a caller can refuse before it
        writes anything else."""
        self._check(event)
        moment = canonical(event.timestamp or timestamp())
        body = self._body(event, 2**63, moment, canonical(self.mob_id), "")
        self._check_size(event, len(body) + HASH_TAIL)

    def _file_identity(self) -> tuple[int, int, int] | None:
        try:
            return file_identity(self.files.stat(self.log))
        except FileNotFoundError:
            return None

    def _cached_tail(self) -> Record | Literal[False] | None:
        """The last record if the log is exactly as we left it, else False."""
        if self._tail_cache is None:
            return False
        identity, record = self._tail_cache
        return record if self._file_identity() == identity else False

    def _append_if(
        self, event: NewMobEvent, exists: Callable[[Record], bool], after: int = 0
    ) -> MobEvent | None:
        """Append ``event`` unless a record after cursor ``after`` is its twin (the caller
        knows nothing of it is earlier: a run's events all come after its first cursor)."""
        self._check(event)
        self._prepare()
        with self.locks.hold(self.lock_name):
            if any(exists(record) for record in self._records(after)):
                return None
            return self._append_locked([event])[0]

    def append_terminal_event_if_absent(
        self, event: NewMobEvent, *, after: int = 0
    ) -> MobEvent | None:
        if event.kind.type not in TERMINAL_EVENT_TYPES:
            raise InternalStoreError(f"'{event.kind.type}' is not a terminal flow event")
        run_id, flow_id = event.kind.field("run_id"), event.kind.field("flow_id")

        def exists(record: Record) -> bool:
            kind = record.data["kind"]
            return (
                kind.get("type") in TERMINAL_EVENT_TYPES
                and kind.get("run_id") == run_id
                and kind.get("flow_id") == flow_id
                and record.data["mob_id"] == event.mob_id
            )

        return self._append_if(event, exists, after)

    def append_step_failed_event_if_absent(
        self, event: NewMobEvent, *, after: int = 0
    ) -> MobEvent | None:
        if event.kind.type != "step_failed":
            raise InternalStoreError(f"'{event.kind.type}' is not step_failed")
        run_id, step_id = event.kind.field("run_id"), event.kind.field("step_id")
        reason = event.kind.field("reason")

        def exists(record: Record) -> bool:
            kind = record.data["kind"]
            if not (
                kind.get("type") == "step_failed"
                and kind.get("run_id") == run_id
                and kind.get("step_id") == step_id
            ):
                return False
            if kind.get("reason") != reason:
                raise InternalStoreError(
                    f"step_failed event conflict for run {run_id}, step {step_id}"
                )
            return True

        return self._append_if(event, exists, after)

    def find_terminal_event(self, run_id: str, *, after: int = 0) -> MobEvent | None:
        """The terminal event of a run, looking only after cursor ``after``."""
        for record in self._records(after):
            kind = record.data["kind"]
            if kind.get("type") in TERMINAL_EVENT_TYPES and kind.get("run_id") == run_id:
                return record.event()
        return None

    def terminal_events(self) -> dict[str, MobEvent]:
        """Every run's first terminal event, by run id (one pass over the log)."""
        found: dict[str, MobEvent] = {}
        for record in self._records():
            kind = record.data["kind"]
            run_id = kind.get("run_id")
            if kind.get("type") in TERMINAL_EVENT_TYPES and isinstance(run_id, str):
                found.setdefault(run_id, record.event())
        return found

    def append_if_absent(self, event: NewMobEvent, key: tuple[str, ...]) -> MobEvent | None:
        wanted = {name: event.kind.field(name) for name in key}

        def exists(record: Record) -> bool:
            kind = record.data["kind"]
            return kind.get("type") == event.kind.type and all(
                kind.get(name) == value for name, value in wanted.items()
            )

        return self._append_if(event, exists)

    # --- the roster (store contract §4.9) -----------------------------------------------------

    def roster(self, since: Roster | None = None) -> Roster:
        """The active members now, without a lock and without replaying the log: the roster
        index (``roster.json``, the members folded up to a cursor whose hash it records)
        brought up to date with the events after that cursor. ``since``: a roster this process
        read before, brought up to date from where it stopped (the engine's per-step check).
        An index that is missing, unreadable or no longer matches the log (cleared, replaced)
        is rebuilt from the whole log."""
        base = since.model_copy(deep=True) if since is not None else self._roster_index()
        current, folded = self._roster_after(base)
        if since is None and folded >= ROSTER_REFRESH_AFTER:
            self._write_roster_index(current)  # best effort: a cache, never the only copy
        return current

    def append_member_event(self, build: Callable[[Roster], NewMobEvent | None]) -> MobEvent | None:
        """A CAS on the roster: under the log's lock, append the event that ``build`` makes of
        the current roster (``None``: nothing to append), then rewrite the roster index. So
        concurrent first runs provision one member per role, not several."""
        self._prepare()
        with self.locks.hold(self.lock_name):
            current, folded = self._roster_after(self._roster_index())
            event = build(current)
            if event is None:
                if folded >= ROSTER_REFRESH_AFTER:
                    self._write_roster_index(current)
                return None
            self._check(event)
            stored = self._append_locked([event])[0]
            current.fold(stored, stored.cursor, self.appended_hash)
            self._write_roster_index(current)
            return stored

    def roster_index_problem(self) -> str | None:
        """Whether ``roster.json`` claims members that the log, folded up to the cursor the
        index names, does not give (a damaged or planted index): a dispatch would use them.
        An index that is missing or behind is no problem (it is rebuilt or brought up to date
        on use)."""
        if not self.files.exists(self.roster_path):
            return None
        index = self._roster_index()
        if index.cursor == 0:
            return "roster.json is not a roster index"
        rebuilt = Roster()
        for record in self._records():
            if record.cursor > index.cursor:
                break
            rebuilt.fold(record.event(), record.cursor, record.hash)
        if (rebuilt.cursor, rebuilt.hash) != (index.cursor, index.hash):
            return None  # names no record of this log: never used as it is
        if (rebuilt.active, rebuilt.last_generation) != (index.active, index.last_generation):
            return f"roster.json disagrees with the log's member events up to cursor {index.cursor}"
        return None

    def rebuild_roster_index(self) -> None:
        """``roster.json`` anew from the whole log."""
        with self.locks.hold(self.lock_name):
            self._write_roster_index(self._roster_after(Roster())[0])

    def _roster_index(self) -> Roster:
        try:
            return Roster.model_validate(parse_json(self.files.read(self.roster_path)))
        except (OSError, ValueError):  # missing or unreadable: rebuilt from the log
            return Roster()

    def _roster_after(self, base: Roster) -> tuple[Roster, int]:
        """``base`` with every event after its cursor folded in, and how many that was; the
        whole log when ``base`` does not match it."""
        folded = self._fold_appended(base)
        if folded is not None:
            return base, folded
        records = self._records(max(base.cursor - 1, 0))
        if base.cursor > 0:
            first = next(records, None)
            if first is None or (first.cursor, first.hash) != (base.cursor, base.hash):
                base, records = Roster(), self._records()
        folded = 0
        for record in records:
            base.fold(record.event(), record.cursor, record.hash)
            folded += 1
        return base, folded

    def _fold_appended(self, base: Roster) -> int | None:
        """Fold into ``base`` the events this handle appended after its cursor, when the log
        is exactly as the last append left it and ``base`` names one of them; how many that
        was (None: the file must be read). A run checks the roster before every step, and
        reading the log's tail each time was a fifth of a step's cost."""
        if base.cursor == 0 or not self._appended or self._cached_tail() is False:
            return None
        index = base.cursor - self._appended[0][0].cursor  # their cursors follow each other
        if not 0 <= index < len(self._appended) or self._appended[index][1] != base.hash:
            return None
        later = self._appended[index + 1 :]
        for record, record_hash in later:
            base.fold(record, record.cursor, record_hash)
        return len(later)

    def _write_roster_index(self, roster: Roster) -> None:
        with contextlib.suppress(WriteFailed):
            self.files.write_atomic(self.roster_path, canonical(roster.document()).encode())

    # --- tail repair ------------------------------------------------------------------------

    def repair_tail(self) -> Record | None:
        """Quarantine a torn tail now (the caller holds this log's lock)."""
        return self._repair_tail(self.read_meta())

    def _repair_tail(self, meta: Meta) -> Record | None:
        """The last valid record, after quarantining any torn tail (caller holds the lock)."""
        try:
            handle = self.files.reader(self.log)
        except FileNotFoundError:
            return None
        with handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                return None
            last, cut = self._valid_end(handle, size, meta)
            if cut < size:
                handle.seek(cut)
                torn = handle.read()
        if cut < size:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            self.files.write_atomic(self.quarantine / f"events-{stamp}-{cut}.bin", torn)
            self.files.truncate(self.log, cut)
        return last

    def _valid_end(self, handle: BinaryIO, size: int, meta: Meta) -> tuple[Record | None, int]:
        """(last valid record that ends a complete batch, offset where the valid log ends).

        Walks back from the end: a line without its newline, a line that does not verify and
        the lines of an unfinished batch are all torn tail.
        """
        cut = last_line_end(handle, size)
        while cut > 0:
            offset, raw = line_before(handle, cut)
            previous = stored_hash(line_before(handle, offset)[1]) if offset > 0 else None
            record = parse_line(raw, offset, meta, previous)
            if record is None:
                cut = offset
            elif record.batch and record.cursor != record.batch[0] + record.batch[1] - 1:
                cut = find_line(handle, offset, record.batch[0])
            else:
                return record, cut
        return None, 0

    # --- reading ----------------------------------------------------------------------------

    def _records(self, after: int = 0) -> Iterator[Record]:
        """Verified records with cursor > ``after``, whole batches only, in order."""
        try:
            handle = self.files.reader(self.log)
        except FileNotFoundError:
            return
        with handle:
            # the file first, then the meta: prune writes the meta before it replaces the log,
            # and a new meta is valid for the old file, an old meta not for the new one
            meta = self.read_meta()
            size = os.fstat(handle.fileno()).st_size
            start = find_line(handle, size, after + 1) if after > 0 else 0
            previous = None
            if start > 0:
                previous = stored_hash(line_before(handle, start)[1])
            handle.seek(start)
            yield from read_forward(self.log, handle, start, size, meta, previous, after)

    def poll(self, after_cursor: int, limit: int) -> list[MobEvent]:
        if after_cursor < 0 or limit < 0:
            raise ValueError("after_cursor and limit must not be negative")
        if limit == 0:
            return []
        found = []
        for record in self._records(after_cursor):
            found.append(record.event())
            if len(found) >= limit:
                break
        return found

    def replay_all(self) -> list[MobEvent]:
        return [record.event() for record in self._records()]

    def tail(self, count: int) -> list[MobEvent]:
        """The last ``count`` events (seeks; does not scan the log)."""
        latest = self.latest_cursor()
        if latest == 0 or count <= 0:
            return []
        with self.files.reader(self.log) as handle:
            meta = self.read_meta()  # after opening the log (see _records)
            size = os.fstat(handle.fileno()).st_size
            start = size
            kept = 0
            while start > 0 and kept < count + 1:
                offset, _ = line_before(handle, start)
                start = offset
                kept += 1
            previous = stored_hash(line_before(handle, start)[1]) if start > 0 else None
            handle.seek(start)
            records = list(read_forward(self.log, handle, start, size, meta, previous, 0))
        return [r.event() for r in records[-count:]]

    def latest_cursor(self) -> int:
        try:
            handle = self.files.reader(self.log)
        except FileNotFoundError:
            return 0
        with handle:
            size = os.fstat(handle.fileno()).st_size
            last, _ = self._valid_end(handle, size, self.read_meta())
        return last.cursor if last else 0

    # --- prune, clear -----------------------------------------------------------------------

    def prune(self, older_than: datetime) -> int:
        self._prepare()
        with self.locks.hold(self.lock_name):
            meta = self.read_meta()
            last = self._repair_tail(meta)
            records = list(self._records())
            doomed = prunable(records, older_than)
            if not doomed:
                return 0
            survivors = [r for r in records if r.cursor not in doomed]
            # a survivor keeps a chain link to its original predecessor wherever a hole
            # precedes it: the link bridges the chain and marks the hole as pruned, not
            # tampered with (signatures.py)
            links: dict[str, str] = {}
            original_previous: str | None = None
            new_previous: str | None = None
            new_cursor = 0
            for record in records:
                predecessor = meta.predecessor(record.cursor, original_previous)
                original_previous = record.hash
                if record.cursor in doomed:
                    continue
                hole = record.cursor != new_cursor + 1
                if hole or (new_previous or meta.genesis) != predecessor:
                    links[str(record.cursor)] = predecessor
                new_previous, new_cursor = record.hash, record.cursor
            high = max(meta.next_cursor, (last.cursor + 1) if last else 1)
            # the horizon says which terminal events may be gone on purpose (repair leaves those
            # alone): never later than now, or a future --older-than would turn repair off
            horizon = timestamp(min(older_than, now()))
            # written first (the links are right for the old and the new file), with the new
            # horizon pending: it counts only once the log without those records is in place
            self._write_meta(
                Meta(
                    next_cursor=high,
                    genesis=meta.genesis,
                    chain_links=links,
                    pruned_before=self._horizon(meta),
                    pending_prune=PendingPrune(before=horizon, first=min(doomed)),
                )
            )
            self.files.write_atomic(self.log, b"".join(r.raw for r in survivors))
            return len(doomed)

    def pruned_before(self) -> datetime | None:
        """The horizon of the newest prune that took effect: events older than it may be gone
        on purpose."""
        horizon = self._horizon(self.read_meta())
        return None if horizon is None else parse_timestamp(horizon)

    def _horizon(self, meta: Meta) -> str | None:
        """``pruned_before``, moved to a pending prune's horizon if that prune took effect."""
        if meta.pending_prune is None:
            return meta.pruned_before
        pending = meta.pending_prune
        survivor = next(self._records(pending.first - 1), None)
        if survivor is not None and survivor.cursor == pending.first:
            return meta.pruned_before  # that prune never replaced the log
        return max(filter(None, [meta.pruned_before, pending.before]))

    def clear(self) -> None:
        self._prepare()
        with self.locks.hold(self.lock_name):
            self.files.write_atomic(self.log, b"")
            self._write_meta(Meta())

    # --- following --------------------------------------------------------------------------

    def follow(
        self,
        after_cursor: int,
        *,
        poll_interval: float = 0.2,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[MobEvent]:
        latest = self.latest_cursor()
        if after_cursor > latest:
            raise StaleCursor(after_cursor, latest)
        last = after_cursor
        seen: tuple[int, int, int] | None = None
        while stop is None or not stop():
            # mtime too: a torn tail repaired by an append of the same length keeps the size
            identity = self._file_identity() or (-1, 0, 0)
            if identity != seen:
                seen = identity
                if self.read_meta().next_cursor <= last and self.latest_cursor() < last:
                    raise StaleCursor(last, self.latest_cursor())
                for record in self._records(last):
                    last = record.cursor
                    yield record.event()
                    if stop is not None and stop():
                        return
            time.sleep(poll_interval)

    # --- the chain as stored, and signed checkpoints (§8.4, §8.8) ----------------------------

    def chain(self) -> ChainView:
        """Every line of the log as it is on disk: readable records in file order (whatever
        their cursors), the lines that do not parse (a torn tail left out), and the meta."""
        try:
            data = self.files.read(self.log)
        except FileNotFoundError:
            data = b""
        meta = self.read_meta()  # after reading the log (see _records)
        view = ChainView(
            genesis=meta.genesis, chain_links=dict(meta.chain_links), next_cursor=meta.next_cursor
        )
        offset = highest = 0
        for raw in data.splitlines(keepends=True):
            stored = stored_line(raw)
            if stored is None:
                match = CURSOR.match(raw)
                view.unreadable.setdefault(int(match.group(1)) if match else highest + 1, offset)
            else:
                highest = max(highest, stored[0])
                view.records.append(ChainRecord(offset, *stored))
            offset += len(raw)
        last = max((record.position for record in view.records), default=-1)
        view.unreadable = {c: at for c, at in view.unreadable.items() if at < last}  # torn tail
        return view

    def checkpoints(self) -> tuple[list[tuple[int, Checkpoint]], list[int]]:
        """(line number, checkpoint) of every complete line of ``checkpoints.jsonl`` that
        parses; the numbers of the complete lines that do not. A torn last line is skipped."""
        try:
            data = self.files.read(self.checkpoints_path)
        except FileNotFoundError:
            return [], []
        found: list[tuple[int, Checkpoint]] = []
        malformed: list[int] = []
        for number, line in enumerate(data.split(b"\n")[:-1], 1):
            try:
                found.append((number, Checkpoint.model_validate_json(line)))
            except ValidationError:
                malformed.append(number)
        return found, malformed

    def seal(self, sign: Seal) -> tuple[Checkpoint, bool] | None:
        """Under the log's lock (the head cannot move while it is signed): the checkpoint
        ``sign`` makes of the head, appended unless it is the last one; None for an empty
        log."""
        self._prepare()
        with self.locks.hold(self.lock_name):
            head = self.repair_tail()
            if head is None:
                return None
            last = self._last_checkpoint()
            checkpoint = sign(head.cursor, head.hash, last)
            if checkpoint is last:
                return checkpoint, False
            line = (canonical(checkpoint.document()) + "\n").encode()
            self.files.append(self.checkpoints_path, line)
            return checkpoint, True

    def _last_checkpoint(self) -> Checkpoint | None:
        """The last complete checkpoint line, after cutting off a torn one (holding the lock)."""
        path = self.checkpoints_path
        try:
            handle = self.files.reader(path)
        except FileNotFoundError:
            return None
        with handle:
            size = os.fstat(handle.fileno()).st_size
            window = 4096
            while True:
                start = max(0, size - window)
                handle.seek(start)
                chunk = handle.read(size - start)
                end = chunk.rfind(b"\n")  # the last complete line ends here
                begin = chunk.rfind(b"\n", 0, end) if end != -1 else -1  # and starts after this
                if start == 0 or begin != -1:
                    break
                window *= 4
        complete = start + end + 1
        if complete < size:  # a torn last line: never reported as written
            self.files.truncate(path, complete)
        if end == -1:
            return None
        try:
            return Checkpoint.model_validate_json(chunk[begin + 1 : end])
        except ValidationError:
            return None  # verification reports the malformed line; this seal just signs again

    # --- whole-log verification (store check, events verify) --------------------------------

    def verify(self) -> list[str]:
        """Every problem of the log, each with its byte offset; [] when it verifies."""
        return [problem.message for problem in self.verify_log().problems]

    def verify_log(self) -> LogVerification:
        """Checks every line: its hash (chained checksum), cursor order and batch framing."""
        result = LogVerification()
        try:
            data = self.files.read(self.log)
        except FileNotFoundError:
            return result
        meta = self.read_meta()  # after reading the log (see _records)
        offset = 0
        previous: str | None = None
        batch: tuple[int, int] | None = None  # the batch still open: (first cursor, count)
        batch_start = expected = 0  # its first byte; the cursor its next record must have
        for raw in data.splitlines(keepends=True):
            if not raw.endswith(b"\n"):
                result.add(offset, f"torn tail at byte {offset} ({len(raw)} bytes without newline)")
                break
            record = read_line(raw, offset, meta, previous)
            if not isinstance(record, Record):
                result.add(offset, f"record at byte {offset} {record}")
                break
            if record.cursor <= result.last_cursor:
                result.add(offset, f"cursor {record.cursor} at byte {offset} does not increase")
            framing = framing_problem(record, batch, expected)
            if framing:
                result.add(offset, f"{framing} at byte {offset}")
                batch = None  # judge what follows afresh
            if batch is None and record.batch and starts_batch(record):
                batch, batch_start = record.batch, offset
            if batch is not None:
                expected = record.cursor + 1
                if record.cursor >= batch[0] + batch[1] - 1:
                    batch = None
            result.records += 1
            result.last_cursor, previous = record.cursor, record.hash
            offset += len(raw)
        if not result.problems and batch is not None:
            result.add(batch_start, f"incomplete batch at the end of the log (byte {batch_start})")
        return result
