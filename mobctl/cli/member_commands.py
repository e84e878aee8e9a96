"""``mobctl members``: spawn, list and retire the members of a registered mob."""

from __future__ import annotations

from pathlib import Path

import typer

from mobctl.cli.app import app
from mobctl.cli.common import emit, json_option, open_store, store_option, timeout_option
from mobctl.cli.terminal import say, say_fields

members_app = typer.Typer(
    help="Members of a mob (spawned from its profiles).", no_args_is_help=True
)
app.add_typer(members_app, name="members")


@members_app.command("spawn")
def members_spawn(
    mob: str = typer.Argument(..., help="A registered mob id."),
    profile: str = typer.Argument(..., help="The profile (role) to spawn."),
    member_id: str | None = typer.Option(None, "--id", help="Identity (default <profile>-<n>)."),
    count: int = typer.Option(1, "--count", min=1, help="How many members to spawn."),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """Spawn members of a profile; each is recorded as a member_spawned event.

    Examples:

      mobctl members spawn code-review reviewer --count 3

      mobctl members spawn code-review lead --id lead-main
    """
    from mobctl import api
    from mobctl.engine import members
    from mobctl.errors import UsageError

    if member_id is not None and count != 1:
        raise UsageError("--id names one member: it cannot be combined with --count")
    opened = open_store(store, lock_timeout)
    definition = api.registered_definition(opened, mob)
    api.repair_mob(opened, mob)
    spawned = [members.spawn(opened, definition, profile, identity=member_id) for _ in range(count)]
    if as_json:
        emit(
            [{"identity": m.identity, "generation": m.generation, "role": m.role} for m in spawned]
        )
        return
    for member in spawned:
        say(f"spawned {member.identity} (role {member.role}, generation {member.generation})")


@members_app.command("list")
def members_list(
    mob: str = typer.Argument(..., help="A mob id."),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """List the active members of a mob (derived from its event log).

    Example:

      mobctl members list code-review --json
    """
    from mobctl.engine import members
    from mobctl.ids import require_slug

    current = members.roster(open_store(store, lock_timeout), require_slug(mob, "mob id"))
    active = sorted(current.active.values(), key=lambda m: m.identity)
    if as_json:
        emit([{"identity": m.identity, "generation": m.generation, "role": m.role} for m in active])
        return
    for member in active:
        say_fields(member.identity, member.role, f"generation {member.generation}")
    if not active:
        say(f"mob '{mob}' has no active members", err=True)


@members_app.command("retire")
def members_retire(
    mob: str = typer.Argument(..., help="A mob id."),
    member_id: str = typer.Argument(..., help="The member's identity."),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """Retire an active member (a member_retired event).

    Example:

      mobctl members retire code-review reviewer-2
    """
    from mobctl import api
    from mobctl.engine import members
    from mobctl.ids import require_slug

    opened = open_store(store, lock_timeout)
    api.repair_mob(opened, require_slug(mob, "mob id"))
    member = members.retire(opened, mob, member_id)
    if as_json:
        emit({"identity": member.identity, "generation": member.generation, "role": member.role})
    else:
        say(f"retired {member.identity} (role {member.role})")
