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
from dataclasses import dataclass

from mobctl.clock import timestamp
from mobctl.errors import MobctlError, NotFound
from mobctl.store.authority import display_key, public_key
from mobctl.store.authority import sign as sign_message
from mobctl.store.contract import Store
from mobctl.store.models import Checkpoint, SupervisorAuthorityRecord
from mobctl.store.supervisor import ensure_history, require_authority

MESSAGE_PREFIX = "mobctl-checkpoint-v1"


@dataclass(frozen=True)
class Sealed:
    checkpoint: Checkpoint
    written: bool  # False when the last checkpoint already covered this head with this key


def checkpoint_message(mob_id: str, cursor: int, chain_hash: str) -> bytes:
    return f"{MESSAGE_PREFIX}\n{mob_id}\n{cursor}\n{chain_hash}".encode()


def seal(store: Store, mob_id: str) -> Sealed:
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

    For the writing commands, after terminal run events. None (nothing written) when the mob
    has no authority or the log is empty. Raises what reading the authority raises — notably
    ``PassphraseRequired`` / ``WrongPassphrase`` for an encrypted secret: the caller should
    report that as a warning, not fail the run.
    """
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


def _seal(store: Store, mob_id: str, record: SupervisorAuthorityRecord) -> Sealed | None:
    ensure_history(store, mob_id, record)  # before signing: the key must verify later

    def sign(cursor: int, chain_hash: str, last: Checkpoint | None) -> Checkpoint:
        authority = record
        if last is not None and last.epoch > authority.epoch:
            # A rotation finished since ``record`` was read, and the new key signed already:
            # sign with the newest key, so the checkpoints' epochs never go back (which
            # verification reads as a rotated-out key at work).
            authority = require_authority(store, mob_id)
        seed = bytes(authority.secret_key)
        key = display_key(public_key(seed))
        if last is not None and (last.cursor, last.hash, last.epoch, last.public_key) == (
            cursor,
            chain_hash,
            authority.epoch,
            key,
        ):
            return last
        signature = sign_message(seed, checkpoint_message(mob_id, cursor, chain_hash))
        return Checkpoint(
            cursor=cursor,
            hash=chain_hash,
            epoch=authority.epoch,
            public_peer_id=authority.public_peer_id,
            public_key=key,
            signed_at=timestamp(),
            signature=base64.b64encode(signature).decode("ascii"),
        )

    store.prepare()
    sealed = store.events(mob_id).seal(sign)
    return None if sealed is None else Sealed(*sealed)
