"""The directory backend's runtime metadata: supervisor authority and binding overlays.

Files (store contract §7, §8.8): ``mobs/<mob>/metadata/supervisor.json`` (mode 0600, refused
when group- or world-readable) and ``metadata/overlays/overlays.json`` (0600).
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mobctl.errors import InsecureSecretFile, InternalStoreError, StoreCorrupt
from mobctl.ids import require_slug
from mobctl.store.authority import MAX_EPOCH, SUPPORTED_PROTOCOLS, peer_id, public_key
from mobctl.store.canonical import canonical, json_equal
from mobctl.store.files import write_atomic
from mobctl.store.locks import Locks
from mobctl.store.models import ExternalBindingOverlayRecord, SupervisorAuthorityRecord

SECRET_MODE = 0o600


def validate_authority(record: SupervisorAuthorityRecord) -> None:
    """Fail closed on anything inconsistent (``InternalStoreError``; nothing is written)."""

    def check_key(seed: list[int], claimed: str, what: str) -> None:
        if len(seed) != 32 or any(not 0 <= b <= 255 for b in seed):
            raise InternalStoreError(f"{what} secret key must be 32 bytes")
        if peer_id(public_key(bytes(seed))) != claimed:
            raise InternalStoreError(f"{what} public_peer_id does not match its key")

    check_key(record.secret_key, record.public_peer_id, "supervisor")
    if not 0 <= record.epoch <= MAX_EPOCH:
        raise InternalStoreError(f"supervisor epoch {record.epoch} is out of range")
    if record.protocol_version not in SUPPORTED_PROTOCOLS:
        raise InternalStoreError(f"unsupported protocol version {record.protocol_version}")
    pending = record.pending_rotation
    if pending is not None:
        check_key(pending.secret_key, pending.public_peer_id, "pending rotation")
        if pending.epoch != record.epoch + 1:
            raise InternalStoreError("a pending rotation must be exactly one epoch ahead")
        if pending.public_peer_id == record.public_peer_id:
            raise InternalStoreError("a pending rotation must use a new key")
        if pending.protocol_version not in SUPPORTED_PROTOCOLS:
            raise InternalStoreError(f"unsupported protocol version {pending.protocol_version}")


def read_secret_file(path: Path) -> Any:
    """JSON of a secret file, refused when group or others may read it."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InsecureSecretFile(
            f"{path} is readable by other users (mode {stat.S_IMODE(info.st_mode):o})",
            hint=f"chmod 600 {path}",
        )
    try:
        return json.loads(path.read_bytes())
    except ValueError as exc:
        raise StoreCorrupt(f"{path} is not valid JSON: {exc}") from exc


class DirectoryMetadataStore:
    def __init__(self, root: Path, locks: Locks, *, prepare: Callable[[], object]) -> None:
        self.root = root
        self.locks = locks
        self._prepare = prepare

    def _dir(self, mob_id: str) -> Path:
        return self.root / "mobs" / require_slug(mob_id, "mob id") / "metadata"

    def _lock(self, mob_id: str) -> str:
        return f"mobs/{mob_id}/metadata"

    # --- supervisor authority ---------------------------------------------------------------

    def load_supervisor_authority(self, mob_id: str) -> SupervisorAuthorityRecord | None:
        path = self._dir(mob_id) / "supervisor.json"
        data = read_secret_file(path)
        if data is None:
            return None
        try:
            return SupervisorAuthorityRecord.model_validate(data)
        except ValidationError as exc:
            raise StoreCorrupt(f"{path} is not a supervisor authority record: {exc}") from exc

    def _save_authority(self, mob_id: str, record: SupervisorAuthorityRecord) -> None:
        validate_authority(record)
        path = self._dir(mob_id) / "supervisor.json"
        write_atomic(path, canonical(record.document()).encode(), mode=SECRET_MODE)

    def put_supervisor_authority(self, mob_id: str, record: SupervisorAuthorityRecord) -> None:
        validate_authority(record)
        self._prepare()
        with self.locks.hold(self._lock(mob_id)):
            self._save_authority(mob_id, record)

    def put_supervisor_authority_if_absent(
        self, mob_id: str, record: SupervisorAuthorityRecord
    ) -> bool:
        validate_authority(record)
        self._prepare()
        with self.locks.hold(self._lock(mob_id)):
            if self.load_supervisor_authority(mob_id) is not None:
                return False
            self._save_authority(mob_id, record)
            return True

    def compare_and_put_supervisor_authority(
        self,
        mob_id: str,
        expected: SupervisorAuthorityRecord,
        record: SupervisorAuthorityRecord,
    ) -> bool:
        validate_authority(record)
        self._prepare()
        with self.locks.hold(self._lock(mob_id)):
            current = self.load_supervisor_authority(mob_id)
            if current is None or not json_equal(current.document(), expected.document()):
                return False
            self._save_authority(mob_id, record)
            return True

    def delete_supervisor_authority(
        self, mob_id: str, expected: SupervisorAuthorityRecord | None = None
    ) -> bool:
        path = self._dir(mob_id) / "supervisor.json"
        self._prepare()
        with self.locks.hold(self._lock(mob_id)):
            current = self.load_supervisor_authority(mob_id)
            if current is None:
                return False
            if expected is not None and not json_equal(current.document(), expected.document()):
                return False
            path.unlink()
            return True

    # --- external binding overlays ----------------------------------------------------------

    def _overlays_path(self, mob_id: str) -> Path:
        return self._dir(mob_id) / "overlays" / "overlays.json"

    def list_external_binding_overlays(self, mob_id: str) -> list[ExternalBindingOverlayRecord]:
        data = read_secret_file(self._overlays_path(mob_id)) or []
        try:
            records = [ExternalBindingOverlayRecord.model_validate(item) for item in data]
        except (ValidationError, TypeError) as exc:
            raise StoreCorrupt(f"{self._overlays_path(mob_id)} is malformed: {exc}") from exc
        return sorted(records, key=lambda r: (r.agent_identity, r.generation))

    def _save_overlays(self, mob_id: str, records: list[ExternalBindingOverlayRecord]) -> None:
        ordered = sorted(records, key=lambda r: (r.agent_identity, r.generation))
        data = canonical([r.document() for r in ordered]).encode()
        write_atomic(self._overlays_path(mob_id), data, mode=SECRET_MODE)

    def _edit_overlays(
        self,
        mob_id: str,
        edit: Callable[
            [list[ExternalBindingOverlayRecord]], list[ExternalBindingOverlayRecord] | None
        ],
    ) -> bool:
        self._prepare()
        with self.locks.hold(self._lock(mob_id)):
            updated = edit(self.list_external_binding_overlays(mob_id))
            if updated is None:
                return False
            self._save_overlays(mob_id, updated)
            return True

    def put_external_binding_overlay_if_absent(
        self, mob_id: str, record: ExternalBindingOverlayRecord
    ) -> bool:
        key = (record.agent_identity, record.generation)
        return self._edit_overlays(
            mob_id,
            lambda current: (
                None
                if any((r.agent_identity, r.generation) == key for r in current)
                else [*current, record]
            ),
        )

    def upsert_external_binding_overlay(
        self, mob_id: str, record: ExternalBindingOverlayRecord
    ) -> None:
        key = (record.agent_identity, record.generation)
        self._edit_overlays(
            mob_id,
            lambda current: (
                [r for r in current if (r.agent_identity, r.generation) != key] + [record]
            ),
        )

    def delete_external_binding_overlay(
        self, mob_id: str, agent_identity: str, generation: int
    ) -> None:
        key = (agent_identity, generation)
        self._edit_overlays(
            mob_id, lambda current: [r for r in current if (r.agent_identity, r.generation) != key]
        )

    def delete_external_binding_overlays(self, mob_id: str) -> None:
        self._edit_overlays(mob_id, lambda current: [])
