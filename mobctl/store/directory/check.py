"""``store check``: a full consistency check of a directory store, and safe repairs (§8.9).

Symbolic links (§8.7a): the check walks the store without following any, and reports each
one as a problem (``store_corrupt``), once, whatever is behind it. ``--repair`` leaves a link
alone and says so: it never follows, rewrites or deletes through one, and does not remove the
link itself either, since what it stands for (a real file kept elsewhere on purpose, or a
planted one) is for the user to judge. The problem stays, so the check exits 6 until the link
is replaced by the file or directory itself.
"""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mobctl.errors import (
    InsecureSecretFile,
    MobctlError,
    PassphraseRequired,
    StoreError,
    StoreLink,
    WrongPassphrase,
)
from mobctl.host import is_dead
from mobctl.ids import is_run_id, is_slug
from mobctl.store.checkpoints import sign_after_terminal
from mobctl.store.contract import CheckReport, Problem

if TYPE_CHECKING:
    from mobctl.store.directory.store import DirectoryStore
from mobctl.store.directory.files import Entry
from mobctl.store.repair import (
    missing_definition_event,
    missing_terminal_events,
    repair_definition_event,
    repair_terminal_events,
)

LINK_PROBLEM = "a symbolic link; mobctl never follows a link in the store"


@dataclass
class DirectoryCheck(CheckReport):
    links: set[str] = field(default_factory=set)  # reported once, by the walk

    def add(self, code: str, path: Path | str, message: str, *, repairable: bool = False) -> None:
        self.problems.append(Problem(code, str(path), message, repairable))

    def behind_link(self, path: Path) -> bool:
        """Whether ``path`` is, or lies under, a link the walk found."""
        return any(str(p) in self.links for p in (path, *path.parents))

    def known(self, exc: StoreError) -> bool:
        """Whether ``exc`` is the refusal of a link the walk reported already."""
        return isinstance(exc, StoreLink) and exc.path in self.links

    @contextlib.contextmanager
    def reporting(self, path: Path) -> Iterator[None]:
        """Report a store error of the ``with`` body as a problem of ``path`` (once: a link
        the walk reported is not reported again, nor an error already reported by an earlier
        part of the check that read the same file)."""
        try:
            yield
        except StoreError as exc:
            seen = any((p.code, p.message) == (exc.code, exc.message) for p in self.problems)
            if not self.known(exc) and not seen:
                self.add(exc.code, path, exc.message)


def check_store(store: DirectoryStore, *, repair: bool = False) -> DirectoryCheck:
    """Every problem found; with ``repair``, first fix what is safe and list each action."""
    report = DirectoryCheck()
    entries = list(store.files.walk())
    links = [entry.path for entry in entries if entry.kind == "link"]
    report.links = {str(link) for link in links}
    if repair:
        _repair(store, report, entries, links)
        entries = list(store.files.walk())
    try:
        if store.check_format() is None:
            report.add("store_missing", store.marker, "no store.json (run `mobctl store init`)")
    except StoreError as exc:
        report.add(exc.code, store.marker, exc.message)
        return report
    for link in links:
        report.add("store_corrupt", link, LINK_PROBLEM)
    for directory in _directories(store, entries):
        for temp in store.files.stray_temp_files(directory):
            report.add(
                "stray_temp_file", temp, "temp file of a process that is gone", repairable=True
            )
    for holder in _holders(store, entries):
        if _stale_holder(store, holder):
            report.add(
                "stale_lock_holder", holder, "lock holder file of a dead process", repairable=True
            )
    _check_records(store, report)
    for mob_id in _mob_ids(store, report):
        _check_mob(store, mob_id, report)
    return report


def _mob_ids(store: DirectoryStore, report: DirectoryCheck) -> list[str]:
    """:meth:`DirectoryStore.mob_ids` without what lies behind a link."""
    found: set[str] = set()
    with report.reporting(store.specs.dir):
        found.update(store.specs.list_specs())
    with report.reporting(store.root / "mobs"):
        found.update(store.mob_dirs())
    return sorted(found)


def _directories(store: DirectoryStore, entries: list[Entry]) -> list[Path]:
    return [store.root, *(entry.path for entry in entries if entry.kind == "directory")]


def _holders(store: DirectoryStore, entries: list[Entry]) -> list[Path]:
    locks = store.locks.root
    return [
        entry.path
        for entry in entries
        if entry.kind == "file" and entry.name.endswith(".holder") and locks in entry.path.parents
    ]


def _stale_holder(store: DirectoryStore, holder: Path) -> bool:
    record = store.locks.read_holder(holder.with_name(holder.name.removesuffix(".holder")))
    if record is None:
        return False  # empty: the lock is free
    return is_dead(record.pid, record.host, record.process_start)


def _check_records(store: DirectoryStore, report: DirectoryCheck) -> None:
    for folder, read, what in (
        (store.specs.dir, store.specs.get_spec, "a spec record (the name is not a mob id)"),
        (
            store.profiles.dir,
            store.profiles.get,
            "a realm profile (the name is not a profile name)",
        ),
    ):
        with report.reporting(folder):
            for name in store.files.stems(folder, ".json"):
                path = folder / f"{name}.json"
                if not is_slug(name):  # listings leave it out
                    report.add("store_corrupt", path, f"not {what}")
                    continue
                with report.reporting(path):
                    read(name)
    mobs = store.root / "mobs"
    with report.reporting(mobs):
        for entry in store.files.entries(mobs):
            if entry.kind == "directory" and not is_slug(entry.name):
                report.add("store_corrupt", entry.path, "not a mob (the name is not a mob id)")


def _check_mob(store: DirectoryStore, mob_id: str, report: DirectoryCheck) -> None:
    try:
        events = store.events(mob_id)
    except MobctlError as exc:
        report.add(exc.code, store.root / "mobs" / mob_id, exc.message)
        return
    if report.behind_link(events.dir):
        return  # the walk reported the link; nothing behind it is read
    before = len(report.problems)
    with report.reporting(events.log):
        for problem in events.verify():
            torn = problem.startswith("torn tail") or problem.startswith("incomplete batch")
            code = "torn_tail" if torn else "store_corrupt"
            report.add(code, events.log, problem, repairable=torn)
    log_ok = len(report.problems) == before  # else what the log holds is not judged further
    runs = store.runs(mob_id)
    readable = True
    with report.reporting(runs.dir):
        for entry in store.files.entries(runs.dir):
            if not entry.name.endswith(".json") or entry.name.startswith("."):
                continue
            if not is_run_id(entry.path.stem):
                problem = "not a run snapshot (the name is not a run id)"
                report.add("store_corrupt", entry.path, problem)
                continue
            try:
                runs.get_run(entry.path.stem)
            except StoreError as exc:
                readable = False
                if not report.known(exc):
                    report.add(exc.code, entry.path, exc.message)
    if readable and log_ok:
        _check_indexes(store, mob_id, report)
    with report.reporting(store.specs.dir):
        spec = missing_definition_event(store, mob_id) if log_ok else None
        if spec is not None:
            report.add(
                "missing_definition_event",
                store.specs.dir / f"{mob_id}.json",
                f"spec revision {spec.revision} of mob '{mob_id}' is not in the log",
                repairable=True,
            )
    try:
        missing = missing_terminal_events(store, mob_id) if readable else []
    except StoreError:
        missing = []  # the log's own problem is reported above
    for run in missing:
        report.add(
            "missing_terminal_event",
            runs.path(run.run_id),
            f"run {run.run_id} is {run.status} but its terminal event is missing",
            repairable=True,
        )
    metadata = events.dir / "metadata"
    overlays = metadata / "overlays" / "overlays.json"
    with report.reporting(metadata / "supervisor-history.jsonl"):
        store.metadata.load_supervisor_history(mob_id)
    # a passphrase this check lacks is no damage; a mode is reported below
    unknowable = contextlib.suppress(PassphraseRequired, WrongPassphrase, InsecureSecretFile)
    with report.reporting(metadata / "supervisor.json"), unknowable:
        store.metadata.load_supervisor_authority(mob_id)
    log = store.events(mob_id)
    signed = log.checkpoints_path
    with report.reporting(signed):
        for number in log.checkpoints()[1]:
            report.add("store_corrupt", signed, f"line {number} is not a checkpoint")
    with report.reporting(overlays), contextlib.suppress(InsecureSecretFile):
        store.metadata.list_external_binding_overlays(mob_id)
    for secret in (metadata / "supervisor.json", overlays):
        with report.reporting(secret), contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(store.files.stat(secret).st_mode)
            if mode & 0o077:
                report.add("insecure_secret_file", secret, f"mode {mode:o}; expected 600")


def _index_problems(store: DirectoryStore, mob_id: str) -> list[tuple[Path, str]]:
    """Where a mob's indexes (derived data that commands trust) disagree with the log and the
    snapshots they are derived from."""
    events, runs = store.events(mob_id), store.runs(mob_id)
    found = [(runs.index.log, problem) for problem in runs.index_problems()]
    roster = events.roster_index_problem()
    return found + ([(events.roster_path, roster)] if roster else [])


def _check_indexes(store: DirectoryStore, mob_id: str, report: DirectoryCheck) -> None:
    with report.reporting(store.root / "mobs" / mob_id):
        problems = _index_problems(store, mob_id)
        for path, problem in problems[:SHOWN_INDEX_PROBLEMS]:
            report.add("stale_index", path, problem, repairable=True)
        if len(problems) > SHOWN_INDEX_PROBLEMS:
            more = len(problems) - SHOWN_INDEX_PROBLEMS
            report.add("stale_index", problems[0][0], f"and {more} more", repairable=True)


SHOWN_INDEX_PROBLEMS = 10


def _repair(
    store: DirectoryStore, report: DirectoryCheck, entries: list[Entry], links: list[Path]
) -> None:
    for link in links:
        report.actions.append(
            f"left the symbolic link {link} alone: mobctl never follows or removes a link in "
            "the store"
        )
    for directory in _directories(store, entries):
        for removed in store.files.remove_stray_temp_files(directory):
            report.actions.append(f"removed stray temp file {removed}")
    for holder in _holders(store, entries):
        if _stale_holder(store, holder):
            store.files.truncate(holder, 0)  # emptied, not deleted: live processes keep it open
            report.actions.append(f"cleared stale lock holder file {holder}")
    # a mob that cannot be listed is the check's to report, after the repairs
    for mob_id in _mob_ids(store, DirectoryCheck(links=report.links)):
        if report.behind_link(store.root / "mobs" / mob_id):
            continue
        try:
            events = store.events(mob_id)
            quarantine_before = _quarantined(store, events.quarantine)
            if store.files.exists(events.log):
                with store.locks.hold(events.lock_name):
                    events.repair_tail()
            for path in sorted(_quarantined(store, events.quarantine) - quarantine_before):
                report.actions.append(f"moved a torn tail of {events.log} to {path}")
            stale = {path for path, _ in _index_problems(store, mob_id)}
            runs = store.runs(mob_id)
            if runs.index.log in stale or (
                store.files.exists(runs.dir) and not runs.index.present()
            ):
                runs.rebuild_index()
                report.actions.append(f"rebuilt {runs.index.log} from the snapshots and the log")
            if events.roster_path in stale or (
                store.files.exists(events.log) and not store.files.exists(events.roster_path)
            ):
                events.rebuild_roster_index()
                report.actions.append(f"rebuilt {events.roster_path} from the log")
            with store.specs.locking(mob_id):
                logged = repair_definition_event(store, mob_id)
            if logged is not None:
                report.actions.append(f"logged spec revision {logged} of mob '{mob_id}'")
            missing = [run.run_id for run in missing_terminal_events(store, mob_id)]
            repaired = repair_terminal_events(store, mob_id, also=missing)
            for run_id in repaired:
                report.actions.append(f"appended the missing terminal event of run {run_id}")
            unsigned = sign_after_terminal(store, mob_id) if repaired else None
            if unsigned is not None:
                report.actions.append(f"{mob_id}: {unsigned}")
        except StoreError as exc:
            if not report.known(exc):
                report.actions.append(f"left {mob_id} alone: {exc.message}")


def _quarantined(store: DirectoryStore, quarantine: Path) -> set[Path]:
    return {e.path for e in store.files.entries(quarantine) if e.name.endswith(".bin")}
