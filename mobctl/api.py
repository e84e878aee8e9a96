"""One function per user action: the Python API the CLI calls.

Nothing here prints or exits; errors are :class:`mobctl.errors.MobctlError` subclasses.
"""

from __future__ import annotations

import glob
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mobctl.definition.loader import detect_format, load_file
from mobctl.definition.model import MobDefinition
from mobctl.diagnostics import Diagnostic
from mobctl.errors import DefinitionError, PathNotFoundError, UnknownFlowError
from mobctl.validation.catalog import Catalog, bundled_catalog, load_catalog
from mobctl.validation.validate import Report, validate_path

if TYPE_CHECKING:
    from mobctl.registry import Registration
    from mobctl.store.check import CheckReport
    from mobctl.store.checkpoints import Sealed
    from mobctl.store.directory import DirectoryStore
    from mobctl.store.locks import WaitCallback
    from mobctl.store.models import SpecRecord
    from mobctl.store.signatures import SignatureReport
    from mobctl.store.supervisor import SupervisorView

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class ValidationRun:
    reports: list[Report]

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


def expand_paths(arguments: list[str]) -> list[tuple[Path, str]]:
    """Files named, found under directories, or matched by globs, in a stable order."""
    found: dict[Path, str] = {}
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            for candidate in sorted(_definitions_under(path)):
                found.setdefault(candidate.resolve(), str(candidate))
        elif path.exists():
            found.setdefault(path.resolve(), argument)
        elif _GLOB_CHARS & set(argument):
            matches = sorted(glob.glob(argument, recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file()]
            if not files:
                raise PathNotFoundError(f"no file matches '{argument}'")
            for file in files:
                found.setdefault(file.resolve(), str(file))
        else:
            raise PathNotFoundError(
                f"path '{argument}' does not exist",
                hint="pass definition files, directories or quoted globs such as 'mobs/**/*.toml'",
            )
    return list(found.items())


def _definitions_under(directory: Path) -> list[Path]:
    """``*.toml`` and ``*.json`` beneath ``directory`` that are (or try to be) definitions.

    Files that parse but have none of the definition's top-level keys (schemas, driver
    fixtures) are not definitions; files that do not parse are reported.
    """
    result = []
    for path in directory.rglob("*"):
        if path.suffix.lower() not in (".toml", ".json") or not path.is_file():
            continue
        if any(part.startswith(".") for part in path.relative_to(directory).parts):
            continue
        if _looks_like_definition(path):
            result.append(path)
    return result


def _looks_like_definition(path: Path) -> bool:
    try:
        data = path.read_bytes()
        value: Any = (
            json.loads(data) if detect_format(path) == "json" else tomllib.loads(data.decode())
        )
    except (OSError, ValueError, RecursionError):
        return True
    return isinstance(value, dict) and bool({"mob", "id", "profiles", "flows"} & value.keys())


def validate(
    arguments: list[str], *, strict: bool = False, catalog: Path | None = None
) -> ValidationRun:
    """Validate every definition the arguments name; a bad file never stops the others."""
    chosen = catalog_from(catalog)
    files = expand_paths(arguments)
    return ValidationRun(
        [validate_path(path, chosen, strict=strict, display=shown) for path, shown in files]
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
    flows = list(definition.flows)
    if flow is not None:
        if flow not in definition.flows:
            raise UnknownFlowError(
                f"mob '{definition.mob.id}' has no flow '{flow}'",
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


# --- the store ------------------------------------------------------------------------------


def open_store(
    location: Path,
    *,
    lock_timeout: float = 10.0,
    on_wait: WaitCallback | None = None,
    passphrase: str | None = None,
) -> DirectoryStore:
    """The directory store at ``location``; ``passphrase`` encrypts supervisor secrets."""
    from mobctl.store.directory import DirectoryStore

    return DirectoryStore(
        location, lock_timeout=lock_timeout, on_wait=on_wait, passphrase=passphrase
    )


def store_init(store: DirectoryStore) -> bool:
    """Create the store (idempotent); True when it was created now."""
    return store.prepare()


def store_check(store: DirectoryStore, *, repair: bool) -> CheckReport:
    from mobctl.store.check import check_store

    return check_store(store, repair=repair)


def register(
    store: DirectoryStore,
    path: Path,
    *,
    expect_revision: int | None = None,
    catalog: Path | None = None,
) -> Registration:
    from mobctl.registry import register as register_definition

    if not path.exists():
        raise PathNotFoundError(f"path '{path}' does not exist")
    result = register_definition(
        store, path, catalog_from(catalog), expect_revision=expect_revision
    )
    repair_mob(store, result.mob_id)
    return result


def repair_mob(store: DirectoryStore, mob_id: str) -> list[str]:
    """Done by every writing command when it opens a mob (store contract §8.9): re-append the
    missing terminal event of each terminal run, exactly once; the run ids repaired."""
    from mobctl.store.repair import repair_terminal_events

    return repair_terminal_events(store, mob_id)


def get_spec(store: DirectoryStore, mob_id: str) -> SpecRecord:
    from mobctl.errors import NotFound

    record = store.specs.get_spec(mob_id)
    if record is None:
        raise NotFound(
            f"no mob '{mob_id}' is registered in {store.root}",
            hint="`mobctl specs list` shows the registered mobs",
        )
    return record


def delete_spec(store: DirectoryStore, mob_id: str, expect_revision: int | None) -> int:
    """Delete a spec; returns the revision deleted."""
    from mobctl.errors import CasConflict

    current = get_spec(store, mob_id)
    if not store.specs.delete_spec(mob_id, expect_revision):
        raise CasConflict(
            f"mob '{mob_id}' is at revision {current.revision}, not {expect_revision}",
            hint=f"re-read it and pass --expect-revision {current.revision}",
        )
    return current.revision


def read_profile_file(path: Path) -> dict[str, Any]:
    """An inline profile (definition-schema §4.3) from a TOML or JSON file, validated."""
    from pydantic import ValidationError

    from mobctl.definition.model import InlineProfile

    if not path.exists():
        raise PathNotFoundError(f"path '{path}' does not exist")
    try:
        text = path.read_text("utf-8")
        data = json.loads(text) if detect_format(path) == "json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DefinitionError(f"cannot read profile {path}: {exc}") from exc
    try:
        profile = InlineProfile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "profile"
        raise DefinitionError(
            f"{path}: {where}: {err['msg']}",
            hint='a realm profile is an inline profile table: model = "...", tools, skills, ...',
        ) from exc
    return profile.model_dump(mode="json", exclude_none=True, exclude_defaults=True) | {
        "model": profile.model
    }


def registered_definition(store: DirectoryStore, mob_id: str) -> MobDefinition:
    """The stored definition of a registered mob."""
    return _definition_of(get_spec(store, mob_id))


def _definition_of(record: SpecRecord) -> MobDefinition:
    from mobctl.definition.loader import load_text

    shown = f"specs/{record.mob_id}.json"
    loaded = load_text(json.dumps(record.definition), "json", shown, Path("."))
    if loaded.definition is None:
        from mobctl.errors import StoreCorrupt

        raise StoreCorrupt(f"the stored definition of mob '{record.mob_id}' no longer loads")
    return loaded.definition


def parse_params(pairs: list[str], document: str | None) -> dict[str, Any]:
    """``--params JSON|@file.json`` then ``-p KEY=VALUE`` (JSON when it parses, else a string)."""
    from mobctl.errors import UsageError

    params: dict[str, Any] = {}
    if document:
        text = document
        if document.startswith("@"):
            try:
                text = Path(document[1:]).read_text("utf-8")
            except OSError as exc:
                raise UsageError(f"cannot read params file {document[1:]}: {exc.strerror}") from exc
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"--params is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise UsageError("--params must be a JSON object")
        params.update(value)
    for pair in pairs:
        key, equals, raw = pair.partition("=")
        if not equals or not key:
            raise UsageError(f"-p takes KEY=VALUE, not {pair!r}")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def parse_duration_ms(text: str) -> int:
    """``500ms``, ``30s``, ``5m``, ``1h`` or a bare number of seconds."""
    from mobctl.errors import UsageError

    units = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return int(float(text[: -len(unit)]) * units[unit])
    if text.replace(".", "", 1).isdigit():
        return int(float(text) * 1000)
    raise UsageError(f"invalid duration {text!r}", hint="use e.g. 500ms, 30s, 5m or 1h")


def prepare_run(
    store: DirectoryStore, target: str, flow: str | None, *, catalog: Path | None = None
) -> tuple[MobDefinition, str, int, dict[str, Any], Path]:
    """(definition, flow id, spec revision, schema copies, base dir) for a mob id or a file.

    A file is validated and registered first (a new revision only if it changed)."""
    path = Path(target)
    if path.suffix.lower() in (".toml", ".json") or path.exists():
        result = register(store, path, catalog=catalog)
        mob_id = result.mob_id
    else:
        from mobctl.ids import require_slug

        mob_id = require_slug(target, "mob id")
        repair_mob(store, mob_id)  # (register did it for a file)
    record = get_spec(store, mob_id)
    definition = _definition_of(record)
    base_dir = Path(record.source.path).parent if record.source else Path(".")
    return (
        definition,
        pick_flow(definition, flow),
        record.revision,
        dict(record.resources.schemas),
        base_dir,
    )


# --- the supervisor authority and signed checkpoints ----------------------------------------


@dataclass(frozen=True)
class SupervisorChange:
    """What ``supervisor init`` / ``rotate`` did, and the authority now (never the secret)."""

    action: Literal["created", "rotated"]
    previous_epoch: int | None
    operation_id: str | None  # the rotation's operation id
    resumed: bool  # the rotation completed one an interrupted process had begun
    view: SupervisorView

    def document(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "previous_epoch": self.previous_epoch,
            "operation_id": self.operation_id,
            "resumed": self.resumed,
            **self.view.document(),
        }


def supervisor_init(store: DirectoryStore, mob_id: str, *, force: bool = False) -> SupervisorChange:
    """A new authority (epoch 0, fresh key) for a registered mob; ``force`` rotates an
    existing one instead of refusing."""
    from mobctl.errors import SupervisorExistsError
    from mobctl.store import supervisor

    get_spec(store, mob_id)
    if supervisor.create(store, mob_id) is not None:
        return SupervisorChange("created", None, None, False, supervisor.describe(store, mob_id))
    if not force:
        raise SupervisorExistsError(
            f"mob '{mob_id}' already has a supervisor authority",
            hint=f"rotate its key with `mobctl supervisor rotate {mob_id}` (or init --force)",
        )
    return supervisor_rotate(store, mob_id)


def supervisor_rotate(
    store: DirectoryStore, mob_id: str, *, between_steps: Callable[[], None] | None = None
) -> SupervisorChange:
    """Rotate to a fresh key at the next epoch, or complete an interrupted rotation."""
    from mobctl.ids import require_slug
    from mobctl.store import supervisor

    rotation = supervisor.rotate(store, require_slug(mob_id, "mob id"), between_steps=between_steps)
    return SupervisorChange(
        "rotated",
        rotation.previous.epoch,
        rotation.operation_id,
        rotation.resumed,
        supervisor.describe(store, mob_id),
    )


def supervisor_show(store: DirectoryStore, mob_id: str) -> SupervisorView:
    from mobctl.ids import require_slug
    from mobctl.store import supervisor

    return supervisor.describe(store, require_slug(mob_id, "mob id"))


def seal(store: DirectoryStore, mob_id: str) -> Sealed:
    """Sign the head of the mob's event log now (``mobctl events seal``)."""
    from mobctl.ids import require_slug
    from mobctl.store import checkpoints

    return checkpoints.seal(store, require_slug(mob_id, "mob id"))


def verify_signatures(store: DirectoryStore, mob_id: str) -> SignatureReport:
    """The event log against its signed checkpoints (``mobctl events verify --signatures``)."""
    from mobctl.ids import require_slug
    from mobctl.store import signatures

    return signatures.verify_signatures(store, require_slug(mob_id, "mob id"))
