"""Commands over the store: store init/check, register, specs, profiles."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from mobctl.cli.common import (
    allow_path_option,
    confirm,
    emit,
    json_option,
    open_store,
    print_diagnostics,
    store_option,
    timeout_option,
)
from mobctl.cli.terminal import json_text, printable, say, say_fields
from mobctl.errors import ExitCode

commands = typer.Typer()  # gathered by mobctl.cli.app

store_app = typer.Typer(help="Create and check the store.", no_args_is_help=True)
specs_app = typer.Typer(help="Registered mob definitions.", no_args_is_help=True)
profiles_app = typer.Typer(
    help="Realm profiles (shared, revisioned profiles).", no_args_is_help=True
)
commands.add_typer(store_app, name="store")
commands.add_typer(specs_app, name="specs")
commands.add_typer(profiles_app, name="profiles")


@store_app.command("init")
def store_init(
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """Create the store (idempotent).

    Example:

      mobctl store init --store ./.mobctl
    """
    from mobctl import api

    opened = open_store(store, lock_timeout)
    created = api.store_init(opened)
    if as_json:
        emit({"path": str(opened.location), "created": created})
    else:
        verb = "created" if created else "already exists:"
        say(f"store {verb} {opened.location}")


@store_app.command("check")
def store_check(
    repair: bool = typer.Option(False, "--repair", help="Fix what is safe and say what was done."),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """Check the whole store: every event verifies, cursors increase, batches are whole,
    snapshots parse, terminal runs have their terminal event, no stray temp files or stale
    lock holders, secret files are private, no symbolic links. Exit 6 when a problem remains.

    --repair quarantines torn tails, removes stray temp files and stale holder files, and
    re-appends missing terminal events; it never touches mid-log corruption, and leaves
    symbolic links alone (it never follows or removes one).

    Examples:

      mobctl store check

      mobctl store check --repair --json
    """
    from mobctl import api

    report = api.store_check(open_store(store, lock_timeout), repair=repair)
    if as_json:
        emit(
            {
                "ok": report.ok,
                "actions": report.actions,
                "problems": [vars(p) for p in report.problems],
            }
        )
    else:
        for action in report.actions:
            say(f"repaired: {action}")
        for problem in report.problems:
            fixable = " (fixable with --repair)" if problem.repairable and not repair else ""
            say(f"problem[{problem.code}] {problem.path}: {problem.message}{fixable}")
        count = len(report.problems)
        say("store is consistent" if report.ok else f"{count} problem(s) found")
    raise typer.Exit(int(ExitCode.OK if report.ok else ExitCode.STORE_UNAVAILABLE))


@commands.command()
def register(
    file: Path = typer.Argument(..., help="A definition file (.toml or .json)."),
    expect_revision: int | None = typer.Option(
        None, "--expect-revision", help="Fail unless the stored revision is N (0: must be new)."
    ),
    catalog: Path | None = typer.Option(None, "--catalog", help="Model catalogue JSON."),
    strict: bool = typer.Option(False, "--strict", help="Refuse it if it has a warning."),
    allow_path: list[Path] = allow_path_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """Validate a definition and store it as the mob's next revision.

    A definition with errors (with --strict, with warnings) is refused; its diagnostics, and
    the warnings of one that is stored, are printed on stderr as `mobctl validate` prints
    them. Registering an
    identical definition again changes nothing and says so. The schema files and path skills
    it names are copied into the store: only from inside its directory, unless --allow-path
    trusts another one.

    Examples:

      mobctl register sample-mobs/code-review.toml

      mobctl register sample-mobs/triage.toml --expect-revision 0   # must not exist yet

      mobctl register sample-mobs/code-review.toml --allow-path sample-mobs/skills
    """
    from mobctl import api
    from mobctl.api.registration import InvalidDefinitionError

    try:
        result = api.register(
            open_store(store, lock_timeout),
            file,
            expect_revision=expect_revision,
            catalog=catalog,
            allow_paths=allow_path,
            strict=strict,
        )
    except InvalidDefinitionError as exc:
        print_diagnostics(exc.diagnostics, exc.source_text)
        raise
    print_diagnostics(result.warnings, result.source_text)
    if as_json:
        emit(
            {
                "mob_id": result.mob_id,
                "revision": result.revision,
                "digest": result.digest,
                "changed": result.changed,
            }
        )
        return
    if result.changed:
        say(f"registered {result.mob_id} revision {result.revision} ({result.digest})")
    else:
        say(f"{result.mob_id} is unchanged at revision {result.revision} ({result.digest})")


@specs_app.command("list")
def specs_list(
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """List registered mobs with their revision.

    Example:

      mobctl specs list --json
    """
    opened = open_store(store, lock_timeout)
    records = [r for r in (opened.specs.get_spec(m) for m in opened.specs.list_specs()) if r]
    if as_json:
        emit(
            [
                {
                    "mob_id": r.mob_id,
                    "revision": r.revision,
                    "digest": r.digest,
                    "updated_at": r.updated_at,
                }
                for r in records
            ]
        )
        return
    for record in records:
        say_fields(record.mob_id, f"revision {record.revision}", record.updated_at, record.digest)
    if not records:
        say(f"no mobs registered in {opened.location}", err=True)


@specs_app.command("show")
def specs_show(
    mob: str = typer.Argument(..., help="Mob id."),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """Show a registered mob: revision, digest, source, and its definition (TOML).

    Example:

      mobctl specs show code-review --json
    """
    from mobctl import api
    from mobctl.definition.loader import load_text
    from mobctl.definition.serialize import to_toml

    record = api.get_spec(open_store(store, lock_timeout), mob)
    if as_json:
        emit(record.document())
        return
    say(f"# {record.mob_id} revision {record.revision} {record.digest}")
    say(f"# registered {record.registered_at}, updated {record.updated_at}")
    if record.source is not None:
        say(f"# from {record.source.path}")
    loaded = load_text(json.dumps(record.definition), "json", mob, Path("."))
    if loaded.definition is not None:
        sys.stdout.write(printable(to_toml(loaded.definition), keep_newlines=True))


@specs_app.command("delete")
def specs_delete(
    mob: str = typer.Argument(..., help="Mob id."),
    expect_revision: int | None = typer.Option(
        None, "--expect-revision", help="Delete only if the stored revision is N."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """Delete a registered definition (its events and runs stay).

    Asks first on a terminal; without --yes it refuses when stdin is not a terminal.

    Example:

      mobctl specs delete code-review --expect-revision 1 --yes
    """
    from mobctl import api

    def ask(mob_id: str, revision: int) -> bool:
        return confirm(
            f"Delete the definition of mob '{mob_id}' (revision {revision})?",
            refused="delete a definition",
            yes_hint="pass --yes to delete without asking",
        )

    opened = open_store(store, lock_timeout)
    revision = api.delete_spec(opened, mob, expect_revision, confirm=None if yes else ask)
    if as_json:
        emit({"mob_id": mob, "deleted_revision": revision})
    else:
        say(f"deleted {mob} (was revision {revision})")


def _profile_document(record: Any) -> dict[str, Any]:
    return dict(record.document())


@profiles_app.command("create")
def profiles_create(
    name: str = typer.Argument(..., help="Profile name (letters, digits, . _ -)."),
    file: Path = typer.Argument(..., help="TOML or JSON file with the profile's keys."),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """Create a realm profile, referenced from definitions as realm_profile = "NAME".

    Example:

      mobctl profiles create house-writer sample-mobs/profiles/house-editor.toml
    """

    record = open_store(store, lock_timeout).profiles.create(name, _read_profile(file))
    _profile_out(record, as_json, "created")


@profiles_app.command("list")
def profiles_list(
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """List realm profiles.

    Example:

      mobctl profiles list
    """
    records = open_store(store, lock_timeout).profiles.list()
    if as_json:
        emit([_profile_document(r) for r in records])
        return
    for record in records:
        model = record.profile.get("model")
        say_fields(record.name, f"revision {record.revision}", model, record.updated_at)


@profiles_app.command("show")
def profiles_show(
    name: str = typer.Argument(..., help="Profile name."),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """Show one realm profile.

    Example:

      mobctl profiles show house-editor --json
    """
    from mobctl.errors import NotFound

    record = open_store(store, lock_timeout).profiles.get(name)
    if record is None:
        raise NotFound(f"realm profile '{name}' does not exist")
    _profile_out(record, as_json, None)


@profiles_app.command("update")
def profiles_update(
    name: str = typer.Argument(..., help="Profile name."),
    file: Path = typer.Argument(..., help="TOML or JSON file with the profile's keys."),
    expect_revision: int = typer.Option(..., "--expect-revision", help="The current revision."),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """Replace a realm profile if it is still at the revision you read.

    Example:

      mobctl profiles update house-editor sample-mobs/profiles/house-editor.toml --expect-revision 1
    """

    profile = _read_profile(file)
    record = open_store(store, lock_timeout).profiles.update(name, profile, expect_revision)
    _profile_out(record, as_json, "updated")


@profiles_app.command("delete")
def profiles_delete(
    name: str = typer.Argument(..., help="Profile name."),
    expect_revision: int = typer.Option(..., "--expect-revision", help="The current revision."),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """Delete a realm profile if it is still at the revision you read.

    Example:

      mobctl profiles delete house-editor --expect-revision 1
    """
    record = open_store(store, lock_timeout).profiles.delete(name, expect_revision)
    _profile_out(record, as_json, "deleted")


def _read_profile(file: Path) -> dict[str, Any]:
    """The profile of a file; its diagnostics on stderr, as `mobctl validate` prints them."""
    from mobctl import api
    from mobctl.api.definitions import InvalidProfileError

    try:
        read = api.read_profile_file(file)
    except InvalidProfileError as exc:
        print_diagnostics(exc.diagnostics, exc.source_text)
        raise
    print_diagnostics(read.warnings, read.text)
    return read.profile


def _profile_out(record: Any, as_json: bool, verb: str | None) -> None:
    if as_json:
        emit(_profile_document(record))
        return
    if verb:
        say(f"{verb} realm profile {record.name} (revision {record.revision})")
    else:
        say(
            f"{record.name} revision {record.revision} (created {record.created_at}, "
            f"updated {record.updated_at})"
        )
        sys.stdout.write(json_text(record.profile) + "\n")
