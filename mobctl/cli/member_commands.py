"""``mobctl members``: spawn, list and retire the members of a registered mob."""

from __future__ import annotations

from pathlib import Path

import typer

from mobctl.cli.common import emit, json_option, open_store, store_option, timeout_option
from mobctl.cli.terminal import say, say_fields

commands = typer.Typer()  # gathered by mobctl.cli.app

members_app = typer.Typer(
    help="Members of a mob (spawned from its profiles).", no_args_is_help=True
)
commands.add_typer(members_app, name="members")


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

    change = api.spawn(
        open_store(store, lock_timeout), mob, profile, identity=member_id, count=count
    )
    spawned = change.members
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
    from mobctl import api

    active = api.active(open_store(store, lock_timeout), mob)
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

    member = api.retire(open_store(store, lock_timeout), mob, member_id).members[0]
    if as_json:
        emit({"identity": member.identity, "generation": member.generation, "role": member.role})
    else:
        say(f"retired {member.identity} (role {member.role})")
