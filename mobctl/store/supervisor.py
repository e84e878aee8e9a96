"""The supervisor authority's life: create, rotate, describe (store contract §7.2, §8.8).

Rotation is two compare-and-puts on the record, with the metadata lock released between
them: (1) current → current + pending (a fresh key at ``epoch + 1``, a new operation id);
(2) current + pending → the pending authority promoted, with no pending. A crash between the
steps leaves the pending attempt in the record; the next rotation skips step 1 and promotes
that same key, so an interrupted rotation never produces a second key for its epoch. Epochs
grow by exactly one and never wrap: at ``2^64 - 1`` step 1 is refused.

The record is the source of truth for signing; the history (``supervisor-history.jsonl``) is
what verification trusts. Each history entry is endorsed: signed by the previous epoch's key
and by its own key, over both public keys (:func:`~mobctl.store.authority.history_message`),
so nobody can add a key to the history without the secret of the key before it, and a
pinned key vouches for every key before it. A rotation appends the new key's entry before it
promotes the key, while the old secret is still in the record; a crash between the two is
completed by the next rotation with the same key. An authority is also recorded "if absent"
by every operation that uses it, before it signs anything, so no checkpoint is ever signed by
a key missing from the history (the first key of a mob is the root of its history).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mobctl.clock import timestamp
from mobctl.errors import CasConflict, NotFound, SupervisorEpochExhausted
from mobctl.store.authority import (
    MAX_EPOCH,
    display_key,
    generate_seed,
    history_message,
    peer_id,
    public_key,
    sign,
)
from mobctl.store.models import (
    PendingRotation,
    SupervisorAuthorityRecord,
    SupervisorHistoryEntry,
)

if TYPE_CHECKING:
    from mobctl.store.contract import Store

PROTOCOL_VERSION = 5  # what new records carry (§7.1)


@dataclass(frozen=True)
class Rotation:
    """A completed rotation: the authority before and after (secrets included; not for output)."""

    previous: SupervisorAuthorityRecord
    current: SupervisorAuthorityRecord
    operation_id: str | None
    resumed: bool  # True when it completed an attempt an earlier process had begun


@dataclass(frozen=True)
class PendingView:
    operation_id: str | None
    epoch: int
    public_peer_id: str
    public_key: str
    protocol_version: int


@dataclass(frozen=True)
class SupervisorView:
    """What may be shown of an authority: everything public, never the secret."""

    mob_id: str
    epoch: int
    public_peer_id: str
    public_key: str
    protocol_version: int
    secret_at_rest: str  # "plaintext" (a 0600 file) or the encryption scheme
    pending_rotation: PendingView | None
    history: list[SupervisorHistoryEntry]

    def document(self) -> dict[str, Any]:
        pending = self.pending_rotation
        return {
            "mob_id": self.mob_id,
            "epoch": self.epoch,
            "public_peer_id": self.public_peer_id,
            "public_key": self.public_key,
            "protocol_version": self.protocol_version,
            "secret_at_rest": self.secret_at_rest,
            "pending_rotation": None if pending is None else vars(pending),
            "history": [entry.document() for entry in self.history],
        }


def authority_from_seed(
    seed: bytes, *, epoch: int = 0, protocol_version: int = PROTOCOL_VERSION
) -> SupervisorAuthorityRecord:
    return SupervisorAuthorityRecord(
        secret_key=list(seed),
        public_peer_id=peer_id(public_key(seed)),
        epoch=epoch,
        protocol_version=protocol_version,
    )


def require_authority(store: Store, mob_id: str) -> SupervisorAuthorityRecord:
    record = store.metadata.load_supervisor_authority(mob_id)
    if record is None:
        raise NotFound(
            f"mob '{mob_id}' has no supervisor authority",
            hint=f"create one with `mobctl supervisor init {mob_id}`",
        )
    return record


def ensure_history(
    store: Store,
    mob_id: str,
    record: SupervisorAuthorityRecord,
    previous: SupervisorAuthorityRecord | None = None,
) -> bool:
    """Record ``record``'s key in the history unless it is there, endorsed by ``previous``
    (the authority it succeeds, when its secret is at hand); True if added now.

    Without ``previous``, a key that is not the first of the history goes in unendorsed
    (an authority promoted by another tool, or by a mobctl that kept no endorsements), and
    verification reports it.
    """
    seed = bytes(record.secret_key)
    key = display_key(public_key(seed))
    history = store.metadata.load_supervisor_history(mob_id)
    if any((e.epoch, e.public_peer_id) == (record.epoch, record.public_peer_id) for e in history):
        return False
    if previous is not None:
        previous_key: str | None = display_key(public_key(bytes(previous.secret_key)))
    else:
        previous_key = history[-1].public_key if history else None
    message = history_message(mob_id, record.epoch, previous_key, key)
    entry = SupervisorHistoryEntry(
        epoch=record.epoch,
        public_peer_id=record.public_peer_id,
        public_key=key,
        activated_at=timestamp(),
        previous_public_key=previous_key,
        endorsement=None if previous is None else _signature(previous, message),
        acceptance=_signature(record, message),
    )
    return store.metadata.record_supervisor_activation(mob_id, entry)


def _signature(record: SupervisorAuthorityRecord, message: bytes) -> str:
    return base64.b64encode(sign(bytes(record.secret_key), message)).decode("ascii")


def create(store: Store, mob_id: str) -> SupervisorAuthorityRecord | None:
    """A new authority at epoch 0 with a fresh key; None (nothing written) if one exists."""
    record = authority_from_seed(generate_seed())
    if not store.metadata.put_supervisor_authority_if_absent(mob_id, record):
        return None
    ensure_history(store, mob_id, record)
    return record


def rotate(
    store: Store, mob_id: str, *, between_steps: Callable[[], None] | None = None
) -> Rotation:
    """Rotate to a fresh key at ``epoch + 1``, or complete an interrupted rotation.

    ``between_steps`` runs after the pending authority is recorded and before it is promoted
    (tests use it to crash there).
    """
    current = require_authority(store, mob_id)
    ensure_history(store, mob_id, current)
    pending = current.pending_rotation
    resumed = pending is not None
    staged = current
    if pending is None:
        if current.epoch >= MAX_EPOCH:
            raise SupervisorEpochExhausted(
                f"the supervisor authority of mob '{mob_id}' is at epoch {current.epoch}, the "
                "last one: a rotation would wrap the epoch, so none is possible",
                hint="the authority stays valid; nothing was written",
            )
        seed = generate_seed()
        pending = PendingRotation(
            operation_id=str(uuid.uuid4()),
            secret_key=list(seed),
            public_peer_id=peer_id(public_key(seed)),
            epoch=current.epoch + 1,
            protocol_version=PROTOCOL_VERSION,
        )
        staged = current.model_copy(update={"pending_rotation": pending})
        if not store.metadata.compare_and_put_supervisor_authority(mob_id, current, staged):
            raise _lost_race(mob_id)
    if between_steps is not None:
        between_steps()
    promoted = SupervisorAuthorityRecord(
        secret_key=pending.secret_key,
        public_peer_id=pending.public_peer_id,
        epoch=pending.epoch,
        protocol_version=pending.protocol_version,
    )
    ensure_history(store, mob_id, promoted, previous=current)  # while the old secret is here
    if not store.metadata.compare_and_put_supervisor_authority(mob_id, staged, promoted):
        raise _lost_race(mob_id)
    previous = current.model_copy(update={"pending_rotation": None})
    return Rotation(previous, promoted, pending.operation_id, resumed)


def _lost_race(mob_id: str) -> CasConflict:
    return CasConflict(
        f"the supervisor authority of mob '{mob_id}' changed while rotating it",
        hint=f"another process rotated it; check with `mobctl supervisor show {mob_id}`",
    )


def describe(store: Store, mob_id: str) -> SupervisorView:
    record = require_authority(store, mob_id)
    pending = record.pending_rotation
    return SupervisorView(
        mob_id=mob_id,
        epoch=record.epoch,
        public_peer_id=record.public_peer_id,
        public_key=display_key(public_key(bytes(record.secret_key))),
        protocol_version=record.protocol_version,
        secret_at_rest=store.metadata.supervisor_secret_at_rest(mob_id) or "plaintext",
        pending_rotation=None
        if pending is None
        else PendingView(
            operation_id=pending.operation_id,
            epoch=pending.epoch,
            public_peer_id=pending.public_peer_id,
            public_key=display_key(public_key(bytes(pending.secret_key))),
            protocol_version=pending.protocol_version,
        ),
        history=store.metadata.load_supervisor_history(mob_id),
    )
