"""The directory backend's run index (store contract §4.9): commands that list, find or repair
runs read it instead of every snapshot.

- ``mobs/<mob>/runs.index.jsonl``: one line when a run is created (``run_id``, ``flow_id``,
  ``created_at``, ``first_cursor``) and one when it is settled (``run_id``, ``status``,
  ``cause``, ``completed_at``, ``terminal_cursor``); appended with one write and a data sync.
  Read from the end, it gives the newest runs at a cost that does not grow with history.
- ``mobs/<mob>/runs.live.json``: the runs not settled yet (created, not known to have their
  terminal event in the log): the only runs a repair has to look at.

A run is written to the index before its snapshot is created, and settled after its terminal
event is in the log, so the index never hides a run that needs repair: an entry without a
snapshot (a crash in between) is dropped by the next repair. Both files are derived data: when
they are missing (a store of an older mobctl) or unreadable, they are rebuilt from the
snapshots and the log (``rebuild``), by the first writer or by ``store check --repair``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ValidationError

from mobctl.canonical import canonical, parse_json
from mobctl.store.directory.files import StoreFiles
from mobctl.store.directory.locks import Locks
from mobctl.store.models import RunIndexEntry

_CHUNK = 64 * 1024


class _Live(BaseModel):
    runs: list[str]


class RunIndex:
    def __init__(self, files: StoreFiles, locks: Locks, mob_dir: Path, mob_id: str) -> None:
        self.files = files
        self.locks = locks
        self.log = mob_dir / "runs.index.jsonl"
        self.live_path = mob_dir / "runs.live.json"
        self.lock_name = f"mobs/{mob_id}/run-index"

    # --- writing (under the index's lock) ---------------------------------------------------

    def created(self, entry: RunIndexEntry) -> None:
        with self.locks.hold(self.lock_name):
            self._append(entry)
            live = self._live()
            if live is not None and entry.run_id not in live:
                self._write_live([*live, entry.run_id])

    def settled(self, entry: RunIndexEntry) -> None:
        with self.locks.hold(self.lock_name):
            self._append(entry)
            live = self._live()
            if live is not None and entry.run_id in live:
                self._write_live([r for r in live if r != entry.run_id])

    def forget(self, run_id: str) -> None:
        """A live entry with no run behind it (a crash between the index and the snapshot)."""
        with self.locks.hold(self.lock_name):
            live = self._live()
            if live is not None and run_id in live:
                self._write_live([r for r in live if r != run_id])

    def rebuild(self, created: list[RunIndexEntry], unsettled: list[str]) -> None:
        """Both files anew: the runs ``created`` (oldest first, settled ones with their
        settlement), and the runs not settled."""
        with self.locks.hold(self.lock_name):
            lines = b"".join(_line(entry) for entry in created)
            self.files.write_atomic(self.log, lines)
            self._write_live(unsettled)

    def _append(self, entry: RunIndexEntry) -> None:
        try:
            self.files.append(self.log, _line(entry), create=False)
        except FileNotFoundError:  # the first line creates the file with a durable name
            self.files.write_atomic(self.log, _line(entry))

    def _write_live(self, runs: list[str]) -> None:
        self.files.write_atomic(self.live_path, canonical({"runs": sorted(runs)}).encode())

    # --- reading (no lock) ------------------------------------------------------------------

    def present(self) -> bool:
        """Whether both files are there (else the caller rebuilds them, or reads snapshots)."""
        return self.files.exists(self.log) and self._live() is not None

    def unsettled(self) -> list[str] | None:
        """The runs a repair has to look at; None when the index is missing or unreadable."""
        return self._live() if self.files.exists(self.log) else None

    def _live(self) -> list[str] | None:
        try:
            return _Live.model_validate(parse_json(self.files.read(self.live_path))).runs
        except FileNotFoundError:
            return None
        except (ValueError, ValidationError):
            return None  # derived data: rebuilt, never the only copy of a fact

    def newest(self) -> Iterator[RunIndexEntry]:
        """The runs, newest created first, each with its settlement when it has one."""
        settlements: dict[str, RunIndexEntry] = {}
        for entry in self._backwards():
            if entry.created_at is None:  # a settlement: read before its run's creation
                settlements.setdefault(entry.run_id, entry)
                continue
            settled = settlements.pop(entry.run_id, None)
            if settled is not None:
                entry = entry.model_copy(
                    update={
                        "status": settled.status,
                        "cause": settled.cause,
                        "completed_at": settled.completed_at,
                        "terminal_cursor": settled.terminal_cursor,
                        "timed_out": settled.timed_out,
                    }
                )
            yield entry

    def _backwards(self) -> Iterator[RunIndexEntry]:
        """The complete lines from the last to the first (lines that do not parse skipped)."""
        try:
            handle = self.files.reader(self.log)
        except FileNotFoundError:
            return
        with handle:
            end = os.fstat(handle.fileno()).st_size
            carry = b""
            while end > 0:
                start = max(0, end - _CHUNK)
                handle.seek(start)
                chunk = handle.read(end - start) + carry
                lines = chunk.split(b"\n")
                carry = lines[0] if start > 0 else b""
                complete = lines[1:] if start > 0 else lines
                for raw in reversed(complete):
                    entry = _entry(raw)
                    if entry is not None:
                        yield entry
                end = start


def _line(entry: RunIndexEntry) -> bytes:
    return (canonical(entry.document()) + "\n").encode()


def _entry(raw: bytes) -> RunIndexEntry | None:
    if not raw.strip():
        return None
    try:
        return RunIndexEntry.model_validate(parse_json(raw))
    except (ValueError, ValidationError):
        return None
