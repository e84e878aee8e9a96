"""``store check``: a full consistency check of a directory store, and safe repairs (§8.9)."""

from __future__ import annotations

import contextlib
import stat
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from mobctl.errors import (
    InsecureSecretFile,
    MobctlError,
    PassphraseRequired,
    StoreError,
    WrongPassphrase,
)
from mobctl.ids import is_run_id
from mobctl.store.canonical import parse_json
from mobctl.store.checkpoints import checkpoints_path, read_checkpoints, sign_after_terminal
from mobctl.store.directory import DirectoryStore
from mobctl.store.files import remove_stray_temp_files, stray_temp_files
from mobctl.store.locks import read_holder
from mobctl.store.models import SpecRecord, StoredRealmProfile
from mobctl.store.process import is_dead
from mobctl.store.repair import missing_terminal_events, repair_terminal_events


@dataclass(frozen=True)
class Problem:
    code: str
    path: str
    message: str
    repairable: bool


@dataclass
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, code: str, path: Path | str, message: str, *, repairable: bool = False) -> None:
        self.problems.append(Problem(code, str(path), message, repairable))


def check_store(store: DirectoryStore, *, repair: bool = False) -> CheckReport:
    """Every problem found; with ``repair``, first fix what is safe and list each action."""
    report = CheckReport()
    if repair:
        _repair(store, report)
    try:
        if store.check_format() is None:
            report.add("store_missing", store.marker, "no store.json (run `mobctl store init`)")
    except StoreError as exc:
        report.add(exc.code, store.marker, exc.message)
        return report
    for directory in _directories(store.root):
        for temp in stray_temp_files(directory):
            report.add(
                "stray_temp_file", temp, "temp file of a process that is gone", repairable=True
            )
    for holder in (
        (store.root / "locks").rglob("*.holder") if (store.root / "locks").is_dir() else []
    ):
        if _stale_holder(holder):
            report.add(
                "stale_lock_holder", holder, "lock holder file of a dead process", repairable=True
            )
    _check_records(store, report)
    for mob_id in store.mob_ids():
        _check_mob(store, mob_id, report)
    return report


def _directories(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return [root, *(p for p in root.rglob("*") if p.is_dir())]


def _stale_holder(holder: Path) -> bool:
    lock = holder.with_name(holder.name.removesuffix(".holder"))
    record = read_holder(lock)
    if record is None:
        return False  # empty: the lock is free
    pid, host, started = record.get("pid"), record.get("host"), record.get("process_start")
    return isinstance(pid, int) and is_dead(pid, str(host), str(started or ""))


def _check_records(store: DirectoryStore, report: CheckReport) -> None:
    for folder, model in (
        (store.root / "specs", SpecRecord),
        (store.root / "profiles", StoredRealmProfile),
    ):
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            if path.name.startswith("."):
                continue
            try:
                model.model_validate(parse_json(path.read_bytes()))
            except (ValueError, ValidationError) as exc:
                first = str(exc).splitlines()[0]
                report.add("store_corrupt", path, f"unreadable record: {first}")


def _check_mob(store: DirectoryStore, mob_id: str, report: CheckReport) -> None:
    try:
        events = store.events(mob_id)
    except MobctlError as exc:
        report.add(exc.code, store.root / "mobs" / mob_id, exc.message)
        return
    for problem in events.verify():
        torn = problem.startswith("torn tail") or problem.startswith("incomplete batch")
        code = "torn_tail" if torn else "store_corrupt"
        report.add(code, events.log, problem, repairable=torn)
    runs_dir = store.mob_dir(mob_id) / "runs"
    readable = True
    for path in sorted(runs_dir.glob("*.json")) if runs_dir.is_dir() else []:
        if path.name.startswith("."):
            continue
        try:
            run = store.runs(mob_id).get_run(path.stem) if is_run_id(path.stem) else None
        except StoreError as exc:
            report.add(exc.code, path, f"unreadable run snapshot: {exc.message.splitlines()[0]}")
            readable = False
            continue
        if run is None:
            report.add("store_corrupt", path, "not a run snapshot (the name is not a run id)")
    try:
        missing = missing_terminal_events(store, mob_id) if readable else []
    except StoreError:
        missing = []  # the log's own problem is reported by verify()
    for run in missing:
        report.add(
            "missing_terminal_event",
            store.runs(mob_id).path(run.run_id),
            f"run {run.run_id} is {run.status} but its terminal event is missing",
            repairable=True,
        )
    metadata = store.mob_dir(mob_id) / "metadata"
    try:
        store.metadata.load_supervisor_history(mob_id)
    except StoreError as exc:
        report.add(exc.code, metadata / "supervisor-history.jsonl", exc.message)
    try:
        store.metadata.load_supervisor_authority(mob_id)
    except (PassphraseRequired, WrongPassphrase, InsecureSecretFile):
        pass  # no damage known: a passphrase this check lacks, or the mode (reported below)
    except StoreError as exc:
        report.add(exc.code, metadata / "supervisor.json", exc.message)
    signed = checkpoints_path(store, mob_id)
    for number in read_checkpoints(signed)[1]:
        report.add("store_corrupt", signed, f"line {number} is not a checkpoint")
    for secret in (metadata / "supervisor.json", metadata / "overlays" / "overlays.json"):
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(secret.stat().st_mode)
            if mode & 0o077:
                report.add("insecure_secret_file", secret, f"mode {mode:o}; expected 600")


def _repair(store: DirectoryStore, report: CheckReport) -> None:
    for directory in _directories(store.root):
        for removed in remove_stray_temp_files(directory):
            report.actions.append(f"removed stray temp file {removed}")
    locks = store.root / "locks"
    for holder in locks.rglob("*.holder") if locks.is_dir() else []:
        if _stale_holder(holder):
            with contextlib.suppress(FileNotFoundError), open(holder, "r+b") as handle:
                handle.truncate(0)  # emptied, not deleted: live processes keep it open
                report.actions.append(f"cleared stale lock holder file {holder}")
    for mob_id in store.mob_ids():
        try:
            events = store.events(mob_id)
            quarantine_before = (
                set(events.quarantine.glob("*.bin")) if events.quarantine.is_dir() else set()
            )
            if events.log.exists():
                with store.locks.hold(events.lock_name):
                    events.repair_tail()
            quarantined = (
                set(events.quarantine.glob("*.bin")) - quarantine_before
                if events.quarantine.is_dir()
                else set()
            )
            for path in sorted(quarantined):
                report.actions.append(f"moved a torn tail of {events.log} to {path}")
            repaired = repair_terminal_events(store, mob_id)
            for run_id in repaired:
                report.actions.append(f"appended the missing terminal event of run {run_id}")
            unsigned = sign_after_terminal(store, mob_id) if repaired else None
            if unsigned is not None:
                report.actions.append(f"{mob_id}: {unsigned}")
        except StoreError as exc:
            report.actions.append(f"left {mob_id} alone: {exc.message}")
