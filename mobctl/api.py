"""One function per user action: the Python API the CLI calls.

Nothing here prints or exits; errors are :class:`mobctl.errors.MobctlError` subclasses.
"""

from __future__ import annotations

import glob
import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mobctl.definition.loader import detect_format, load_file
from mobctl.definition.model import MobDefinition
from mobctl.diagnostics import Diagnostic
from mobctl.errors import DefinitionError, PathNotFoundError, UnknownFlowError
from mobctl.validation.catalog import Catalog, bundled_catalog, load_catalog
from mobctl.validation.validate import Report, validate_path

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from datetime import datetime

    from mobctl.errors import StoreCorrupt
    from mobctl.events import EventQuery
    from mobctl.registry import Registration
    from mobctl.store.checkpoints import Sealed
    from mobctl.store.contract import LogProblem
    from mobctl.store.directory import DirectoryStore
    from mobctl.store.directory.check import CheckReport
    from mobctl.store.directory.eventlog import DirectoryEventStore
    from mobctl.store.directory.locks import WaitCallback
    from mobctl.store.models import MobEvent, SpecRecord
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
) -> ValidationRun:
    """Validate every definition the arguments name; a bad file never stops the others.

    ``allow_paths``: directories besides each definition's own that its paths may name."""
    roots = allowed_roots(allow_paths)
    chosen = catalog_from(catalog)
    files = expand_paths(arguments)
    return ValidationRun(
        [
            validate_path(path, chosen, strict=strict, display=shown, allowed_roots=roots)
            for path, shown in files
        ]
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


# --- the store ------------------------------------------------------------------------------


def open_store(
    location: Path,
    *,
    lock_timeout: float = 10.0,
    on_wait: WaitCallback | None = None,
    passphrase: str | None = None,
    max_record_bytes: str | None = None,
) -> DirectoryStore:
    """The directory store at ``location``; ``passphrase`` encrypts supervisor secrets;
    ``max_record_bytes`` (``MOBCTL_MAX_RECORD_BYTES``) caps an event line or a run change."""
    from mobctl.store.directory import DEFAULT_MAX_RECORD_BYTES, DirectoryStore

    cap = DEFAULT_MAX_RECORD_BYTES
    if max_record_bytes:
        from mobctl.errors import UsageError

        if not max_record_bytes.isdigit() or int(max_record_bytes) < MIN_RECORD_BYTES:
            raise UsageError(
                f"MOBCTL_MAX_RECORD_BYTES must be a number of bytes of at least "
                f"{MIN_RECORD_BYTES}, not {max_record_bytes!r}"
            )
        cap = int(max_record_bytes)
    return DirectoryStore(
        location,
        lock_timeout=lock_timeout,
        on_wait=on_wait,
        passphrase=passphrase,
        max_record_bytes=cap,
    )


MIN_RECORD_BYTES = 16 * 1024  # room for the engine's own records around an output


def store_init(store: DirectoryStore) -> bool:
    """Create the store (idempotent); True when it was created now."""
    return store.prepare()


def store_check(store: DirectoryStore, *, repair: bool) -> CheckReport:
    from mobctl.store.directory.check import check_store

    return check_store(store, repair=repair)


def register(
    store: DirectoryStore,
    path: Path,
    *,
    expect_revision: int | None = None,
    catalog: Path | None = None,
    allow_paths: Sequence[Path] = (),
) -> Registration:
    """Validate and store a definition; ``allow_paths`` as for :func:`validate`."""
    from mobctl.registry import register as register_definition

    roots = allowed_roots(allow_paths)
    if not path.exists():
        raise PathNotFoundError(f"path '{path}' does not exist")
    result = register_definition(
        store, path, catalog_from(catalog), expect_revision=expect_revision, allowed_roots=roots
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
    from mobctl.registry import stored_definition

    return stored_definition(record.mob_id, record.definition)


def unstorable_params(params: dict[str, Any]) -> None:
    """``UsageError`` when the store could not write ``params`` (a lone surrogate, from bytes
    that are not UTF-8; nesting too deep), as ``FlowRunner.create`` judges them."""
    from mobctl.engine.outputs import MalformedOutput, ensure_storable
    from mobctl.errors import UsageError

    try:
        ensure_storable(params)
    except MalformedOutput as exc:
        raise UsageError(
            f"the run's params cannot be stored: {exc}", hint="pass params as UTF-8 text"
        ) from None


def parse_params(pairs: list[str], document: str | None) -> dict[str, Any]:
    """``--params JSON|@file.json`` then ``-p KEY=VALUE`` (JSON when it parses, else a string)."""
    from mobctl.canonical import OutOfRangeNumber, strict_json
    from mobctl.errors import UsageError

    params: dict[str, Any] = {}
    if document:
        text = document
        if document.startswith("@"):
            try:
                text = Path(document[1:]).read_text("utf-8")
            except OSError as exc:
                raise UsageError(f"cannot read params file {document[1:]}: {exc.strerror}") from exc
            except UnicodeDecodeError as exc:
                raise UsageError(f"params file {document[1:]} is not UTF-8: {exc}") from exc
            except ValueError:  # a NUL in the name: no file can have it
                raise UsageError(f"cannot read params file {document[1:]!r}") from None
        try:
            value = strict_json(text)
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
            params[key] = strict_json(raw)
        except OutOfRangeNumber as exc:  # valid JSON, meant as a number: text would surprise
            raise UsageError(
                f"-p {key}: {exc}", hint="to pass it as text, quote it: -p 'KEY=\"VALUE\"'"
            ) from exc
        except ValueError:
            params[key] = raw
    unstorable_params(params)  # before anything is written, even the definition
    return params


_DURATION = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ms|s|m|h|d)?")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MAX_DURATION_MS = 36_500 * 86_400_000  # 100 years: a longer deadline is a typo


def _duration_ms(text: str, *, unit_required: bool = False) -> Decimal | None:
    """The exact milliseconds of a duration, however large (no float to overflow); None when
    ``text`` is not one."""
    match = _DURATION.fullmatch(text)
    if match is None or (unit_required and match[2] is None):
        return None
    return Decimal(match[1]) * _UNIT_MS[match[2] or "s"]


def parse_duration_ms(text: str) -> int:
    """``500ms``, ``30s``, ``5m``, ``1h``, ``1d`` or a bare number of seconds, up to 100
    years."""
    from mobctl.errors import UsageError
    from mobctl.ids import shown_id

    hint = "use e.g. 500ms, 30s, 5m, 1h or 1d"
    milliseconds = _duration_ms(text)
    if milliseconds is None:
        raise UsageError(f"invalid duration {shown_id(text)!r}", hint=hint)
    if milliseconds > MAX_DURATION_MS:
        raise UsageError(
            f"invalid duration {shown_id(text)!r}: longer than 100 years (36500d)", hint=hint
        )
    return int(milliseconds)


def _is_file_target(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long, a NUL: not a file, maybe not an id either
        return False


def prepare_run(
    store: DirectoryStore,
    target: str,
    flow: str | None,
    *,
    catalog: Path | None = None,
    allow_paths: Sequence[Path] = (),
) -> tuple[MobDefinition, str, int, dict[str, Any], Path]:
    """(definition, flow id, spec revision, schema copies, base dir) for a mob id or a file.

    A file is validated and registered first (a new revision only if it changed), its paths
    allowed in ``allow_paths`` as for :func:`validate`, and the run is pinned to the revision
    this command registered or found identical: it runs that file, whatever other processes
    register meanwhile. A mob id runs its current revision. The runner reads a schema file
    that was not copied under the same path rule."""
    path = Path(target)
    allowed_roots(allow_paths)  # a usage error before anything else, for a mob id too
    if path.suffix.lower() in (".toml", ".json") or _is_file_target(path):
        result = register(store, path, catalog=catalog, allow_paths=allow_paths)
        return (
            result.definition,
            pick_flow(result.definition, flow),
            result.revision,
            dict(result.resources.schemas),
            result.base_dir,
        )
    from mobctl.ids import require_slug

    mob_id = require_slug(target, "mob id")
    repair_mob(store, mob_id)  # (register does it for a file)
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

    mob_id = require_slug(mob_id, "mob id")
    repair_mob(store, mob_id)  # a writing command (§8.9): the repaired event gets signed too
    return checkpoints.seal(store, mob_id)


def verify_signatures(
    store: DirectoryStore, mob_id: str, *, peer_id: str | None = None
) -> SignatureReport:
    """The event log against its signed checkpoints (``mobctl events verify --signatures``),
    with ``peer_id`` (if given) a supervisor key the authority history must vouch for."""
    import uuid

    from mobctl.errors import UsageError
    from mobctl.ids import require_slug
    from mobctl.store import signatures

    mob_id = require_slug(mob_id, "mob id")
    anchor = None
    if peer_id is not None:
        try:
            anchor = str(uuid.UUID(peer_id))
        except ValueError:
            raise UsageError(
                f"--peer-id {peer_id[:64]!r} is not a peer id",
                hint="give the public_peer_id that `mobctl supervisor show` prints (a UUID)",
            ) from None
    return signatures.verify_signatures(store, mob_id, anchor=anchor)


# --- events ---------------------------------------------------------------------------------

_TYPE_PATTERN = re.compile(r"[a-z0-9_*?\[\]!-]+")


def parse_time(text: str, option: str, *, now: datetime | None = None) -> datetime:
    """RFC 3339 (UTC when it has no offset), or a duration (``10m``, ``2h``, ``1d``) before now."""
    from datetime import UTC, datetime, timedelta

    from mobctl.clock import now as clock
    from mobctl.clock import parse_timestamp
    from mobctl.errors import UsageError

    ago = _duration_ms(text, unit_required=True)
    if ago is not None:
        try:
            return (now or clock()) - timedelta(milliseconds=int(ago))
        except OverflowError:  # further back than a datetime goes: the beginning of time
            return datetime.min.replace(tzinfo=UTC)
    try:
        return parse_timestamp(text)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is neither a time nor a duration",
            hint="use RFC 3339 (2026-05-01T12:00:00Z) or a duration before now (30s, 10m, 2h, 1d)",
        ) from None


def event_query(
    *,
    run: str | None = None,
    step: str | None = None,
    types: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    now: datetime | None = None,
) -> EventQuery:
    """The filters of ``events tail``: ``types`` are comma-separated globs over event types."""
    from mobctl.errors import UsageError
    from mobctl.events import EventQuery

    patterns = tuple(p.strip() for value in types or [] for p in value.split(","))
    for pattern in patterns:
        if not _TYPE_PATTERN.fullmatch(pattern):
            shown = "an empty pattern" if not pattern else f"the pattern {pattern!r}"
            raise UsageError(
                f"--type has {shown}; event types are lowercase letters, digits and '_'",
                hint="patterns may use * ? [...], comma-separated: --type 'flow_*,step_failed'",
            )
    start = parse_time(since, "--since", now=now) if since else None
    end = parse_time(until, "--until", now=now) if until else None
    if start is not None and end is not None and start > end:
        raise UsageError(f"--since {since} is after --until {until}: nothing can match")
    return EventQuery(run_id=run, step_id=step, types=patterns, since=start, until=end)


def mob_events(store: DirectoryStore, mob_id: str) -> DirectoryEventStore:
    """The event log of a mob the store knows (a spec, events or runs); else NotFound."""
    from mobctl.errors import NotFound
    from mobctl.ids import require_slug

    require_slug(mob_id, "mob id")
    if mob_id not in store.mob_ids():
        raise NotFound(
            f"no mob '{mob_id}' in the store {store.root}",
            hint="`mobctl specs list` shows the registered mobs",
        )
    return store.events(mob_id)


def events_tail(
    store: DirectoryStore,
    mob_id: str,
    query: EventQuery,
    *,
    after_cursor: int | None = None,
    limit: int | None = None,
    follow: bool = False,
    poll_interval: float | None = None,
    stop: Callable[[], bool] | None = None,
) -> Iterator[MobEvent]:
    """A mob's matching events, oldest first; with ``follow``, then every new one until
    ``stop`` (or, when the query names a run, until that run's terminal event).

    ``limit`` keeps the latest matches (default 20, or all after ``after_cursor``). A cursor
    beyond the end is StaleCursor; a run the mob does not have is NotFound. Takes no lock.
    """
    from mobctl import events

    log = mob_events(store, mob_id)
    ended = False
    if query.run_id is not None:
        known, ended = events.run_in_log(log, query.run_id)
        if not known:
            ended = _run_snapshot_ended(store, mob_id, query.run_id)
    return events.tail(
        log,
        query,
        after_cursor=after_cursor,
        limit=limit,
        follow=follow,
        run_ended=ended,
        poll_interval=poll_interval or events.FOLLOW_POLL_INTERVAL,
        stop=stop,
    )


def _run_snapshot_ended(store: DirectoryStore, mob_id: str, run_id: str) -> bool:
    """Whether a run with no events left (pruned, or not started yet) has ended; NotFound if
    the mob has no such run."""
    from mobctl.errors import NotFound
    from mobctl.ids import is_run_id, shown_id

    run = store.runs(mob_id).get_run(run_id) if is_run_id(run_id) else None
    if run is None:
        raise NotFound(
            f"mob '{mob_id}' has no run '{shown_id(run_id)}'",
            hint=f"`mobctl events tail {mob_id} --type flow_started` lists its runs",
        )
    return run.terminal


@dataclass(frozen=True)
class EventLogCheck:
    mob_id: str
    path: Path
    records: int
    latest_cursor: int
    problem: LogProblem | None  # the first one

    @property
    def ok(self) -> bool:
        return self.problem is None

    def error(self) -> StoreCorrupt:
        from mobctl.errors import StoreCorrupt

        assert self.problem is not None
        torn = self.problem.message.startswith(("torn tail", "incomplete batch"))
        return StoreCorrupt(
            f"{self.path}: {self.problem.message}",
            hint="`mobctl store check --repair` moves a torn tail to quarantine"
            if torn
            else "nothing repairs a damaged record automatically; restore the log from a backup",
        )


def events_verify(store: DirectoryStore, mob_id: str) -> EventLogCheck:
    """Check every record of a mob's log: hash chain, cursor order, batch framing."""
    log = mob_events(store, mob_id)
    result = log.verify_log()
    problem = result.problems[0] if result.problems else None
    return EventLogCheck(mob_id, log.log, result.records, result.last_cursor, problem)


@dataclass(frozen=True)
class PruneResult:
    mob_id: str
    older_than: str
    deleted: int
    latest_cursor: int


def events_prune(
    store: DirectoryStore,
    mob_id: str,
    older_than: datetime,
    *,
    confirm: Callable[[str, str], bool] | None = None,
) -> PruneResult:
    """Delete a mob's events older than ``older_than`` except the anchors (store contract §3.3).

    ``confirm(mob_id, cutoff)`` is asked first when given; False prunes nothing."""
    from mobctl.clock import timestamp
    from mobctl.errors import ConfirmationRequired

    log = mob_events(store, mob_id)
    cutoff = timestamp(older_than)
    if confirm is not None and not confirm(mob_id, cutoff):
        raise ConfirmationRequired("not confirmed: nothing was pruned")
    repair_mob(store, mob_id)  # a writing command (§8.9)
    deleted = log.prune(older_than)
    return PruneResult(mob_id, cutoff, deleted, log.latest_cursor())
