"""Definitions: validate, load, draw, convert, register (``mobctl validate|graph|convert|
register|schema|specs|profiles``)."""

from __future__ import annotations

import glob
import json
import os
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mobctl.api.registration import Registration, candidate, store_candidate, stored_definition
from mobctl.api.session import writing
from mobctl.definition.files import read_regular
from mobctl.definition.loader import detect_format, load_file
from mobctl.definition.model import MobDefinition
from mobctl.diagnostics import Diagnostic
from mobctl.errors import (
    DefinitionError,
    NoDefinitionsError,
    NotFound,
    PathNotFoundError,
    UnknownFlowError,
)
from mobctl.store.contract import Store
from mobctl.store.models import SpecRecord
from mobctl.validation.catalog import Catalog, bundled_catalog, load_catalog
from mobctl.validation.validate import Report, validate_path

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class ValidationRun:
    reports: list[Report]
    skipped_links: list[str] = field(default_factory=list)  # found under a directory or glob

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.reports)

    @property
    def warnings(self) -> int:
        return sum(r.warnings for r in self.reports)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return [d for r in self.reports for d in r.diagnostics]


def catalog_from(path: Path | None) -> Catalog:
    return bundled_catalog() if path is None else load_catalog(path)


@dataclass
class Expanded:
    """What the ``validate`` arguments name: files (resolved -> as shown) and the links found
    under a directory or by a glob, which are never read."""

    files: dict[Path, str] = field(default_factory=dict)
    skipped_links: list[str] = field(default_factory=list)


def is_definition_file(path: Path) -> bool:
    """A ``*.toml`` or ``*.json`` file that is (or tries to be) a definition: files that parse
    but have none of the definition's top-level keys (schemas, driver fixtures, test suites)
    are not; files that do not parse are (and are reported)."""
    return path.suffix.lower() in (".toml", ".json") and _looks_like_definition(path)


def expand_paths(
    arguments: list[str],
    select: Callable[[Path], bool] = is_definition_file,
    *,
    select_named: bool = False,
) -> Expanded:
    """Files named, found under directories (those ``select`` picks), or matched by globs, in
    a stable order; with ``select_named`` a file named that ``select`` does not pick is left
    out too (``validate --definitions-only``: a pre-commit hook passes every ``*.toml``).

    A file named is read wherever it leads. Under a directory or a glob, a path that goes
    through a symbolic link (to a file or to a directory) is skipped: git stores links, so a
    pull request could otherwise have ``validate mobs/`` read a file anywhere on the runner
    and print its keys or lines.
    """
    found = Expanded()
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            under = _files_under(path, found, select)
            if not under and select is is_definition_file:
                raise NoDefinitionsError(
                    f"no definitions under '{argument}': no .toml or .json file there has "
                    "mob, id, profiles or flows at its top level",
                    hint="name the directory that holds your mob files (a check of nothing "
                    "never passes)",
                )
            for candidate in under:
                found.files.setdefault(candidate.resolve(), str(candidate))
        elif path.exists():
            if not select_named or select(path):
                found.files.setdefault(path.resolve(), argument)
        elif _GLOB_CHARS & set(argument):
            matches = sorted(glob.glob(argument, recursive=True))
            base = _literal_base(argument)
            files = [Path(m) for m in matches if Path(m).is_file() or Path(m).is_symlink()]
            if not files:
                raise PathNotFoundError(f"no file matches '{argument}'")
            for file in files:
                if _through_link(base, file):
                    found.skipped_links.append(str(file))
                elif file.is_file():
                    found.files.setdefault(file.resolve(), str(file))
        else:
            raise PathNotFoundError(
                f"path '{argument}' does not exist",
                hint="pass definition files, directories or quoted globs such as 'mobs/**/*.toml'",
            )
    found.skipped_links = sorted(set(found.skipped_links))
    return found


def _files_under(directory: Path, found: Expanded, select: Callable[[Path], bool]) -> list[Path]:
    """The files beneath ``directory`` that ``select`` picks, sorted; links are recorded in
    ``found`` and not followed (into a directory either); dot files and folders are skipped.
    """
    result = []
    for folder, folders, names in os.walk(directory):  # never into a linked directory
        here = Path(folder)
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in names:
            path = here / name
            if name.startswith(".") or path.suffix.lower() not in (".toml", ".json"):
                continue
            if path.is_symlink():
                found.skipped_links.append(str(path))
            elif path.is_file() and select(path):
                result.append(path)
        found.skipped_links += [str(here / name) for name in folders if (here / name).is_symlink()]
    return sorted(result)


def _literal_base(pattern: str) -> Path:
    """The part of a glob before its first wildcard: the user named that much."""
    parts: list[str] = []
    for part in Path(pattern).parts:
        if _GLOB_CHARS & set(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def _through_link(base: Path, match: Path) -> bool:
    """Whether ``match`` (found by a glob under ``base``) goes through a link below ``base``."""
    try:
        relative = match.relative_to(base)
    except ValueError:
        return False
    step = base
    for part in relative.parts:
        step = step / part
        if step.is_symlink():
            return True
    return False


def _looks_like_definition(path: Path) -> bool:
    try:
        data = read_regular(path)
        value: Any = (
            json.loads(data) if detect_format(path) == "json" else tomllib.loads(data.decode())
        )
    except (OSError, ValueError, RecursionError):
        return True
    return isinstance(value, dict) and bool({"mob", "id", "profiles", "flows"} & value.keys())


def allowed_roots(directories: Sequence[Path]) -> tuple[Path, ...]:
    """The ``--allow-path`` directories, each checked to be one: besides its own directory, the
    only places a definition's path skills and schema files may be read (definition-schema
    §4.7)."""
    for directory in directories:
        if not directory.is_dir():
            raise PathNotFoundError(
                f"--allow-path '{directory}' is not a directory",
                hint="--allow-path takes an existing directory whose files you trust",
            )
    return tuple(directories)


def validate(
    arguments: list[str],
    *,
    strict: bool = False,
    catalog: Path | None = None,
    allow_paths: Sequence[Path] = (),
    definitions_only: bool = False,
) -> ValidationRun:
    """Validate every definition the arguments name; a bad file never stops the others.

    ``allow_paths``: directories besides each definition's own that its paths may name;
    ``definitions_only``: a file named that is not a definition (fixtures, suites) is skipped,
    as under a directory (a pre-commit hook names every ``*.toml`` it sees)."""
    roots = allowed_roots(allow_paths)
    chosen = catalog_from(catalog)
    found = expand_paths(arguments, select_named=definitions_only)
    return ValidationRun(
        [
            validate_path(path, chosen, strict=strict, display=shown, allowed_roots=roots)
            for path, shown in found.files.items()
        ],
        found.skipped_links,
    )


def load_definition(path: Path) -> MobDefinition:
    """A definition that loads (phases 1-2); otherwise a DefinitionError listing why."""
    if not path.exists():
        raise PathNotFoundError(f"path '{path}' does not exist")
    loaded = load_file(path)
    if loaded.definition is None:
        first = next(d for d in loaded.diagnostics if d.severity == "error")
        where = f"{first.file}:{first.line}:{first.column}" if first.line else str(first.file)
        raise DefinitionError(
            f"{where}: {first.code}: {first.message}",
            hint=f"run `mobctl validate {path}` for every diagnostic",
        )
    return loaded.definition


def definition_schema() -> dict[str, Any]:
    """The JSON Schema of the TOML definition format."""
    from mobctl.definition.json_schema import definition_json_schema

    return definition_json_schema()


def graph(path: Path, flow: str | None, fmt: Literal["mermaid", "dot"]) -> str:
    from mobctl.definition.graph import render_graph

    definition = load_definition(path)
    return render_graph(definition, pick_flow(definition, flow), fmt)


def pick_flow(definition: MobDefinition, flow: str | None) -> str:
    """The named flow, else ``main``, else the only flow."""
    from mobctl.ids import shown_id

    flows = list(definition.flows)
    if flow is not None:
        if flow not in definition.flows:
            raise UnknownFlowError(
                f"mob '{definition.mob.id}' has no flow '{shown_id(flow)}'",
                hint=f"flows: {', '.join(flows) or '(none)'}",
            )
        return flow
    if "main" in definition.flows:
        return "main"
    if len(flows) == 1:
        return flows[0]
    raise UnknownFlowError(
        f"mob '{definition.mob.id}' has {len(flows)} flows and none is 'main'; name one",
        hint=f"flows: {', '.join(flows) or '(none)'}",
    )


def write_output(path: Path, text: str) -> None:
    """Write a command's output file; a bad path is a usage error, not a crash."""
    from mobctl.errors import OutputError

    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def convert(path: Path, to: Literal["json", "toml"]) -> str:
    from mobctl.definition.serialize import to_json_form, to_toml  # tomlkit: only here

    definition = load_definition(path)
    if to == "json":
        return json.dumps(to_json_form(definition), indent=2, ensure_ascii=False) + "\n"
    return to_toml(definition)


def register(
    store: Store,
    path: Path,
    *,
    expect_revision: int | None = None,
    catalog: Path | None = None,
    allow_paths: Sequence[Path] = (),
    strict: bool = False,
) -> Registration:
    """Validate a definition file and store it as its mob's next revision (nothing when the
    stored one is identical); ``allow_paths`` and ``strict`` (a warning refuses it) as for
    :func:`validate`."""
    found = candidate(path, catalog_from(catalog), allowed_roots(allow_paths), strict=strict)
    with writing(store, found.mob_id):
        return store_candidate(store, found, expect_revision=expect_revision)


def get_spec(store: Store, mob_id: str) -> SpecRecord:

    record = store.specs.get_spec(mob_id)
    if record is None:
        raise NotFound(
            f"no mob '{mob_id}' is registered in {store.location}",
            hint="`mobctl specs list` shows the registered mobs",
        )
    return record


def delete_spec(
    store: Store,
    mob_id: str,
    expect_revision: int | None,
    *,
    confirm: Callable[[str, int], bool] | None = None,
) -> int:
    """Delete a spec; returns the revision deleted. ``confirm(mob_id, revision)`` is asked
    first when given; False deletes nothing."""
    from mobctl.errors import CasConflict, ConfirmationRequired

    current = get_spec(store, mob_id)
    stale = expect_revision is not None and expect_revision != current.revision
    if not stale and confirm is not None and not confirm(mob_id, current.revision):
        raise ConfirmationRequired("not confirmed: nothing was deleted")
    if stale or not store.specs.delete_spec(mob_id, expect_revision):
        raise CasConflict(
            f"mob '{mob_id}' is at revision {current.revision}, not {expect_revision}",
            hint=f"re-read it and pass --expect-revision {current.revision}",
        )
    return current.revision


@dataclass(frozen=True)
class ProfileFile:
    """A realm profile file, read and checked: the profile as stored, and its warnings."""

    profile: dict[str, Any]
    warnings: list[Diagnostic]
    text: str  # as read (for the caret under each diagnostic)


class InvalidProfileError(DefinitionError):
    """A realm profile file with errors; ``diagnostics`` locates each (the CLI prints them)."""

    def __init__(self, path: Path, diagnostics: list[Diagnostic], text: str) -> None:
        errors = sum(1 for d in diagnostics if d.severity == "error")
        super().__init__(
            f"{path} has {errors} error(s); nothing was stored",
            hint='a realm profile is an inline profile table: model = "...", tools, skills, ...',
        )
        self.diagnostics = diagnostics
        self.source_text = text


def read_profile_file(path: Path) -> ProfileFile:
    """An inline profile (definition-schema §4.3) from a TOML or JSON file, checked: every
    problem is a located diagnostic (:class:`InvalidProfileError` when one is an error)."""
    from mobctl.definition.profile_file import load_profile

    if not path.exists():
        raise PathNotFoundError(f"path '{path}' does not exist")
    try:
        text = read_regular(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"cannot read profile {path}: {exc}") from exc
    profile, diagnostics = load_profile(text, detect_format(path), str(path))
    if profile is None:
        raise InvalidProfileError(path, diagnostics, text)
    stored = profile.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    return ProfileFile(stored | {"model": profile.model}, diagnostics, text)


def registered_definition(store: Store, mob_id: str) -> MobDefinition:
    """The stored definition of a registered mob."""
    record = get_spec(store, mob_id)
    return stored_definition(record.mob_id, record.definition)


def copy_spec(source: Store, target: Store, mob_id: str) -> Registration:
    """Register in ``target`` the definition ``source`` holds for ``mob_id``, with its file
    copies and the realm profiles it refers to that ``target`` lacks (``mobctl test`` runs a
    registered mob in a store of its own). ``source`` is only read."""
    from mobctl.api.registration import Candidate
    from mobctl.definition.model import RealmProfileRef
    from mobctl.ids import require_slug
    from mobctl.store.models import SpecSource

    record = get_spec(source, require_slug(mob_id, "mob id"))
    definition = stored_definition(record.mob_id, record.definition)
    for binding in definition.profiles.values():
        name = binding.realm_profile if isinstance(binding, RealmProfileRef) else None
        stored = source.profiles.get(name) if name else None
        if name and stored is not None and target.profiles.get(name) is None:
            target.profiles.create(name, stored.profile)
    found = Candidate(
        mob_id=record.mob_id,
        definition=definition,
        form=record.definition,
        digest=record.digest,
        resources=record.resources,
        source=record.source or SpecSource(path=f"{source.location}", format="json", text=""),
        warnings=[],
    )
    with writing(target, record.mob_id):
        return store_candidate(target, found)
