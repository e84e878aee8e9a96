"""Directory-backend specifics: the hash chain, torn tails, files, locks, formats (§8, §9)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mobctl.clock import timestamp
from mobctl.errors import (
    InsecureSecretFile,
    RecordTooLarge,
    StoreCorrupt,
    StoreFormatTooNew,
    StoreLockTimeout,
    UnsafeIdError,
)
from mobctl.host import host
from mobctl.store.directory import DirectoryStore
from mobctl.store.directory.check import check_store
from mobctl.store.hashing import GENESIS, line_hash
from tests.store.conformance import MOB, authority, event, new_run


def log_path(store: DirectoryStore) -> Path:
    return store.root / "mobs" / MOB / "events.jsonl"


def test_line_format_and_chain(store: DirectoryStore) -> None:
    log = store.events(MOB)
    log.append(event("step_completed", run_id="r", step_id="a"))
    log.append_batch([event("b"), event("c")])
    lines = log_path(store).read_bytes().splitlines(keepends=True)
    first = json.loads(lines[0])
    assert list(first) == ["cursor", "timestamp", "mob_id", "kind", "hash"]
    assert list(first["kind"]) == ["type", "run_id", "step_id"]
    assert first["timestamp"].endswith("Z") and len(first["timestamp"]) == 27
    assert [json.loads(x).get("batch") for x in lines] == [None, [2, 2], [2, 2]]
    previous = GENESIS
    for raw in lines:
        body = raw[:-76] + b"}"
        digest = json.loads(raw)["hash"]
        assert line_hash(previous, body) == digest
        previous = digest
    assert "hash" not in log.replay_all()[0].model_dump()


def test_12_a_flipped_byte_is_reported_with_its_offset(store: DirectoryStore) -> None:
    log = store.events(MOB)
    for i in range(5):
        log.append(event("x", i=i))
    data = bytearray(log_path(store).read_bytes())
    second = data.index(b"\n") + 1
    position = data.index(b'"i":1', second) + 4
    data[position] = ord("7")
    log_path(store).write_bytes(bytes(data))
    report = check_store(store)
    assert [(p.code, p.message) for p in report.problems] == [
        (
            "store_corrupt",
            f"record at byte {second} does not verify (its chain hash does not match)",
        )
    ]
    with pytest.raises(StoreCorrupt, match=f"byte {second}"):
        log.replay_all()


def test_12_the_chain_still_verifies_after_prune(store: DirectoryStore) -> None:
    log = store.events(MOB)
    old = datetime.now(UTC) - timedelta(hours=1)
    log.append(event("a", old))
    log.append(event("member_spawned", old, agent_identity="w-1"))
    log.append(event("b", old))
    log.append(event("c"))
    assert log.prune(datetime.now(UTC) - timedelta(minutes=1)) == 2
    assert log.verify() == []
    assert check_store(store).ok
    assert [e.kind.type for e in log.replay_all()] == ["member_spawned", "c"]
    assert log.append(event("d")).cursor == 5
    assert log.verify() == []


def test_06_meta_deleted_from_a_never_pruned_log(store: DirectoryStore) -> None:
    log = store.events(MOB)
    for _ in range(3):
        log.append(event("x"))
    (store.root / "mobs" / MOB / "events.meta.json").unlink(missing_ok=True)
    assert DirectoryStore(store.root).events(MOB).append(event("y")).cursor == 4
    assert log.verify() == []


def test_torn_tail_is_ignored_then_quarantined(store: DirectoryStore) -> None:
    log = store.events(MOB)
    log.append(event("x"))
    with log_path(store).open("ab") as handle:
        handle.write(b'{"cursor":2,"timestamp":"2026-')
    assert [e.cursor for e in log.replay_all()] == [1]
    assert [p.code for p in check_store(store).problems] == ["torn_tail"]
    assert log.append(event("y")).cursor == 2
    quarantined = list((store.root / "mobs" / MOB / "quarantine").iterdir())
    assert len(quarantined) == 1
    assert quarantined[0].read_bytes() == b'{"cursor":2,"timestamp":"2026-'
    assert check_store(store).ok


def test_an_unfinished_batch_is_invisible_and_repaired(store: DirectoryStore) -> None:
    log = store.events(MOB)
    log.append(event("x"))
    log.append_batch([event("a"), event("b"), event("c")])
    data = log_path(store).read_bytes()
    lines = data.splitlines(keepends=True)
    log_path(store).write_bytes(b"".join(lines[:3]))  # the batch lost its last line
    assert [e.cursor for e in log.replay_all()] == [1]
    report = check_store(store, repair=True)
    assert any("torn tail" in action for action in report.actions)
    assert check_store(store).ok
    assert log.append(event("y")).cursor == 2


def test_29_secret_files_are_private(store: DirectoryStore) -> None:
    store.metadata.put_supervisor_authority(MOB, authority())
    path = store.root / "mobs" / MOB / "metadata" / "supervisor.json"
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)
    with pytest.raises(InsecureSecretFile) as caught:
        store.metadata.load_supervisor_authority(MOB)
    assert caught.value.hint == f"chmod 600 {path}"
    assert [p.code for p in check_store(store).problems] == ["insecure_secret_file"]


def hold_lock(store: DirectoryStore, name: str, seconds: float) -> subprocess.Popen[str]:
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from mobctl.store.directory.files import StoreFiles\n"
        "from mobctl.store.directory.locks import Locks\n"
        f"with Locks(StoreFiles(Path({str(store.root)!r}))).hold({name!r}):\n"
        "    print('held', flush=True)\n"
        f"    time.sleep({seconds})\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


def test_33_readers_never_wait_for_writers(store: DirectoryStore) -> None:
    log = store.events(MOB)
    log.append(event("x"))
    run = new_run()
    store.runs(MOB).create_run(run)
    holder = hold_lock(store, f"mobs/{MOB}/events", 30)
    impatient = DirectoryStore(store.root, lock_timeout=0.01)  # any wait would raise
    try:
        assert [e.cursor for e in impatient.events(MOB).poll(0, 10)] == [1]
        assert impatient.runs(MOB).get_run(run.run_id) is not None
    finally:
        holder.kill()
        holder.wait()


def test_34_a_held_lock_times_out_naming_its_holder(tmp_path: Path) -> None:
    messages: list[str] = []
    store = DirectoryStore(tmp_path / "store", lock_timeout=1.5, on_wait=messages.append)
    store.prepare()
    holder = hold_lock(store, f"mobs/{MOB}/events", 30)
    try:
        with pytest.raises(StoreLockTimeout) as caught:
            store.events(MOB).append(event("x"))
    finally:
        holder.kill()
        holder.wait()
    text = caught.value.message
    assert f"pid {holder.pid} on {host()}" in text
    assert text.startswith(f"timed out after 1.5s waiting for the mobs/{MOB}/events lock, held by")
    assert messages and messages[0].startswith(
        f"waiting for mobs/{MOB}/events lock held by pid {holder.pid}"
    )
    # the kernel released the dead holder's lock: writing works again
    assert store.events(MOB).append(event("x")).cursor == 1


def test_35_a_newer_store_is_refused_and_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    marker = root / "store.json"
    marker.write_text('{"format": "mobctl-store", "schema_version": 99}')
    before = marker.read_bytes()
    with pytest.raises(StoreFormatTooNew):
        DirectoryStore(root)
    assert marker.read_bytes() == before
    marker.write_text('{"format": "something-else", "schema_version": 1}')
    with pytest.raises(StoreCorrupt):
        DirectoryStore(root)


@pytest.mark.parametrize(
    "bad", ["..", "../x", "/abs", "a/b", "a\x00b", "x" * 300, "-lead", "\uff4dob", "CON:", "."]
)
def test_unsafe_ids_touch_nothing(store: DirectoryStore, bad: str) -> None:
    with pytest.raises(UnsafeIdError):
        store.events(bad)
    with pytest.raises(UnsafeIdError):
        store.specs.put_spec(bad, {}, None)
    with pytest.raises(UnsafeIdError):
        store.profiles.create(bad, {"model": "x"})
    assert not store.root.exists()


def test_record_cap(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "store", max_record_bytes=1000)
    log = store.events(MOB)
    with pytest.raises(RecordTooLarge) as too_large:
        log.append(event("x", blob="y" * 2000))
    assert too_large.value.hint == "keep outputs small, or raise MOBCTL_MAX_RECORD_BYTES"
    assert log.latest_cursor() == 0
    run = new_run()
    with pytest.raises(RecordTooLarge):
        store.runs(MOB).create_run(run.model_copy(update={"activation_params": {"p": "z" * 2000}}))
    assert store.runs(MOB).get_run(run.run_id) is None


def test_no_temp_files_are_left_and_stale_ones_are_repaired(store: DirectoryStore) -> None:
    store.specs.put_spec(MOB, {"id": MOB}, None)
    assert not list(store.root.rglob("*.tmp"))
    stray = store.root / "specs" / ".review.json.999999.deadbeef.tmp"
    stray.write_text("{")
    report = check_store(store)
    assert [p.code for p in report.problems] == ["stray_temp_file"]
    repaired = check_store(store, repair=True)
    assert repaired.actions == [f"removed stray temp file {stray}"]
    assert repaired.ok and not stray.exists()


@pytest.mark.parametrize("pid", ["²³", "٣"])  # digits to str.isdigit, not to int()
def test_a_planted_temp_name_whose_pid_is_no_number_is_a_stray(
    store: DirectoryStore, pid: str
) -> None:
    store.specs.put_spec(MOB, {"id": MOB}, None)
    stray = store.root / "specs" / f".review.json.{pid}.deadbeef.tmp"  # was exit 70
    stray.write_text("{")
    assert [p.code for p in check_store(store).problems] == ["stray_temp_file"]
    assert check_store(store, repair=True).ok and not stray.exists()


def test_stale_lock_holder_files_are_repaired(store: DirectoryStore) -> None:
    store.prepare()
    holder = store.root / "locks" / "store.lock.holder"
    holder.write_text(
        json.dumps({"pid": 999999, "host": host(), "process_start": "", "since": timestamp()})
    )
    assert [p.code for p in check_store(store).problems] == ["stale_lock_holder"]
    assert check_store(store, repair=True).actions == [f"cleared stale lock holder file {holder}"]
    assert holder.read_text() == ""  # emptied, not deleted: live processes keep it open
    assert check_store(store).ok
    with store.locks.hold("store"):  # a live holder is named, then the file is emptied again
        assert json.loads(holder.read_text())["pid"] == os.getpid()
    assert holder.read_text() == ""


def test_poll_and_tail_seek_in_a_long_log(store: DirectoryStore) -> None:
    log = store.events(MOB)
    for start in range(0, 3000, 100):
        log.append_batch([event("x", i=i) for i in range(start, start + 100)])
    assert [e.cursor for e in log.poll(2500, 3)] == [2501, 2502, 2503]
    assert [e.cursor for e in log.poll(2999, 5)] == [3000]
    assert [e.cursor for e in log.tail(3)] == [2998, 2999, 3000]
    assert log.latest_cursor() == 3000


def test_follow_survives_prune_and_sees_other_processes(store: DirectoryStore) -> None:
    log = store.events(MOB)
    log.append(event("x", datetime.now(UTC) - timedelta(hours=1)))
    seen: list[int] = []
    code = (
        "from pathlib import Path\n"
        "from mobctl.store.directory import DirectoryStore\n"
        "from mobctl.store.models import EventKind, NewMobEvent\n"
        f"log = DirectoryStore(Path({str(store.root)!r})).events({MOB!r})\n"
        "for i in range(5):\n"
        f"    log.append(NewMobEvent(mob_id={MOB!r}, kind=EventKind(type='child', i=i)))\n"
    )
    deadline = time.monotonic() + 30
    for item in log.follow(
        0, poll_interval=0.01, stop=lambda: len(seen) >= 6 or time.monotonic() > deadline
    ):
        seen.append(item.cursor)
        if item.cursor == 1:
            log.prune(datetime.now(UTC) - timedelta(minutes=1))
            subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy())
    assert seen == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("durable", [True, False])
def test_a_store_that_is_not_durable_syncs_nothing_and_works_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    monkeypatch.setattr("mobctl.store.directory.files._datasync", synced.append)
    store = DirectoryStore(tmp_path / "s", durable=durable)
    store.events(MOB).append(event("step_completed", run_id="r", step_id="a"))
    store.runs(MOB).create_run(new_run())
    assert bool(synced) == durable
    assert [e.kind.type for e in store.events(MOB).replay_all()] == ["step_completed"]
    assert check_store(store).ok
