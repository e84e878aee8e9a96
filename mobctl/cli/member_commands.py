"""``mobctl members``: spawn, list and retire the members of a registered mob."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from mobctl.cli.common import open_store, store_option, timeout_option
from mobctl.cli.completion import complete_mob
from mobctl.cli.help import App
from mobctl.cli.output import LISTING, NAMED, Column, json_option, listing, machine
from mobctl.cli.terminal import say

commands = App()  # gathered by mobctl.cli.app

members_app = App(help="Members of a mob (spawned from its profiles).", no_args_is_help=True)
commands.add_typer(members_app, name="members")

MOB = typer.Argument(..., metavar="MOB", help="A mob id.", autocompletion=complete_mob)


def _document(member: Any) -> dict[str, Any]:
    return {"identity": member.identity, "generation": member.generation, "role": member.role}


@members_app.command("spawn")
def members_spawn(
    mob: str = MOB,
    profile: str = typer.Argument(..., metavar="PROFILE", help="The profile (role) to spawn."),
    member_id: str | None = typer.Option(
        None, "--id", metavar="ID", help="Identity (default PROFILE-N, the smallest free N)."
    ),
    count: int = typer.Option(
        1, "--count", min=1, metavar="N", help="How many members to spawn (at least 1)."
    ),
    output: str = NAMED.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Spawn members of a profile.

    Each is recorded as a member_spawned event.

    Examples:

      mobctl members spawn code-review reviewer --count 3

      mobctl members spawn code-review lead --id lead-main
    """
    from mobctl import api

    fmt = NAMED.choose(output, as_json)
    change = api.spawn(
        open_store(store, lock_timeout), mob, profile, identity=member_id, count=count
    )
    spawned = change.members
    if machine(fmt, [_document(m) for m in spawned], [m.identity for m in spawned]):
        return
    for member in spawned:
        say(f"spawned {member.identity} (role {member.role}, generation {member.generation})")


@members_app.command("list")
def members_list(
    mob: str = MOB,
    output: str = LISTING.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """List the active members of a mob (derived from its event log).

    Example:

      mobctl members list code-review -o json
    """
    from mobctl import api

    fmt = LISTING.choose(output, as_json)
    listing(
        fmt,
        api.active(open_store(store, lock_timeout), mob),
        columns=[
            Column("MEMBER", lambda m: m.identity),
            Column("ROLE", lambda m: m.role),
            Column("GENERATION", lambda m: m.generation),
        ],
        document=_document,
        name=lambda m: m.identity,
        empty=f"mob '{mob}' has no active members",
    )


@members_app.command("retire")
def members_retire(
    mob: str = MOB,
    member_id: str = typer.Argument(..., metavar="MEMBER", help="The member's identity."),
    output: str = NAMED.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Retire an active member (a member_retired event).

    Example:

      mobctl members retire code-review reviewer-2
    """
    from mobctl import api

    fmt = NAMED.choose(output, as_json)
    member = api.retire(open_store(store, lock_timeout), mob, member_id).members[0]
    if not machine(fmt, _document(member), [member.identity]):
        say(f"retired {member.identity} (role {member.role})")
