"""The directory store: everything under one folder (store contract §8.1)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mobctl import __version__
from mobctl.canonical import canonical, parse_json
from mobctl.clock import timestamp
from mobctl.errors import ReadFailed, StoreCorrupt, StoreFormatTooNew
from mobctl.ids import is_slug, require_slug
from mobctl.store.contract import CheckReport, Store
from mobctl.store.defects import unreadable
from mobctl.store.directory.eventlog import DirectoryEventStore
from mobctl.store.directory.files import StoreFiles
from mobctl.store.directory.locks import DEFAULT_TIMEOUT, Locks, WaitCallback
from mobctl.store.directory.metadata import DirectoryMetadataStore
from mobctl.store.directory.profiles import DirectoryRealmProfileStore
from mobctl.store.directory.runs import DirectoryRunStore
from mobctl.store.directory.specs import DirectorySpecStore
from mobctl.store.directory.transcripts import DirectoryTranscriptStore

FORMAT = "mobctl-store"
SCHEMA_VERSION = 1
DEFAULT_MAX_RECORD_BYTES = 1 << 20


class DirectoryStore:
    """The store at ``root``: its sub-stores share the locks and the record cap.

    ``passphrase`` encrypts supervisor secrets at rest (see :mod:`mobctl.store.directory.metadata`);
    ``durable=False`` syncs nothing to the disk (a throwaway store: a ``mobctl test`` case's).
    """

    def __init__(
        self,
        root: Path,
        *,
        lock_timeout: float = DEFAULT_TIMEOUT,
        on_wait: WaitCallback | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        passphrase: str | None = None,
        durable: bool = True,
    ) -> None:
        self.root = root
        self.files = StoreFiles(root, durable=durable)
        self.max_record_bytes = max_record_bytes
        self.locks = Locks(self.files, timeout=lock_timeout, on_wait=on_wait)
        self._ready = False
        self._logs: dict[str, DirectoryEventStore] = {}
        self._runs: dict[str, DirectoryRunStore] = {}
        self.check_format()
        self.specs = DirectorySpecStore(self.files, self.locks, prepare=self.prepare)
        self.profiles = DirectoryRealmProfileStore(self.files, self.locks, prepare=self.prepare)
        self.metadata = DirectoryMetadataStore(
            self.files, self.locks, prepare=self.prepare, passphrase=passphrase
        )

    @property
    def location(self) -> str:
        return str(self.root)

    @property
    def marker(self) -> Path:
        return self.root / "store.json"

    def check_format(self) -> dict[str, object] | None:
        """The ``store.json`` document; refuses another format or a newer schema version."""
        try:
            kind = os.lstat(self.root).st_mode
        except OSError:
            kind = stat.S_IFDIR  # missing (created on the first write), or judged below
        if not (stat.S_ISDIR(kind) or stat.S_ISLNK(kind)):  # a link is refused as one below
            raise ReadFailed(
                f"cannot use {self.root} as a store: it is not a directory",
                hint="point --store or MOBCTL_STORE at a directory (created on the first write)",
            )
        try:
            document = parse_json(self.files.read(self.marker))
        except FileNotFoundError:
            return None
        except OSError as exc:  # not this user's to read, an I/O error
            raise ReadFailed(f"cannot read {self.marker}: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise unreadable(self.marker, "a store marker", exc) from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise StoreCorrupt(f"{self.root} is not a mobctl store (store.json has another format)")
        version = document.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise StoreCorrupt(
                f"{self.marker} is not a store marker: schema_version: Input should be a valid "
                "integer"
            )
        if version > SCHEMA_VERSION:
            raise StoreFormatTooNew(
                f"the store at {self.root} has schema_version {version}; this mobctl "
                f"{__version__} reads up to {SCHEMA_VERSION}",
                hint="upgrade mobctl; the store was left untouched",
            )
        self._ready = True
        return document

    def prepare(self) -> bool:
        """Create ``store.json`` before the first write (idempotent). True if created now."""
        if self._ready:
            return False
        with self.locks.hold("store"):
            if self.check_format() is not None:
                return False
            document = {
                "format": FORMAT,
                "schema_version": SCHEMA_VERSION,
                "created_at": timestamp(),
                "created_by": f"mobctl {__version__}",
            }
            self.files.write_atomic(self.marker, canonical(document).encode())
            self._ready = True
            return True

    def mob_dir(self, mob_id: str) -> Path:
        return self.root / "mobs" / require_slug(mob_id, "mob id")

    def events(self, mob_id: str) -> DirectoryEventStore:
        log = self._logs.get(mob_id)
        if log is None:
            log = self._logs[mob_id] = DirectoryEventStore(
                self.files,
                self.mob_dir(mob_id),
                mob_id,
                self.locks,
                max_record_bytes=self.max_record_bytes,
                prepare=self.prepare,
            )
        return log

    def runs(self, mob_id: str) -> DirectoryRunStore:
        """The mob's run store (one per mob: it caches what it read of each run)."""
        runs = self._runs.get(mob_id)
        if runs is None:
            runs = self._runs[mob_id] = DirectoryRunStore(
                self.files,
                self.mob_dir(mob_id),
                mob_id,
                self.locks,
                self.events(mob_id),
                max_record_bytes=self.max_record_bytes,
                prepare=self.prepare,
            )
        return runs

    def transcripts(self, mob_id: str) -> DirectoryTranscriptStore:
        """The mob's turn transcripts (``runs/<run_id>.turns.jsonl``)."""
        return DirectoryTranscriptStore(
            self.files,
            self.mob_dir(mob_id),
            max_record_bytes=self.max_record_bytes,
            prepare=self.prepare,
        )

    def check(self, *, repair: bool = False) -> CheckReport:
        from mobctl.store.directory.check import check_store

        return check_store(self, repair=repair)

    def mob_ids(self) -> list[str]:
        """Mobs with anything stored: a spec, events or runs."""
        return sorted({*self.specs.list_specs(), *self.mob_dirs()})

    def mob_dirs(self) -> list[str]:
        """The names in ``mobs/`` that are mob ids (a link too: using it is refused, naming
        it); any other is no mob's (``store check`` reports it)."""
        entries = self.files.entries(self.root / "mobs")
        return [
            entry.name
            for entry in entries
            if entry.kind in ("directory", "link") and is_slug(entry.name)
        ]


def _conforms(store: DirectoryStore) -> Store:
    """Static proof (mypy) that the directory backend implements the whole contract."""
    return store
