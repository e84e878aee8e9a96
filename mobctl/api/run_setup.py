"""What a run needs before anything is written: the definition it runs (a file validated but
not stored yet, or a registered revision), the resolved profile of every role it gives turns
to, and the drivers' preflight (a missing SDK extra or credential is reported here, before a
spec, a member or a run is written)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobctl.api.definitions import catalog_from, get_spec
from mobctl.api.registration import (
    Candidate,
    Registration,
    candidate,
    store_candidate,
    stored_definition,
)
from mobctl.definition.model import MobDefinition
from mobctl.drivers.base import Drivers, TurnProfile
from mobctl.engine.profiles import flow_roles, missing_skills, run_profiles
from mobctl.engine.turns import MAX_CONCURRENCY
from mobctl.errors import NotFound, UsageError
from mobctl.ids import require_slug
from mobctl.store.contract import Store
from mobctl.store.models import SpecResources
from mobctl.validation.catalog import Catalog


@dataclass(frozen=True)
class RunTarget:
    """The definition a run runs, with the file copies made at registration. ``pending`` is a
    definition file validated and read but not stored yet (:meth:`register` stores it)."""

    definition: MobDefinition
    resources: SpecResources
    revision: int
    pending: Candidate | None = None

    def register(
        self, store: Store, on_registered: Callable[[Registration], None] | None = None
    ) -> RunTarget:
        """The target once stored (a new revision only if the file changed); ``on_registered``
        hears what was stored (its warnings, whether it changed)."""
        if self.pending is None:
            return self
        stored = store_candidate(store, self.pending)
        if on_registered is not None:
            on_registered(stored)
        return RunTarget(stored.definition, stored.resources, stored.revision)


def file_target(
    path: Path, catalog: Catalog, roots: tuple[Path, ...], *, strict: bool = False
) -> RunTarget:
    """A definition file, validated and read (nothing written); with ``strict`` a warning
    refuses it too."""
    found = candidate(path, catalog, roots, strict=strict)
    definition = stored_definition(found.mob_id, found.form)  # as the run will see it
    return RunTarget(definition, found.resources, 0, pending=found)


def stored_target(store: Store, mob_id: str) -> RunTarget:
    """A registered mob's current revision."""
    try:
        record = get_spec(store, require_slug(mob_id, "mob id"))
    except NotFound as exc:
        if _exists(Path(mob_id)):
            exc.hint = f"to run the file '{mob_id}', write it as ./{mob_id}"
        raise
    definition = stored_definition(record.mob_id, record.definition)
    return RunTarget(definition, record.resources, record.revision)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long, a NUL
        return False


def profiles(
    store: Store, target: RunTarget, flow_id: str, catalog: Path | None = None
) -> tuple[dict[str, TurnProfile], list[str]]:
    """Each role's resolved profile for a run of ``flow_id`` (role -> profile), with the
    catalogue ``validate`` uses (``catalog``, else the bundled one); and warnings about them
    (a path skill whose file had no stored copy)."""
    definition = target.definition
    realm: dict[str, dict[str, Any]] = {}
    for role in flow_roles(definition, flow_id):
        name = getattr(definition.profiles.get(role), "realm_profile", None)
        stored = store.profiles.get(name) if isinstance(name, str) else None
        if stored is not None:
            realm[stored.name] = dict(stored.profile)
    copies = target.resources.skills
    resolved = run_profiles(
        definition,
        flow_id,
        realm_profiles=realm,
        catalog=catalog_from(catalog),
        skill_copies=copies,
    )
    return resolved, missing_skills(definition, flow_id, realm_profiles=realm, skill_copies=copies)


@contextmanager
def held(drivers: Drivers) -> Iterator[Drivers]:
    """The drivers for the length of the run: closed (their clients, MCP servers, event loop)
    however it ends, from the preflight on (which may already open clients)."""
    try:
        yield drivers
    finally:
        drivers.close()


def preflight(
    drivers: Drivers,
    resolved: dict[str, TurnProfile],
    on_note: Callable[[str], None] | None,
    warnings: Sequence[str] = (),
) -> None:
    """The drivers' checks of the profiles they serve (raising when the run cannot work);
    each warning (theirs, then ``warnings``) is shown once, as a note."""
    for warning in [*drivers.preflight(resolved), *warnings]:
        if on_note is not None:
            on_note(f"warning: {warning}")


def concurrency(value: int) -> int:
    """``--max-concurrency``: 1 to :data:`MAX_CONCURRENCY` turns in flight."""
    if not 1 <= value <= MAX_CONCURRENCY:
        raise UsageError(
            f"--max-concurrency must be between 1 and {MAX_CONCURRENCY}, not {value}",
            hint="the default is 16 turns in flight per run",
        )
    return value
