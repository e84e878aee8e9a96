"""Members of a mob: spawned from profiles, retired, and derived from the event log
(flow-semantics §2). ``member_spawned``/``member_retired`` are prune anchors, so the roster
survives pruning."""

from __future__ import annotations

from mobctl.definition.model import InlineProfile, MobDefinition
from mobctl.drivers.base import Member
from mobctl.errors import CasConflict, DefinitionError, NotFound
from mobctl.ids import require_slug, shown_id
from mobctl.store.contract import Store
from mobctl.store.models import EventKind, NewMobEvent, Roster, RosterMember

RESERVED_PREFIX = "__flow_"


def roster(store: Store, mob_id: str) -> Roster:
    return store.events(mob_id).roster()


def member_of(entry: RosterMember) -> Member:
    return Member(entry.identity, entry.generation, entry.role)


def _runtime_mode(definition: MobDefinition, store: Store, profile: str) -> str:
    binding = definition.profiles.get(profile)
    if binding is None:
        raise NotFound(
            f"mob '{definition.mob.id}' has no profile '{shown_id(profile)}'",
            hint=f"profiles: {', '.join(definition.profiles) or '(none)'}",
        )
    if isinstance(binding, InlineProfile):
        return binding.runtime_mode
    stored = store.profiles.get(binding.realm_profile)
    if stored is None:
        raise DefinitionError(
            f"profile '{profile}' refers to realm profile '{binding.realm_profile}', which "
            "does not exist",
            hint=f"create it: mobctl profiles create {binding.realm_profile} FILE",
        )
    mode = stored.profile.get("runtime_mode", "autonomous_host")
    return str(mode)


def spawn(
    store: Store, definition: MobDefinition, profile: str, *, identity: str | None = None
) -> Member:
    """Spawn one member of ``profile``: ``identity``, or ``<profile>-<n>`` with the smallest
    free ``n``. A CAS on the roster (the name and generation are chosen under the log's lock),
    so concurrent spawns never collide."""
    member = _spawn(store, definition, profile, identity=identity, only_if_role_empty=False)
    assert member is not None  # only a role-empty condition declines
    return member


def _spawn(
    store: Store,
    definition: MobDefinition,
    profile: str,
    *,
    identity: str | None,
    only_if_role_empty: bool,
) -> Member | None:
    """``spawn``; with ``only_if_role_empty`` nothing is spawned (None) when the role already
    has an active member."""
    mob_id = definition.mob.id
    runtime_mode = _runtime_mode(definition, store, profile)
    if identity is not None:
        # a member id reaches drivers as an environment variable and a process argument: the
        # file-name rule keeps it printable and free of separators (and of the __flow_ prefix)
        require_slug(identity, "member id")

    def build(current: Roster) -> NewMobEvent | None:
        if only_if_role_empty and current.of_role(profile):
            return None
        name = identity or _free_identity(profile, current)
        if name in current.active:
            raise CasConflict(f"member '{name}' is already active in mob '{mob_id}'")
        generation = current.last_generation[name] + 1 if name in current.last_generation else 0
        return NewMobEvent(
            mob_id=mob_id,
            kind=EventKind(
                type="member_spawned",
                agent_identity=name,
                generation=generation,
                fence_token=generation + 1,
                agent_runtime_id={"identity": name, "generation": generation},
                role=profile,
                runtime_mode=runtime_mode,
            ),
        )

    event = store.events(mob_id).append_member_event(build)
    if event is None:
        return None
    return Member(
        str(event.kind.field("agent_identity")), int(event.kind.field("generation")), profile
    )


def _free_identity(profile: str, current: Roster) -> str:
    n = 1
    while f"{profile}-{n}" in current.active:
        n += 1
    return f"{profile}-{n}"


def retire(store: Store, mob_id: str, identity: str) -> Member:
    retired: list[RosterMember] = []

    def build(current: Roster) -> NewMobEvent:
        member = current.active.get(identity)
        if member is None:
            raise NotFound(
                f"no active member '{shown_id(identity)}' in mob '{mob_id}'",
                hint="`mobctl members list MOB` shows the active members",
            )
        retired.append(member)
        return NewMobEvent(
            mob_id=mob_id,
            kind=EventKind(
                type="member_retired",
                agent_identity=identity,
                generation=member.generation,
                role=member.role,
            ),
        )

    store.events(mob_id).append_member_event(build)
    return member_of(retired[0])


def provision(store: Store, definition: MobDefinition, roles: list[str]) -> list[Member]:
    """Spawn one member for every role that has no active member (auto-provisioning). Each is a
    CAS on the roster: concurrent first runs provision one member per role, not several."""
    spawned = []
    current = roster(store, definition.mob.id)
    for role in dict.fromkeys(roles):
        if current.of_role(role):
            continue
        member = _spawn(store, definition, role, identity=None, only_if_role_empty=True)
        if member is not None:
            spawned.append(member)
    return spawned
