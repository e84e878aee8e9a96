"""Running cases: each in a store of its own (opened by the caller's factory in a temporary
directory, removed afterwards), in this process, independent cases concurrently.

A case never touches the user's store: a case naming a registered mob by id has its
definition copied from it (only read). Cases that record into the same cassette directory
are not independent: they run one after the other, in suite order.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mobctl import api
from mobctl.api.registration import InvalidDefinitionError
from mobctl.api.running import Watch
from mobctl.diagnostics import Diagnostic
from mobctl.drivers.base import Drivers
from mobctl.drivers.registry import DriverConfig, parse_drivers, split_role
from mobctl.drivers.replay import ReplayDriver
from mobctl.errors import MobctlError, NotFound
from mobctl.store.contract import Store
from mobctl.store.models import MobRun
from mobctl.suites.expectations import Failure, check
from mobctl.suites.loading import PreparedCase
from mobctl.suites.record import RunRecord

Outcome = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class Setup:
    """What the caller gives every case: a factory of empty stores, the directory they go in,
    the drivers' configuration (environment, working directory, ``rerecord``), the store that
    registered mobs are copied from (only read), and what a definition may read."""

    open_store: Callable[[Path], Store]
    workdir: Path
    config: DriverConfig
    source: Callable[[], Store] | None = None
    allow_paths: tuple[Path, ...] = ()
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class CaseResult:
    case: PreparedCase
    outcome: Outcome
    duration_ms: float
    failures: list[Failure] = field(default_factory=list)
    error: MobctlError | None = None  # the case could not run as written
    diagnostics: list[Diagnostic] = field(default_factory=list)  # an invalid definition's
    stale: list[str] = field(default_factory=list)  # replayed requests that changed
    run: MobRun | None = None
    cause: str | None = None


def run_cases(
    cases: list[PreparedCase],
    setup: Setup,
    *,
    jobs: int,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Run ``cases`` on ``jobs`` threads; ``on_result`` sees each result in the cases' order
    as soon as it and every earlier one are known."""
    results: list[CaseResult | None] = [None] * len(cases)
    reported = 0
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="case") as pool:
        pending: set[Future[None]] = set()
        for chain in _chains(cases):

            def work(chain: list[int] = chain) -> None:
                for number in chain:
                    results[number] = run_case(cases[number], setup, number)

            pending.add(pool.submit(work))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()  # a bug in a case is raised here
            while reported < len(results) and (result := results[reported]) is not None:
                if on_result is not None:
                    on_result(result)
                reported += 1
    return [r for r in results if r is not None]


def _chains(cases: list[PreparedCase]) -> list[list[int]]:
    """The cases grouped so that cases sharing a cassette directory are in one group (run in
    order); every other case is a group of its own."""
    owner: dict[str, int] = {}
    parent = list(range(len(cases)))

    def root(number: int) -> int:
        while parent[number] != number:
            number = parent[number]
        return number

    for number, case in enumerate(cases):
        for directory in _cassettes(case):
            if directory in owner:
                parent[root(number)] = root(owner[directory])
            else:
                owner[directory] = number
    chains: dict[int, list[int]] = {}
    for number in range(len(cases)):
        chains.setdefault(root(number), []).append(number)
    return list(chains.values())


def _cassettes(case: PreparedCase) -> list[str]:
    found = []
    for spec in case.drivers:
        kind, _, argument = split_role(spec)[1].partition(":")
        if kind == "replay":
            found.append(argument.partition(",fallback=")[0])
    return found


def run_case(case: PreparedCase, setup: Setup, number: int) -> CaseResult:
    """Run one case in a new store and check its expectations."""
    if case.case.skip is not None:
        return CaseResult(case, "skipped", 0.0)
    started = time.perf_counter()
    directory = setup.workdir / f"case-{number}"
    try:
        store = setup.open_store(directory)
        try:
            mob_id = _prepare(store, case, setup)
            config = dataclasses.replace(setup.config, output_cap=store.max_record_bytes)
            drivers = parse_drivers(case.drivers, config)
            outcome = api.start_run(
                store,
                mob_id,
                flow=case.case.flow,
                params=dict(case.case.params),
                drivers=drivers,
                timeout_ms=case.timeout_ms,
                watch=Watch(cancel=setup.cancel),
            )
            record = RunRecord.read(store, outcome.run, outcome.cause)
        except InvalidDefinitionError as exc:
            return CaseResult(
                case, "failed", _since(started), error=exc, diagnostics=exc.diagnostics
            )
        except MobctlError as exc:
            return CaseResult(case, "failed", _since(started), error=exc)
        failures = check(case.case.expect, record, case.schemas)
        stale = _stale(drivers)
        return CaseResult(
            case,
            "failed" if failures or stale else "passed",
            _since(started),
            failures,
            stale=stale,
            run=outcome.run,
            cause=outcome.cause,
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _prepare(store: Store, case: PreparedCase, setup: Setup) -> str:
    """The case's realm profiles, definition and members, in its new store; its mob id."""
    for name, path in case.realm_profiles.items():
        store.profiles.create(name, api.read_profile_file(path).profile)
    if case.mob_is_file:
        mob_id = api.register(store, Path(case.mob), allow_paths=setup.allow_paths).mob_id
    else:
        if setup.source is None:
            raise NotFound(f"no store was given to find the registered mob '{case.mob}' in")
        mob_id = api.copy_spec(setup.source(), store, case.mob).mob_id
    for profile, count in case.case.members.items():
        api.spawn(store, mob_id, profile, count=count)
    return mob_id


def _stale(drivers: Drivers) -> list[str]:
    unique = {id(d): d for d in (drivers.default, *drivers.by_role.values())}.values()
    return [p for d in unique if isinstance(d, ReplayDriver) for p in d.problems]


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
