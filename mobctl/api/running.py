"""Running flows: ``start_run`` (``mobctl run``) and ``resume_run`` (``mobctl runs resume``).

Each returns a :class:`RunOutcome` with the exit code the run's end maps to (0 completed, 3
failed, 4 canceled, 5 timed out). Nothing here prints; a caller watches the run through
``on_event`` and stops it by setting ``cancel``.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobctl.api.definitions import allowed_roots, catalog_from, pick_flow
from mobctl.api.failures import Failure, run_failure
from mobctl.api.prechecks import check_driver_roles, check_run
from mobctl.api.registration import Registration
from mobctl.api.run_setup import (
    RunTarget,
    concurrency,
    file_target,
    held,
    preflight,
    profiles,
    stored_target,
)
from mobctl.api.runs import resolve_run, run_accounting
from mobctl.api.session import writing
from mobctl.clock import now
from mobctl.drivers.base import Drivers
from mobctl.drivers.registry import DriverConfig, parse_drivers, runs_a_program, shown_spec
from mobctl.engine.config import flow_digest
from mobctl.engine.custody import orphan_reason, take_over
from mobctl.engine.flow_state import FlowState
from mobctl.engine.outputs import result_envelope
from mobctl.engine.records import RunResult
from mobctl.engine.run_context import EventCallback
from mobctl.engine.runner import FlowRunner
from mobctl.engine.turns import DEFAULT_CONCURRENCY
from mobctl.errors import CustodyLost, DriverRequired, ExitCode, RunNotResumable
from mobctl.ids import require_slug
from mobctl.store.contract import Store
from mobctl.store.models import MobRun


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, and the exit code that says so."""

    run: MobRun
    cause: str | None
    timed_out: bool
    exit_code: ExitCode
    warnings: list[str] = field(default_factory=list)
    failure: Failure | None = None  # why it did not complete

    @property
    def status(self) -> str:
        return self.run.status

    @property
    def shown_status(self) -> str:
        """The status for people: "timed out" for a run that passed its deadline (exit 5)."""
        return "timed out" if self.timed_out else self.status

    @property
    def outputs(self) -> dict[str, Any]:
        return dict(self.run.root_step_outputs)

    @property
    def result(self) -> Any:
        return result_envelope(self.run.root_step_outputs)

    def document(self) -> dict[str, Any]:
        """The ``--json`` document of ``run`` and ``runs resume``."""
        steps = FlowState.from_document(self.run.flow_state.model_dump(mode="json"))
        statuses = steps.step_statuses()
        return {
            "run_id": self.run.run_id,
            "mob_id": self.run.mob_id,
            "flow_id": self.run.flow_id,
            "status": self.status,
            "cause": self.cause,
            "timed_out": self.timed_out,
            "failure": None if self.failure is None else self.failure.document(),
            "result": self.result,
            "outputs": self.outputs,
            "steps": statuses,
            "accounting": run_accounting(self.run, statuses),
        }


@dataclass(frozen=True)
class Watch:
    """How a caller follows a run: ``on_event(kind, fields)`` for each event as it is written,
    ``on_start(run_id, definition, flow_id)`` once the run exists, ``cancel`` set to stop it
    cleanly (Ctrl-C), notes for the person running (``on_note``), and, for a run of a file,
    ``on_registered(registration)`` once it is registered (its warnings, whether it changed),
    before the run exists."""

    on_event: EventCallback | None = None
    on_start: Any = None  # Callable[[str, MobDefinition, str], None]
    on_note: Any = None  # Callable[[str], None]
    on_registered: Callable[[Registration], None] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)


def start_run(
    store: Store,
    target: str,
    *,
    flow: str | None = None,
    params: dict[str, Any] | None = None,
    drivers: Sequence[str] | Drivers = (),
    config: DriverConfig | None = None,
    timeout_ms: int | None = None,
    catalog: Path | None = None,
    allow_paths: Sequence[Path] = (),
    strict: bool = False,
    watch: Watch | None = None,
    max_concurrency: int = DEFAULT_CONCURRENCY,
) -> RunOutcome:
    """Run a flow of a registered mob (``target`` a mob id) or of a definition file (registered
    first, a new revision only if it changed, refused with ``strict`` when it has a warning;
    the run is pinned to the revision this call registered or found identical, so it runs that
    file whatever others register meanwhile).

    ``drivers``: ``--driver`` specs, or drivers built already (``parse_drivers``), which the
    caller may look at once the run is over (a ``replay:`` driver's stale requests). Every
    role's profile is resolved and the drivers' preflight passes before anything is written;
    ``max_concurrency`` bounds the run's turns in flight."""
    watch = watch or Watch()
    roots = allowed_roots(allow_paths)  # a usage error before anything is written
    limit = concurrency(max_concurrency)
    if isinstance(drivers, Drivers):
        chosen, specs = drivers, []
    else:
        chosen, specs = parse_drivers(list(drivers), _config(store, config)), list(drivers)
    found = _target(store, target, catalog, roots, strict)
    flow_id = pick_flow(found.definition, flow)
    check_run(found.definition, flow_id, dict(params or {}), specs)
    resolved, notes = profiles(store, found, flow_id, catalog)
    with held(chosen):
        preflight(chosen, resolved, watch.on_note, notes)
        with writing(store, found.definition.mob.id) as session:
            found = found.register(store, watch.on_registered)
            runner = FlowRunner(
                store,
                found.definition,
                flow_id,
                dict(params or {}),
                chosen,
                spec_revision=found.revision,
                schemas=dict(found.resources.schemas),
                timeout_ms=timeout_ms,
                on_event=watch.on_event,
                cancel=watch.cancel,
                profiles=resolved,
                max_concurrency=limit,
            )
            runner.create()
            if watch.on_start is not None:
                watch.on_start(runner.run_id, found.definition, flow_id)
            outcome = _execute(runner)
            session.wrote_terminal()
    return _with_warnings(outcome, session.warnings)


def resume_run(
    store: Store,
    mob_id: str,
    ref: str,
    *,
    drivers: Sequence[str] = (),
    config: DriverConfig | None = None,
    watch: Watch | None = None,
    max_concurrency: int = DEFAULT_CONCURRENCY,
) -> RunOutcome:
    """Continue an orphaned run from its snapshot (flow-semantics §12.3): refused for a
    finished run, a run whose owner lives, and a run whose flow changed since it started.

    Without ``drivers`` the run goes on with the specs it was started with, unless one is
    ``command:``: a program named only in the store (which anyone who can write it can edit)
    is never run (:class:`DriverRequired`). Every check comes before the lease is taken."""
    watch = watch or Watch()
    limit = concurrency(max_concurrency)
    config = _config(store, config)
    given = parse_drivers(list(drivers), config)
    with writing(store, require_slug(mob_id, "mob id")) as session:
        run = resolve_run(store, mob_id, ref)
        found = _resumable(store, run)
        check_driver_roles(found.definition, run.flow_id, drivers)
        reused = [] if drivers else list(run.mobctl.drivers or []) if run.mobctl else []
        if any(runs_a_program(spec) for spec in reused):
            raise _driver_required(run, reused)
        chosen = parse_drivers(reused, config) if reused else given
        resolved, notes = profiles(store, found, run.flow_id)
        with held(chosen):
            preflight(chosen, resolved, watch.on_note, notes)
            lease = take_over(store, run)
            if lease is None:
                raise RunNotResumable(
                    f"run {run.run_id} changed hands while it was being taken over; look again",
                    hint=f"`mobctl runs show {mob_id} {run.run_id}`",
                )
            if reused and watch.on_note is not None:
                watch.on_note(f"resuming with the drivers it was started with: {' '.join(reused)}")
            runner = FlowRunner(
                store,
                found.definition,
                run.flow_id,
                dict(run.activation_params),
                chosen,
                spec_revision=found.revision,
                schemas=dict(found.resources.schemas),
                on_event=watch.on_event,
                cancel=watch.cancel,
                profiles=resolved,
                max_concurrency=limit,
            )
            runner.provision()
            current = store.runs(mob_id).get_run(run.run_id)
            assert current is not None
            runner.resume(current, lease.token)
            if watch.on_start is not None:
                watch.on_start(runner.run_id, found.definition, run.flow_id)
            outcome = _execute(runner)
            session.wrote_terminal()
    return _with_warnings(outcome, session.warnings)


# --- helpers ---------------------------------------------------------------------------------


def _config(store: Store, config: DriverConfig | None) -> DriverConfig:
    """The drivers' configuration, with a command's output capped at the store's record cap."""
    return dataclasses.replace(config or DriverConfig(), output_cap=store.max_record_bytes)


def _target(
    store: Store, target: str, catalog: Path | None, roots: tuple[Path, ...], strict: bool
) -> RunTarget:
    """The definition a run runs: a definition file (validated now, stored once the drivers'
    preflight passes) or a registered mob id (its current revision). ``target`` names a file
    only when it ends in ``.toml``/``.json`` or holds a ``/``: a file that happens to be called
    like a mob (one a pull request adds, say) never stands in for it. A run reads no file of
    the definition's: the schema copies made at registration are the only schemas it checks
    outputs against."""
    if names_a_file(target):
        return file_target(Path(target), catalog_from(catalog), roots, strict=strict)
    return stored_target(store, target)


def names_a_file(target: str) -> bool:
    """``run``'s first argument names a definition file rather than a registered mob."""
    return Path(target).suffix.lower() in (".toml", ".json") or "/" in target or os.sep in target


def _resumable(store: Store, run: MobRun) -> RunTarget:
    if run.terminal:
        raise RunNotResumable(f"run {run.run_id} is already {run.status}; nothing to resume")
    if run.mobctl is None:
        raise RunNotResumable(
            f"run {run.run_id} was not written by mobctl (no mobctl state); it cannot be resumed",
            hint=f"`mobctl runs recover {run.mob_id} --cancel` ends it",
        )
    owner = run.mobctl.owner
    if orphan_reason(run, now()) is None and owner is not None:
        raise RunNotResumable(
            f"run {run.run_id} still has a live owner: pid {owner.pid} on {owner.host}, last "
            f"heartbeat {owner.heartbeat_at}",
            hint=f"wait for it, or stop it with `mobctl runs cancel {run.mob_id} {run.run_id}`",
        )
    found = stored_target(store, run.mob_id)
    revision = found.revision
    if flow_digest(found.definition, run.flow_id) != run.flow_definition_digest:
        raise RunNotResumable(
            f"flow '{run.flow_id}' of mob '{run.mob_id}' changed since run {run.run_id} "
            f"started (spec revision {run.mobctl.spec_revision} then, {revision} now)",
            hint=f"`mobctl runs recover {run.mob_id} --cancel` ends it; then start a new run",
        )
    return found


SHOWN_SPECS = 8  # recorded driver specs a driver_required hint spells out


def _driver_required(run: MobRun, recorded: list[str]) -> DriverRequired:
    programs = [shown_spec(spec) for spec in recorded if runs_a_program(spec)]
    flags = " ".join(f"--driver {shlex.quote(shown_spec(spec))}" for spec in recorded[:SHOWN_SPECS])
    more = len(recorded) - SHOWN_SPECS
    return DriverRequired(
        f"run {run.run_id} was started with a driver that runs a program "
        f"({', '.join(programs[:SHOWN_SPECS])}); a resume never runs a program that only the "
        "store names",
        hint=f"if you trust it, pass the drivers again yourself: mobctl runs resume "
        f"{run.mob_id} {run.run_id} {flags}" + (f" (and {more} more)" if more > 0 else ""),
    )


def _execute(runner: FlowRunner) -> RunOutcome:
    """Execute a created or resumed run; a run taken over by another process ends this one's
    part in it (exit 4, ``custody_lost``). The drivers are closed by the caller's
    :func:`~mobctl.api.run_setup.held`."""
    return _outcome(runner.run.store, runner.execute())


def _outcome(store: Store, result: RunResult) -> RunOutcome:
    run = result.run
    if run.status == "completed":
        code = ExitCode.OK
    elif run.status == "canceled":
        code = ExitCode.RUN_CANCELED
    else:
        code = ExitCode.RUN_TIMED_OUT if result.timed_out else ExitCode.RUN_FAILED
    failure = run_failure(store, run, result.cause)
    return RunOutcome(run, result.cause, result.timed_out, code, list(result.warnings), failure)


def _with_warnings(outcome: RunOutcome, warnings: list[str]) -> RunOutcome:
    return dataclasses.replace(outcome, warnings=[*outcome.warnings, *warnings])


__all__ = ["CustodyLost", "Drivers", "RunOutcome", "Watch", "resume_run", "start_run"]
