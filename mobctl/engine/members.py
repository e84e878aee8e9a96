"""Members of a mob: spawned from profiles, retired, and derived from the event log
(flow-semantics §2). ``member_spawned``/``member_retired`` are prune anchors, so the roster
survives pruning."""

from __future__ import annotations

from dataclasses import dataclass

from mobctl.definition.model import InlineProfile, MobDefinition
from mobctl.drivers.base import Member
from mobctl.errors import CasConflict, DefinitionError, NotFound
from mobctl.ids import require_slug, shown_id
from mobctl.store.contract import Store
from mobctl.store.models import EventKind, MobEvent, NewMobEvent

RESERVED_PREFIX = "__flow_"


@dataclass(frozen=True)
class Roster:
    active: dict[str, Member]  # identity -> member
    last_generation: dict[str, int]  # identity -> its latest generation, active or not

    def of_role(self, role: str) -> list[Member]:
        """Active members of a role, sorted by identity as plain strings (w-10 < w-2, kept)."""
        return sorted((m for m in self.active.values() if m.role == role), key=lambda m: m.identity)


def roster_from(events: list[MobEvent]) -> Roster:
    active: dict[str, Member] = {}
    last: dict[str, int] = {}
    for event in events:
        kind = event.kind
        identity = kind.field("agent_identity")
        if not isinstance(identity, str):
            continue
        generation = int(kind.field("generation") or 0)
        if kind.type == "member_spawned":
            active[identity] = Member(identity, generation, str(kind.field("role")))
            last[identity] = max(last.get(identity, generation), generation)
        elif (
            kind.type == "member_retired"
            and identity in active
            and active[identity].generation == generation
        ):
            del active[identity]
    return Roster(active, last)


def roster(store: Store, mob_id: str) -> Roster:
    return roster_from(store.events(mob_id).replay_all())


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
    store: Store,
    definition: MobDefinition,
    profile: str,
    *,
    identity: str | None = None,
) -> Member:
    """Spawn one member of ``profile``: ``identity``, or ``<profile>-<n>`` with the smallest
    free ``n``. Safe against concurrent spawns (the log refuses a duplicate generation)."""
    mob_id = definition.mob.id
    runtime_mode = _runtime_mode(definition, store, profile)
    if identity is not None:
        # a member id reaches drivers as an environment variable and a process argument: the
        # file-name rule keeps it printable and free of separators (and of the __flow_ prefix)
        require_slug(identity, "member id")
    for _ in range(100):
        current = roster(store, mob_id)
        name = identity or _free_identity(profile, current)
        if name in current.active:
            raise CasConflict(f"member '{name}' is already active in mob '{mob_id}'")
        generation = current.last_generation[name] + 1 if name in current.last_generation else 0
        event = NewMobEvent(
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
        if store.events(mob_id).append_if_absent(event, ("agent_identity", "generation")):
            return Member(name, generation, profile)
    raise CasConflict(f"could not spawn a member of '{profile}': too much contention")


def _free_identity(profile: str, current: Roster) -> str:
    n = 1
    while f"{profile}-{n}" in current.active:
        n += 1
    return f"{profile}-{n}"


def retire(store: Store, mob_id: str, identity: str) -> Member:
    current = roster(store, mob_id)
    member = current.active.get(identity)
    if member is None:
        raise NotFound(
            f"no active member '{shown_id(identity)}' in mob '{mob_id}'",
            hint="`mobctl members list MOB` shows the active members",
        )
    event = NewMobEvent(
        mob_id=mob_id,
        kind=EventKind(
            type="member_retired",
            agent_identity=identity,
            generation=member.generation,
            role=member.role,
        ),
    )
    store.events(mob_id).append_if_absent(event, ("agent_identity", "generation"))
    return member


def provision(store: Store, definition: MobDefinition, roles: list[str]) -> list[Member]:
    """Spawn one member for every role that has no active member (auto-provisioning)."""
    spawned = []
    current = roster(store, definition.mob.id)
    for role in dict.fromkeys(roles):
        if not current.of_role(role):
            spawned.append(spawn(store, definition, role))
    return spawned
