"""The directory backend's spec store: ``specs/<mob_id>.json`` (store contract §5)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from pydantic import JsonValue

from mobctl.canonical import canonical, parse_json
from mobctl.clock import timestamp
from mobctl.errors import SpecRevisionConflict, StoreError
from mobctl.ids import is_slug, require_slug
from mobctl.store.defects import unreadable
from mobctl.store.directory.files import StoreFiles
from mobctl.store.directory.locks import Locks
from mobctl.store.models import SpecRecord, SpecResources, SpecSource, definition_digest


def _mode(record: SpecRecord) -> int | None:
    """0600 for a record holding copies of the definition's files (schemas, path skills: they
    may be private), else None (the umask's mode).

    The mode follows the revision being written, not the ones before it: the file is replaced
    whole, so once a revision without copies is written no copy is left in it to protect."""
    return 0o600 if record.resources.schemas or record.resources.skills else None


class DirectorySpecStore:
    def __init__(self, files: StoreFiles, locks: Locks, *, prepare: Callable[[], object]) -> None:
        self.files = files
        self.dir = files.root / "specs"
        self.locks = locks
        self._prepare = prepare

    def _path(self, mob_id: str) -> Path:
        return self.dir / f"{require_slug(mob_id, 'mob id')}.json"

    def get_spec(self, mob_id: str) -> SpecRecord | None:
        path = self._path(mob_id)
        try:
            return SpecRecord.model_validate(parse_json(self.files.read(path)))
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise unreadable(path, "a spec record", exc, SpecRecord) from None

    def list_specs(self) -> list[str]:
        """The mob ids with a spec; a file whose name is no mob id is no spec (``store check``
        reports it)."""
        return [name for name in self.files.stems(self.dir, ".json") if is_slug(name)]

    def put_spec(
        self,
        mob_id: str,
        definition: dict[str, JsonValue],
        revision: int | None,
        *,
        source: SpecSource | None = None,
        resources: SpecResources | None = None,
        then: Callable[[int], object] | None = None,
    ) -> int:
        """Store the next revision (store contract §5). ``then(revision)`` runs once it is
        written, still under the spec's lock (``register`` appends the revision's event
        there, so concurrent registrations log their events in revision order); when it
        fails, the revision before is put back, so the spec and the log do not disagree."""
        path = self._path(mob_id)
        self._prepare()
        with self.locking(mob_id):
            current = self.get_spec(mob_id)
            actual = current.revision if current else 0
            if revision is not None and revision != actual:
                raise SpecRevisionConflict(mob_id, revision, actual)
            now = timestamp()
            record = SpecRecord(
                mob_id=mob_id,
                revision=actual + 1,
                digest=definition_digest(definition),
                registered_at=current.registered_at if current else now,
                updated_at=now,
                definition=definition,
                source=source,
                resources=resources or SpecResources(),
            )
            data = canonical(record.document()).encode("utf-8")
            self.files.write_atomic(path, data, mode=_mode(record))
            if then is not None:
                try:
                    then(record.revision)
                except BaseException:
                    self._put_back(path, current)
                    raise
            return record.revision

    def locking(self, mob_id: str) -> contextlib.AbstractContextManager[object]:
        """The spec's lock: held by a registration while it writes the spec and its event."""
        return self.locks.hold(f"specs/{mob_id}")

    def _put_back(self, path: Path, previous: SpecRecord | None) -> None:
        """Best effort: if this fails too, `store check` finds the revision without its event
        and `--repair` logs it."""
        with contextlib.suppress(StoreError):
            if previous is None:
                self.files.remove(path)
            else:
                data = canonical(previous.document()).encode("utf-8")
                self.files.write_atomic(path, data, mode=_mode(previous))

    def delete_spec(self, mob_id: str, revision: int | None) -> bool:
        path = self._path(mob_id)
        self._prepare()
        with self.locking(mob_id):
            current = self.get_spec(mob_id)
            if current is None or (revision is not None and revision != current.revision):
                return False
            self.files.remove(path)
            return True
