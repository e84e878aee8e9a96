"""The members of a mob (``mobctl members spawn|list|retire``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mobctl.api.definitions import registered_definition
from mobctl.api.session import writing
from mobctl.drivers.base import Member
from mobctl.engine import members
from mobctl.errors import UsageError
from mobctl.ids import require_slug
from mobctl.store.contract import Store
from mobctl.store.models import RosterMember


@dataclass(frozen=True)
class MemberChange:
    """Members spawned or retired, and what the writing session did besides."""

    members: list[Member]
    repaired: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def spawn(
    store: Store, mob_id: str, profile: str, *, identity: str | None = None, count: int = 1
) -> MemberChange:
    """Spawn ``count`` members of ``profile`` (``identity``: the one member's name)."""
    if identity is not None and count != 1:
        raise UsageError("--id names one member: it cannot be combined with --count")
    definition = registered_definition(store, mob_id)
    with writing(store, mob_id) as session:
        spawned = [
            members.spawn(store, definition, profile, identity=identity) for _ in range(count)
        ]
    return MemberChange(spawned, session.repaired, session.warnings)


def active(store: Store, mob_id: str) -> list[RosterMember]:
    """The active members of a mob, by identity."""
    roster = members.roster(store, require_slug(mob_id, "mob id"))
    return sorted(roster.active.values(), key=lambda m: m.identity)


def retire(store: Store, mob_id: str, identity: str) -> MemberChange:
    with writing(store, require_slug(mob_id, "mob id")) as session:
        retired = members.retire(store, mob_id, identity)
    return MemberChange([retired], session.repaired, session.warnings)
