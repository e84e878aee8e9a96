"""The directory backend's runtime metadata: supervisor authority and binding overlays.

Files (store contract §7, §8.8), all under ``mobs/<mob>/metadata/``:

- ``supervisor.json`` (mode 0600, refused when group- or world-accessible): the record of
  §7.1 as canonical JSON. Without a passphrase each ``secret_key`` is Meerkat's list of 32
  integers; with one it is an encrypted envelope (format: :mod:`mobctl.store.encryption`).
  Every other field stays in the clear, so the public facts of an encrypted record are
  readable without the passphrase. The API always returns and compares decrypted records.
- ``supervisor-history.jsonl`` (the user's umask; nothing secret): one canonical JSON line
  ``{"epoch", "public_peer_id", "public_key": "ed25519:<base64>", "activated_at"}`` (plus
  the endorsement fields of :class:`~mobctl.store.models.SupervisorHistoryEntry`) per
  authority key, oldest first, so that checkpoints signed by a rotated-out key stay
  verifiable. Rewritten whole (atomically) under the metadata lock.
- ``overlays/overlays.json`` (0600).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from mobctl.canonical import canonical, json_equal, parse_json
from mobctl.errors import InsecureSecretFile, InternalStoreError, StoreCorrupt
from mobctl.ids import require_slug
from mobctl.store.authority import (
    MAX_EPOCH,
    SUPPORTED_PROTOCOLS,
    parse_display_key,
    peer_id,
    public_key,
)
from mobctl.store.defects import shape_defect, unreadable
from mobctl.store.directory.files import StoreFiles
from mobctl.store.directory.locks import Locks
from mobctl.store.encryption import SecretBox, is_envelope, open_envelope
from mobctl.store.models import (
    ExternalBindingOverlayRecord,
    SupervisorAuthorityRecord,
    SupervisorHistoryEntry,
)

SECRET_MODE = 0o600
_OVERLAYS = TypeAdapter(list[ExternalBindingOverlayRecord])


def validate_authority(record: SupervisorAuthorityRecord) -> None:
    """Fail closed on anything inconsistent (``InternalStoreError``; nothing is written).

    Messages name the field and never its value: a record read back may be hand-edited, and
    its values include the secret seed.
    """

    def check_key(seed: list[int], claimed: str, prefix: str) -> None:
        if len(seed) != 32 or any(not 0 <= b <= 255 for b in seed):
            raise InternalStoreError(f"{prefix}secret_key: must be 32 bytes (0-255 each)")
        if peer_id(public_key(bytes(seed))) != claimed:
            raise InternalStoreError(f"{prefix}public_peer_id: does not match {prefix}secret_key")

    check_key(record.secret_key, record.public_peer_id, "")
    if not 0 <= record.epoch <= MAX_EPOCH:
        raise InternalStoreError("epoch: out of range (0 to 2**64-1)")
    if record.protocol_version not in SUPPORTED_PROTOCOLS:
        raise InternalStoreError(f"protocol_version: not one of {_PROTOCOLS}")
    pending = record.pending_rotation
    if pending is not None:
        check_key(pending.secret_key, pending.public_peer_id, "pending_rotation.")
        if pending.epoch != record.epoch + 1 or pending.epoch > MAX_EPOCH:
            raise InternalStoreError("pending_rotation.epoch: must be exactly one epoch ahead")
        if pending.public_peer_id == record.public_peer_id:
            raise InternalStoreError("pending_rotation.public_peer_id: must be a new key")
        if pending.protocol_version not in SUPPORTED_PROTOCOLS:
            raise InternalStoreError(f"pending_rotation.protocol_version: not one of {_PROTOCOLS}")


_PROTOCOLS = ", ".join(map(str, sorted(SUPPORTED_PROTOCOLS)))


def validate_history_entry(entry: SupervisorHistoryEntry) -> None:
    """What every history entry must hold, on write and on read (``InternalStoreError``)."""
    raw = parse_display_key(entry.public_key)
    if raw is None or peer_id(raw) != entry.public_peer_id:
        raise InternalStoreError("public_key: not an ed25519 key that matches public_peer_id")
    if not 0 <= entry.epoch <= MAX_EPOCH:
        raise InternalStoreError("epoch: out of range (0 to 2**64-1)")


def read_secret_file(files: StoreFiles, path: Path) -> Any:
    """JSON of a secret file, refused when group or others may read it."""
    try:
        with files.reader(path) as handle:
            info = os.fstat(handle.fileno())
            if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise InsecureSecretFile(
                    f"{path} is readable by other users (mode {stat.S_IMODE(info.st_mode):o})",
                    hint=f"chmod 600 {path}",
                )
            data = handle.read()
    except FileNotFoundError:
        return None
    try:
        return parse_json(data)
    except ValueError as exc:
        raise unreadable(path, "a JSON document", exc) from None


class DirectoryMetadataStore:
    """``RuntimeMetadataStore`` of the directory backend, plus the authority history.

    ``passphrase`` (the CLI passes ``MOBCTL_KEY_PASSPHRASE``) encrypts every secret this
    object writes and decrypts the ones it reads; plaintext secrets stay readable with it, so
    the next write of a record encrypts it.
    """

    def __init__(
        self,
        files: StoreFiles,
        locks: Locks,
        *,
        prepare: Callable[[], object],
        passphrase: str | None = None,
    ) -> None:
        self.files = files
        self.root = files.root
        self.locks = locks
        self._prepare = prepare
        self._box = SecretBox(passphrase) if passphrase else None

    def _dir(self, mob_id: str) -> Path:
        return self.root / "mobs" / require_slug(mob_id, "mob id") / "metadata"

    def _lock(self, mob_id: str) -> str:
        return f"mobs/{mob_id}/metadata"

    # --- supervisor authority ---------------------------------------------------------------

    def load_supervisor_authority(self, mob_id: str) -> SupervisorAuthorityRecord | None:
        path = self._dir(mob_id) / "supervisor.json"
        data = read_secret_file(self.files, path)
        if data is None:
            return None
        if isinstance(data, dict):
            data = self._decrypted(mob_id, data)
        try:
            record = SupervisorAuthorityRecord.model_validate(data)
            validate_authority(record)
        except ValidationError as exc:
            raise unreadable(
                path, "a supervisor authority record", exc, SupervisorAuthorityRecord
            ) from None
        except InternalStoreError as exc:  # the record's own facts disagree (an edit by hand)
            raise StoreCorrupt(f"{path} is not a valid authority: {exc.message}") from None
        return record

    def supervisor_secret_at_rest(self, mob_id: str) -> str | None:
        """How the stored secret is kept: ``"plaintext"``, the envelope scheme, or None."""
        data = read_secret_file(self.files, self._dir(mob_id) / "supervisor.json")
        if not isinstance(data, dict):
            return None
        secret = data.get("secret_key")
        return str(secret.get("enc")) if isinstance(secret, dict) else "plaintext"

    def _decrypted(self, mob_id: str, data: dict[str, Any]) -> dict[str, Any]:
        document = dict(data)
        what = f"the supervisor secret of mob '{mob_id}'"
        if is_envelope(document.get("secret_key")):
            seed = open_envelope(
                self._box,
                document["secret_key"],
                f"{mob_id}:{document.get('public_peer_id')}",
                what,
            )
            document["secret_key"] = list(seed)
        pending = document.get("pending_rotation")
        if isinstance(pending, dict) and is_envelope(pending.get("secret_key")):
            associated = f"{mob_id}:{pending.get('public_peer_id')}"
            what = f"the pending supervisor secret of mob '{mob_id}'"
            seed = open_envelope(self._box, pending["secret_key"], associated, what)
            document["pending_rotation"] = {**pending, "secret_key": list(seed)}
        return document

    def _encrypted(self, mob_id: str, record: SupervisorAuthorityRecord) -> dict[str, Any]:
        document = record.document()
        if self._box is None:
            return document
        document["secret_key"] = self._box.seal(
            bytes(record.secret_key), f"{mob_id}:{record.public_peer_id}"
        )
        pending = record.pending_rotation
        if pending is not None:
            document["pending_rotation"]["secret_key"] = self._box.seal(
                bytes(pending.secret_key), f"{mob_id}:{pending.public_peer_id}"
            )
        return document

    def _save_authority(self, mob_id: str, record: SupervisorAuthorityRecord) -> None:
        validate_authority(record)
        path = self._dir(mob_id) / "supervisor.json"
        document = self._encrypted(mob_id, record)
        self.files.write_atomic(path, canonical(document).encode(), mode=SECRET_MODE)

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
            # any record, even one this process cannot decrypt, is "present"
            if read_secret_file(self.files, self._dir(mob_id) / "supervisor.json") is not None:
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
            self.files.remove(path)
            return True

    # --- authority history (§8.8) -----------------------------------------------------------

    def _history_path(self, mob_id: str) -> Path:
        return self._dir(mob_id) / "supervisor-history.jsonl"

    def load_supervisor_history(self, mob_id: str) -> list[SupervisorHistoryEntry]:
        """Every authority that became active, oldest first ([] when none)."""
        path = self._history_path(mob_id)
        try:
            text = self.files.read(path)
        except FileNotFoundError:
            return []
        entries = []
        for number, line in enumerate(text.splitlines(), 1):
            where = f"{path} line {number} is not an authority history entry"
            try:
                entry = SupervisorHistoryEntry.model_validate_json(line)
                validate_history_entry(entry)
            except ValidationError as exc:
                problem = shape_defect(exc, SupervisorHistoryEntry)
                raise StoreCorrupt(f"{where}: {problem}") from None
            except InternalStoreError as exc:  # its facts disagree (an edit by hand)
                raise StoreCorrupt(f"{where}: {exc.message}") from None
            entries.append(entry)
        return entries

    def record_supervisor_activation(self, mob_id: str, entry: SupervisorHistoryEntry) -> bool:
        """Append ``entry`` unless one with its epoch and peer id is there; True if appended."""
        validate_history_entry(entry)
        self._prepare()
        with self.locks.hold(self._lock(mob_id)):
            entries = self.load_supervisor_history(mob_id)
            key = (entry.epoch, entry.public_peer_id)
            if any((e.epoch, e.public_peer_id) == key for e in entries):
                return False
            lines = [canonical(e.document()) + "\n" for e in [*entries, entry]]
            self.files.write_atomic(self._history_path(mob_id), "".join(lines).encode())
            return True

    # --- external binding overlays ----------------------------------------------------------

    def _overlays_path(self, mob_id: str) -> Path:
        return self._dir(mob_id) / "overlays" / "overlays.json"

    def list_external_binding_overlays(self, mob_id: str) -> list[ExternalBindingOverlayRecord]:
        path = self._overlays_path(mob_id)
        try:
            records = _OVERLAYS.validate_python(read_secret_file(self.files, path) or [])
        except ValidationError as exc:  # never the values: they hold bootstrap tokens
            raise unreadable(
                path, "a list of binding overlays", exc, ExternalBindingOverlayRecord
            ) from None
        return sorted(records, key=lambda r: (r.agent_identity, r.generation))

    def _save_overlays(self, mob_id: str, records: list[ExternalBindingOverlayRecord]) -> None:
        ordered = sorted(records, key=lambda r: (r.agent_identity, r.generation))
        data = canonical([r.document() for r in ordered]).encode()
        self.files.write_atomic(self._overlays_path(mob_id), data, mode=SECRET_MODE)

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
