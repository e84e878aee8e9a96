"""Signed checkpoints of a mob's event log (store contract §8.8).

``mobs/<mob>/checkpoints.jsonl`` holds one canonical JSON line per checkpoint, oldest first::

    {"cursor": 42, "hash": "<64 hex>", "epoch": 0, "public_peer_id": "<uuid>",
     "public_key": "ed25519:<base64>", "signed_at": "2026-11-22T20:15:03.123456Z",
     "signature": "<base64, 64 bytes>"}

``hash`` is the event log's chain hash of the record at ``cursor`` (its ``hash`` member, which
commits to every record before it, §8.4); ``signature`` is the Ed25519 signature, by the
supervisor key of ``epoch``, of the UTF-8 bytes of
``"mobctl-checkpoint-v1\\n{mob_id}\\n{cursor}\\n{hash}"``. The prefix versions the format.

A checkpoint is written under the event log's lock, so the head it signs is durable and
cannot move while it is signed; the line is appended with one ``write`` and ``fsync``. A torn
last line (a crash mid-append) was never reported as written: readers skip it and the next
writer cuts it off. Sealing a head that the last checkpoint already covers with the same key
writes nothing. Checkpoints are written after every terminal run event
(:func:`checkpoint_if_authority`, called by the engine) and on demand (:func:`seal`).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from mobctl.canonical import canonical
from mobctl.clock import timestamp
from mobctl.errors import MobctlError, NotFound
from mobctl.store.authority import display_key, public_key, sign
from mobctl.store.files import StoreFiles
from mobctl.store.models import Checkpoint, SupervisorAuthorityRecord
from mobctl.store.supervisor import ensure_history, require_authority

if TYPE_CHECKING:
    from mobctl.store.contract import Store
    from mobctl.store.directory import DirectoryStore

MESSAGE_PREFIX = "mobctl-checkpoint-v1"
FILE_NAME = "checkpoints.jsonl"


@dataclass(frozen=True)
class Sealed:
    checkpoint: Checkpoint
    written: bool  # False when the last checkpoint already covered this head with this key


def checkpoint_message(mob_id: str, cursor: int, chain_hash: str) -> bytes:
    return f"{MESSAGE_PREFIX}\n{mob_id}\n{cursor}\n{chain_hash}".encode()


def checkpoints_path(store: DirectoryStore, mob_id: str) -> Path:
    return store.mob_dir(mob_id) / FILE_NAME


def seal(store: DirectoryStore, mob_id: str) -> Sealed:
    """Sign the event log's current head now. No authority, or an empty log: ``NotFound``."""
    sealed = _seal(store, mob_id, require_authority(store, mob_id))
    if sealed is None:
        raise NotFound(
            f"the event log of mob '{mob_id}' is empty: there is nothing to seal",
            hint="a checkpoint signs the latest event; seal again once the mob has events",
        )
    return sealed


def checkpoint_if_authority(store: Store, mob_id: str) -> Checkpoint | None:
    """Write a checkpoint when the mob has a supervisor authority; the checkpoint, or None.

    For the engine, after every terminal run event. None (nothing written) when the mob has
    no authority, the log is empty, or the backend keeps no checkpoints. Raises what reading
    the authority raises — notably ``PassphraseRequired`` / ``WrongPassphrase`` for an
    encrypted secret: the caller should report that as a warning, not fail the run.
    """
    from mobctl.store.directory import DirectoryStore

    if not isinstance(store, DirectoryStore):
        return None
    record = store.metadata.load_supervisor_authority(mob_id)
    if record is None:
        return None
    sealed = _seal(store, mob_id, record)
    return None if sealed is None else sealed.checkpoint


def sign_after_terminal(store: Store, mob_id: str) -> str | None:
    """:func:`checkpoint_if_authority` after terminal events were written: None, or a warning
    saying why the log stays unsigned. Never raises: a run or a cancel that has ended must not
    fail because its mob's authority cannot sign (no passphrase, a hand-edited record)."""
    try:
        checkpoint_if_authority(store, mob_id)
    except MobctlError as exc:
        return f"no checkpoint was signed: {exc.message}"
    except Exception as exc:  # the message could quote the record: only the kind of failure
        return f"no checkpoint was signed: the supervisor authority failed ({type(exc).__name__})"
    return None


def _seal(store: DirectoryStore, mob_id: str, record: SupervisorAuthorityRecord) -> Sealed | None:
    ensure_history(store, mob_id, record)  # before signing: the key must verify later
    events = store.events(mob_id)
    path = checkpoints_path(store, mob_id)
    store.prepare()
    with store.locks.hold(events.lock_name):
        head = events.repair_tail()
        if head is None:
            return None
        last = _last_checkpoint(store.files, path)
        if last is not None and last.epoch > record.epoch:
            # A rotation finished since ``record`` was read, and the new key signed already:
            # sign with the newest key, so the file's epochs never go back (which verification
            # reads as a rotated-out key at work). Its history entry predates its promotion.
            record = require_authority(store, mob_id)
        seed = bytes(record.secret_key)
        key = display_key(public_key(seed))
        if last is not None and (last.cursor, last.hash, last.epoch, last.public_key) == (
            head.cursor,
            head.hash,
            record.epoch,
            key,
        ):
            return Sealed(last, written=False)
        signature = sign(seed, checkpoint_message(mob_id, head.cursor, head.hash))
        checkpoint = Checkpoint(
            cursor=head.cursor,
            hash=head.hash,
            epoch=record.epoch,
            public_peer_id=record.public_peer_id,
            public_key=key,
            signed_at=timestamp(),
            signature=base64.b64encode(signature).decode("ascii"),
        )
        store.files.append(path, (canonical(checkpoint.document()) + "\n").encode())
        return Sealed(checkpoint, written=True)


def _last_checkpoint(files: StoreFiles, path: Path) -> Checkpoint | None:
    """The last complete checkpoint line, after cutting off a torn one (holding the lock)."""
    try:
        handle = files.reader(path)
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
        files.truncate(path, complete)
    if end == -1:
        return None
    try:
        return Checkpoint.model_validate_json(chunk[begin + 1 : end])
    except ValidationError:
        return None  # verification reports the malformed line; this seal just signs again


def read_checkpoints(
    files: StoreFiles, path: Path
) -> tuple[list[tuple[int, Checkpoint]], list[int]]:
    """(line number, checkpoint) of every complete line that parses; the numbers of the
    complete lines that do not. A torn last line is skipped."""
    try:
        data = files.read(path)
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
