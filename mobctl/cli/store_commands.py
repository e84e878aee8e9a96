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
    open_store,
    print_diagnostics,
    store_option,
    timeout_option,
)
from mobctl.cli.completion import complete_mob
from mobctl.cli.help import App
from mobctl.cli.output import (
    LISTING,
    NAMED,
    REPORT,
    WIDE,
    Column,
    json_option,
    listing,
    local_time,
    machine,
    short,
    structured,
)
from mobctl.cli.terminal import json_text, printable, say
from mobctl.errors import ExitCode

commands = App()  # gathered by mobctl.cli.app

store_app = App(help="Create and check the store.", no_args_is_help=True)
specs_app = App(help="Registered mob definitions.", no_args_is_help=True)
profiles_app = App(help="Realm profiles (shared, revisioned profiles).", no_args_is_help=True)
commands.add_typer(store_app, name="store")
commands.add_typer(specs_app, name="specs")
commands.add_typer(profiles_app, name="profiles")


@store_app.command("init")
def store_init(
    output: str = REPORT.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Create the store (idempotent).

    Example:

      mobctl store init --store ./.mobctl
    """
    from mobctl import api

    fmt = REPORT.choose(output, as_json)
    opened = open_store(store, lock_timeout)
    created = api.store_init(opened)
    if not structured({"path": str(opened.location), "created": created}, fmt):
        verb = "created" if created else "already exists:"
        say(f"store {verb} {opened.location}")


@store_app.command("check")
def store_check(
    repair: bool = typer.Option(False, "--repair", help="Fix what is safe and say what was done."),
    output: str = REPORT.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Check the whole store; --repair fixes what is safe.

    Every event verifies, cursors increase, batches are whole, snapshots parse, terminal runs have
    their terminal event, no stray temp files or stale lock holders, secret files are private, no
    symbolic links. Exit 6 when a problem remains.

    --repair quarantines torn tails, removes stray temp files and stale holder files, and
    re-appends missing terminal events; it never touches mid-log corruption, and leaves
    symbolic links alone (it never follows or removes one).

    Examples:

      mobctl store check

      mobctl store check --repair -o json
    """
    from mobctl import api

    fmt = REPORT.choose(output, as_json)
    report = api.store_check(open_store(store, lock_timeout), repair=repair)
    document = {
        "ok": report.ok,
        "actions": report.actions,
        "problems": [vars(p) for p in report.problems],
    }
    if not structured(document, fmt):
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
    file: Path = typer.Argument(..., metavar="FILE", help="A definition file (.toml or .json)."),
    expect_revision: int | None = typer.Option(
        None,
        "-r",
        "--expect-revision",
        metavar="N",
        help="Fail unless the stored revision is N (0: must be new).",
    ),
    catalog: Path | None = typer.Option(
        None, "--catalog", metavar="FILE", help="Model catalogue JSON."
    ),
    strict: bool = typer.Option(False, "--strict", help="Refuse it if it has a warning."),
    allow_path: list[Path] = allow_path_option(),
    output: str = NAMED.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Validate a definition and store it as the mob's next revision.

    A definition with errors (with --strict, with warnings) is refused; its diagnostics, and
    the warnings of one that is stored, are printed on stderr as `mobctl validate` prints
    them. Registering an identical definition again changes nothing and says so. The schema
    files and path skills it names are copied into the store: only from inside its directory,
    unless --allow-path trusts another one.

    Examples:

      mobctl register sample-mobs/code-review.toml

      mobctl register sample-mobs/triage.toml --expect-revision 0  # must be new

      mobctl register sample-mobs/code-review.toml --allow-path sample-mobs/skills
    """
    from mobctl import api
    from mobctl.api.registration import InvalidDefinitionError

    fmt = NAMED.choose(output, as_json)
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
    document = {
        "mob_id": result.mob_id,
        "revision": result.revision,
        "digest": result.digest,
        "changed": result.changed,
    }
    if machine(fmt, document, [result.mob_id]):
        return
    if result.changed:
        say(f"registered {result.mob_id} revision {result.revision} ({result.digest})")
    else:
        say(f"{result.mob_id} is unchanged at revision {result.revision} ({result.digest})")


@specs_app.command("list")
def specs_list(
    output: str = LISTING.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """List registered mobs with their revision.

    Example:

      mobctl specs list -o json
    """
    opened = open_store(store, lock_timeout)
    fmt = LISTING.choose(output, as_json)
    records = [r for r in (opened.specs.get_spec(m) for m in opened.specs.list_specs()) if r]
    listing(
        fmt,
        records,
        columns=[
            Column("MOB", lambda r: r.mob_id),
            Column("REVISION", lambda r: r.revision),
            Column("UPDATED", lambda r: local_time(r.updated_at)),
            Column("REGISTERED", lambda r: local_time(r.registered_at), wide_only=True),
            Column("DIGEST", lambda r: r.digest if fmt == WIDE else _digest(r)),
        ],
        document=lambda r: {
            "mob_id": r.mob_id,
            "revision": r.revision,
            "digest": r.digest,
            "updated_at": r.updated_at,
        },
        name=lambda r: r.mob_id,
        empty=f"no mobs registered in {opened.location}",
    )


def _digest(record: Any) -> str:
    """``sha256:`` and the first 8 characters of the hash."""
    algorithm, _, value = str(record.digest).partition(":")
    return f"{algorithm}:{short(value)}" if value else short(algorithm)


@specs_app.command("show")
def specs_show(
    mob: str = typer.Argument(..., metavar="MOB", help="Mob id.", autocompletion=complete_mob),
    output: str = LISTING.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Show a registered mob and its definition.

    Its revision, digest and source, then the definition as TOML.

    Example:

      mobctl specs show code-review -o json
    """
    from mobctl import api
    from mobctl.definition.loader import load_text
    from mobctl.definition.serialize import to_toml

    fmt = LISTING.choose(output, as_json)
    record = api.get_spec(open_store(store, lock_timeout), mob)
    if machine(fmt, record.document(), [record.mob_id]):
        return
    say(f"# {record.mob_id} revision {record.revision} {record.digest}")
    say(f"# registered {local_time(record.registered_at)}, updated {local_time(record.updated_at)}")
    if record.source is not None:
        say(f"# from {record.source.path}")
    loaded = load_text(json.dumps(record.definition), "json", mob, Path("."))
    if loaded.definition is not None:
        sys.stdout.write(printable(to_toml(loaded.definition), keep_newlines=True))


@specs_app.command("delete")
def specs_delete(
    mob: str = typer.Argument(..., metavar="MOB", help="Mob id.", autocompletion=complete_mob),
    expect_revision: int | None = typer.Option(
        None,
        "-r",
        "--expect-revision",
        metavar="N",
        help="Delete only if the stored revision is N.",
    ),
    output: str = REPORT.option(),
    as_json: bool = json_option(),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
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

    fmt = REPORT.choose(output, as_json)
    opened = open_store(store, lock_timeout)
    revision = api.delete_spec(opened, mob, expect_revision, confirm=None if yes else ask)
    if not structured({"mob_id": mob, "deleted_revision": revision}, fmt):
        say(f"deleted {mob} (was revision {revision})")


NAME_ARG = typer.Argument(..., metavar="NAME", help="Profile name.")
PROFILE_FILE = typer.Argument(
    ..., metavar="FILE", help="TOML or JSON file with the profile's keys."
)
REVISION = typer.Option(..., "-r", "--expect-revision", metavar="N", help="The current revision.")


@profiles_app.command("create")
def profiles_create(
    name: str = typer.Argument(..., metavar="NAME", help="Profile name (letters, digits, . _ -)."),
    file: Path = PROFILE_FILE,
    output: str = NAMED.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Create a realm profile.

    Definitions reference it as realm_profile = "NAME".

    Example:

      mobctl profiles create house-writer sample-mobs/profiles/house-editor.toml
    """

    fmt = NAMED.choose(output, as_json)
    record = open_store(store, lock_timeout).profiles.create(name, _read_profile(file))
    _profile_out(record, fmt, "created")


@profiles_app.command("list")
def profiles_list(
    output: str = LISTING.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """List realm profiles.

    Example:

      mobctl profiles list
    """
    fmt = LISTING.choose(output, as_json)
    opened = open_store(store, lock_timeout)
    listing(
        fmt,
        opened.profiles.list(),
        columns=[
            Column("NAME", lambda r: r.name),
            Column("REVISION", lambda r: r.revision),
            Column("MODEL", lambda r: r.profile.get("model") or "-"),
            Column("UPDATED", lambda r: local_time(r.updated_at)),
            Column("CREATED", lambda r: local_time(r.created_at), wide_only=True),
        ],
        document=lambda r: r.document(),
        name=lambda r: r.name,
        empty=f"no realm profiles in {opened.location}",
    )


@profiles_app.command("show")
def profiles_show(
    name: str = NAME_ARG,
    output: str = LISTING.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Show one realm profile.

    Example:

      mobctl profiles show house-editor -o yaml
    """
    from mobctl.errors import NotFound

    fmt = LISTING.choose(output, as_json)
    record = open_store(store, lock_timeout).profiles.get(name)
    if record is None:
        raise NotFound(f"realm profile '{name}' does not exist")
    _profile_out(record, fmt, None)


@profiles_app.command("update")
def profiles_update(
    name: str = NAME_ARG,
    file: Path = PROFILE_FILE,
    expect_revision: int = REVISION,
    output: str = NAMED.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Replace a realm profile if it is still at the revision you read.

    Example:

      mobctl profiles update house-editor sample-mobs/profiles/v2.toml -r 1
    """

    fmt = NAMED.choose(output, as_json)
    profile = _read_profile(file)
    record = open_store(store, lock_timeout).profiles.update(name, profile, expect_revision)
    _profile_out(record, fmt, "updated")


@profiles_app.command("delete")
def profiles_delete(
    name: str = NAME_ARG,
    expect_revision: int = REVISION,
    output: str = NAMED.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Delete a realm profile if it is still at the revision you read.

    Example:

      mobctl profiles delete house-editor --expect-revision 1
    """
    fmt = NAMED.choose(output, as_json)
    record = open_store(store, lock_timeout).profiles.delete(name, expect_revision)
    _profile_out(record, fmt, "deleted")


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


def _profile_out(record: Any, fmt: str, verb: str | None) -> None:
    if machine(fmt, record.document(), [record.name]):
        return
    if verb:
        say(f"{verb} realm profile {record.name} (revision {record.revision})")
    else:
        say(
            f"{record.name} revision {record.revision} (created {local_time(record.created_at)}, "
            f"updated {local_time(record.updated_at)})"
        )
        sys.stdout.write(json_text(record.profile) + "\n")
