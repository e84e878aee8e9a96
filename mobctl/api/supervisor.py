"""The supervisor authority and signed checkpoints (``mobctl supervisor``, ``events seal``,
``events verify --signatures``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from mobctl.api.definitions import get_spec
from mobctl.api.session import writing
from mobctl.errors import SupervisorExistsError, UsageError
from mobctl.ids import require_slug
from mobctl.store import checkpoints, signatures, supervisor
from mobctl.store.checkpoints import Sealed
from mobctl.store.contract import Store
from mobctl.store.signatures import SignatureReport
from mobctl.store.supervisor import SupervisorView


@dataclass(frozen=True)
class SupervisorChange:
    """What ``supervisor init`` / ``rotate`` did, and the authority now (never the secret)."""

    action: Literal["created", "rotated"]
    previous_epoch: int | None
    operation_id: str | None  # the rotation's operation id
    resumed: bool  # the rotation completed one an interrupted process had begun
    view: SupervisorView

    def document(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "previous_epoch": self.previous_epoch,
            "operation_id": self.operation_id,
            "resumed": self.resumed,
            **self.view.document(),
        }


def supervisor_init(store: Store, mob_id: str, *, force: bool = False) -> SupervisorChange:
    """A new authority (epoch 0, fresh key) for a registered mob; ``force`` rotates an
    existing one instead of refusing."""

    get_spec(store, mob_id)
    if supervisor.create(store, mob_id) is not None:
        return SupervisorChange("created", None, None, False, supervisor.describe(store, mob_id))
    if not force:
        raise SupervisorExistsError(
            f"mob '{mob_id}' already has a supervisor authority",
            hint=f"rotate its key with `mobctl supervisor rotate {mob_id}` (or init --force)",
        )
    return supervisor_rotate(store, mob_id)


def supervisor_rotate(
    store: Store, mob_id: str, *, between_steps: Callable[[], None] | None = None
) -> SupervisorChange:
    """Rotate to a fresh key at the next epoch, or complete an interrupted rotation."""

    rotation = supervisor.rotate(store, require_slug(mob_id, "mob id"), between_steps=between_steps)
    return SupervisorChange(
        "rotated",
        rotation.previous.epoch,
        rotation.operation_id,
        rotation.resumed,
        supervisor.describe(store, mob_id),
    )


def supervisor_show(store: Store, mob_id: str) -> SupervisorView:

    return supervisor.describe(store, require_slug(mob_id, "mob id"))


def seal(store: Store, mob_id: str) -> Sealed:
    """Sign the head of the mob's event log now (``mobctl events seal``)."""

    with writing(store, require_slug(mob_id, "mob id")):  # a repaired event gets signed too
        return checkpoints.seal(store, mob_id)


def verify_signatures(store: Store, mob_id: str, *, peer_id: str | None = None) -> SignatureReport:
    """The event log against its signed checkpoints (``mobctl events verify --signatures``),
    with ``peer_id`` (if given) a supervisor key the authority history must vouch for."""
    from mobctl.ids import require_slug

    mob_id = require_slug(mob_id, "mob id")
    anchor = None
    if peer_id is not None:
        try:
            anchor = str(uuid.UUID(peer_id))
        except ValueError:
            raise UsageError(
                f"--peer-id {peer_id[:64]!r} is not a peer id",
                hint="give the public_peer_id that `mobctl supervisor show` prints (a UUID)",
            ) from None
    return signatures.verify_signatures(store, mob_id, anchor=anchor)
