"""Registering definitions in a store (``mobctl register``, and ``run FILE``) and reading them
back.

Registration validates first, stores the Meerkat JSON form as the next revision with the files
it references (schemas, path skills) so later runs do not depend on the working directory, and
appends ``mob_created`` (first revision) or ``mob_definition_updated``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobctl.definition.files import DefinitionFiles
from mobctl.definition.loader import load_text
from mobctl.definition.model import MobDefinition, PathSkill
from mobctl.definition.schemas import NamedSchema, parse_schema_ref
from mobctl.definition.serialize import to_json_form
from mobctl.diagnostics import Diagnostic
from mobctl.errors import (
    CasConflict,
    DefinitionError,
    PathNotFoundError,
    SpecRevisionConflict,
    StoreCorrupt,
)
from mobctl.ids import require_slug
from mobctl.store.contract import Store
from mobctl.store.models import NewMobEvent, SpecResources, SpecSource, definition_digest
from mobctl.store.repair import definition_event
from mobctl.validation.catalog import Catalog
from mobctl.validation.validate import Report, validate_path


class InvalidDefinitionError(DefinitionError):
    """The definition has errors; ``diagnostics`` says which (the CLI prints them)."""

    def __init__(self, report: Report) -> None:
        super().__init__(
            f"{report.path} has {report.errors} error(s); nothing was registered",
            hint=f"run `mobctl validate {report.path}` for the diagnostics",
        )
        self.diagnostics: list[Diagnostic] = report.diagnostics
        self.source_text = report.loaded.text or ""  # for the caret under each diagnostic


@dataclass(frozen=True)
class Registration:
    """What ``register`` stored, or found stored identical: the revision this command's
    definition is, with the definition and the file copies as this command read them (so a
    run pinned to it runs exactly this file, whatever other processes register meanwhile)."""

    mob_id: str
    revision: int
    digest: str
    changed: bool
    warnings: list[Diagnostic]
    definition: MobDefinition
    resources: SpecResources
    source_text: str = ""  # the file as read (for the caret under each warning)


@dataclass(frozen=True)
class Candidate:
    """A definition file validated and read, ready to be stored: its JSON form, digest, the
    copies of the files it names, where it came from, and validate's warnings."""

    mob_id: str
    definition: MobDefinition
    form: dict[str, Any]
    digest: str
    resources: SpecResources
    source: SpecSource
    warnings: list[Diagnostic]


def candidate(
    path: Path, catalog: Catalog, allowed_roots: tuple[Path, ...] = (), *, strict: bool = False
) -> Candidate:
    """Validate ``path`` (errors, and with ``strict`` warnings too:
    :class:`InvalidDefinitionError`) and read what registering it stores. Its files are read
    only inside its directory and ``allowed_roots`` (definition-schema §4.7)."""
    if not path.exists():
        raise PathNotFoundError(f"path '{path}' does not exist")
    report = validate_path(path, catalog, strict=strict, allowed_roots=allowed_roots)
    if not report.valid or report.definition is None:
        raise InvalidDefinitionError(report)
    definition = report.definition
    form = to_json_form(definition)
    base_dir = path.resolve().parent
    loaded = report.loaded.document
    return Candidate(
        mob_id=require_slug(definition.mob.id, "mob id"),
        definition=definition,
        form=form,
        digest=definition_digest(form),
        resources=_resources(definition, DefinitionFiles(base_dir, allowed_roots)),
        source=SpecSource(
            path=str(path.resolve()),
            format=loaded.format if loaded else "toml",
            text=loaded.text if loaded else "",
        ),
        warnings=[d for d in report.diagnostics if d.severity == "warning"],
    )


def store_candidate(
    store: Store, found: Candidate, *, expect_revision: int | None = None
) -> Registration:
    """Store ``found`` as the mob's next revision, unless the stored revision is identical
    (same definition, same copied files). With ``expect_revision`` the stored revision must be
    that one (``SpecRevisionConflict``); without it a registration racing another one looks
    again, so concurrent registrations of one file both succeed."""
    mob_id, form, digest, resources = found.mob_id, found.form, found.digest, found.resources
    log = store.events(mob_id)

    def event(revision: int) -> NewMobEvent:
        return definition_event(mob_id, revision, digest, form)

    def registered(revision: int, changed: bool) -> Registration:
        stored = stored_definition(mob_id, form)
        return Registration(
            mob_id, revision, digest, changed, found.warnings, stored, resources, found.source.text
        )

    for _ in range(_ATTEMPTS):
        current = store.specs.get_spec(mob_id)
        actual = current.revision if current else 0
        if expect_revision is not None and expect_revision != actual:
            raise SpecRevisionConflict(mob_id, expect_revision, actual)
        if current is not None and current.digest == digest and current.resources == resources:
            return registered(actual, False)
        # the spec and its event must agree: refuse an event over the record cap first
        log.check_fits(event(actual + 1))
        try:
            revision = store.specs.put_spec(
                mob_id,
                form,
                actual,
                source=found.source,
                resources=resources,
                then=lambda revision: log.append(event(revision)),
            )
        except SpecRevisionConflict:
            if expect_revision is not None:
                raise
            continue  # registered meanwhile: identical now, or ours goes on top
        return registered(revision, True)
    raise CasConflict(
        f"mob '{mob_id}' is being registered by other processes without pause; try again"
    )


_ATTEMPTS = 20


def stored_definition(mob_id: str, form: dict[str, Any]) -> MobDefinition:
    """The definition as stored (its JSON form, loaded): what runs run and resume, so a run
    of a file and its resume see the same definition (and the same flow digest)."""
    loaded = load_text(json.dumps(form), "json", f"specs/{mob_id}.json", Path("."))
    if loaded.definition is None:
        raise StoreCorrupt(f"the stored definition of mob '{mob_id}' no longer loads")
    return loaded.definition


def _resources(definition: MobDefinition, files: DefinitionFiles) -> SpecResources:
    """Copies of the named schemas and path skills, keyed as the definition names them.

    Read through ``files`` as validation read them: a file that cannot be read (a warning) is
    left out, and one outside ``files`` is never read (an error, refused before this)."""
    schemas: dict[str, Any] = {}
    for flow in definition.flows.values():
        for step in flow.steps.values():
            ref = parse_schema_ref(step.expected_schema_ref) if step.expected_schema_ref else None
            if isinstance(ref, NamedSchema):
                try:
                    schemas[ref.name] = json.loads(files.read_text(ref.name))
                except (OSError, ValueError):
                    continue  # validated as a warning; `run` fails the step if still missing
    skills: dict[str, str] = {}
    for skill in definition.skills.values():
        if isinstance(skill, PathSkill):
            try:
                skills[skill.path] = files.read_text(skill.path)
            except (OSError, ValueError):
                continue
    return SpecResources(schemas=schemas, skills=skills)
