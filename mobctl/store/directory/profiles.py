"""The directory backend's realm profile store: ``profiles/<name>.json`` (store contract §6)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import JsonValue

from mobctl.canonical import canonical, parse_json
from mobctl.clock import timestamp
from mobctl.errors import CasConflict, NotFound
from mobctl.ids import is_slug, require_slug
from mobctl.store.defects import unreadable
from mobctl.store.directory.files import StoreFiles
from mobctl.store.directory.locks import Locks
from mobctl.store.models import StoredRealmProfile

Profile = dict[str, JsonValue]


class DirectoryRealmProfileStore:
    def __init__(self, files: StoreFiles, locks: Locks, *, prepare: Callable[[], object]) -> None:
        self.files = files
        self.dir = files.root / "profiles"
        self.locks = locks
        self._prepare = prepare

    def _path(self, name: str) -> Path:
        return self.dir / f"{require_slug(name, 'realm profile name')}.json"

    def get(self, name: str) -> StoredRealmProfile | None:
        path = self._path(name)
        try:
            return StoredRealmProfile.model_validate(parse_json(self.files.read(path)))
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise unreadable(path, "a realm profile", exc, StoredRealmProfile) from None

    def list(self) -> list[StoredRealmProfile]:
        """Every profile; a file whose name is no profile name is none (``store check`` reports
        it)."""
        names = [name for name in self.files.stems(self.dir, ".json") if is_slug(name)]
        return [p for p in (self.get(n) for n in names) if p is not None]

    def _save(self, record: StoredRealmProfile) -> None:
        self.files.write_atomic(self._path(record.name), canonical(record.document()).encode())

    def create(self, name: str, profile: Profile) -> StoredRealmProfile:
        self._path(name)
        self._prepare()
        with self.locks.hold(f"profiles/{name}"):
            if self.get(name) is not None:
                raise CasConflict(f"realm profile already exists: {name}")
            now = timestamp()
            record = StoredRealmProfile(
                name=name, profile=profile, revision=1, created_at=now, updated_at=now
            )
            self._save(record)
            return record

    def _current(self, name: str, expected_revision: int) -> StoredRealmProfile:
        current = self.get(name)
        if current is None:
            raise NotFound(f"realm profile '{name}' does not exist")
        if current.revision != expected_revision:
            raise CasConflict(
                f"realm profile '{name}' is at revision {current.revision}, "
                f"not {expected_revision}",
                hint=f"re-read it and pass --expect-revision {current.revision}",
            )
        return current

    def update(self, name: str, profile: Profile, expected_revision: int) -> StoredRealmProfile:
        self._path(name)
        self._prepare()
        with self.locks.hold(f"profiles/{name}"):
            current = self._current(name, expected_revision)
            updated = current.model_copy(
                update={
                    "profile": profile,
                    "revision": current.revision + 1,
                    "updated_at": max(timestamp(), current.updated_at),
                }
            )
            self._save(updated)
            return updated

    def delete(self, name: str, expected_revision: int) -> StoredRealmProfile:
        path = self._path(name)
        self._prepare()
        with self.locks.hold(f"profiles/{name}"):
            current = self._current(name, expected_revision)
            self.files.remove(path)
            return current
