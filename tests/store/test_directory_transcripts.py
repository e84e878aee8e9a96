"""The directory backend's transcripts: where they are, their mode, links, crashes and damage."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest

from mobctl.errors import StoreCorrupt, StoreLink
from mobctl.store.contract import TurnKey
from mobctl.store.directory import DirectoryStore

KEY = TurnKey("review", "0", "reviewer-1", 2)


def log_of(tmp_path: Path, run_id: str) -> Path:
    return tmp_path / "store" / "mobs" / "m" / "runs" / f"{run_id}.turns.jsonl"


def test_one_private_log_per_run_a_line_per_turn(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "store")
    run_id = str(uuid.uuid4())
    turns = store.transcripts("m")
    turns.put_transcript(run_id, KEY, {"answer": "yes"})
    turns.put_transcript(run_id, TurnKey("a+b/../c", "1.2", "%", 3), {"answer": "no"})
    log = log_of(tmp_path, run_id)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert log.read_text().count("\n") == 2
    assert [t.key for t in turns.list_transcripts(run_id)] == [
        TurnKey("a+b/../c", "1.2", "%", 3),
        KEY,
    ]
    assert store.check().ok, store.check().problems


def test_a_key_written_again_reads_as_its_last_line(tmp_path: Path) -> None:
    """A turn resumed after a crash writes its key again: the newer transcript wins."""
    turns = DirectoryStore(tmp_path / "store").transcripts("m")
    run_id = str(uuid.uuid4())
    turns.put_transcript(run_id, KEY, {"answer": "first"})
    turns.put_transcript(run_id, KEY, {"answer": "again"})
    assert [t.record for t in turns.list_transcripts(run_id)] == [{"answer": "again"}]


def test_a_line_cut_by_a_crash_is_ignored_and_cut_before_the_next_append(
    tmp_path: Path,
) -> None:
    turns = DirectoryStore(tmp_path / "store").transcripts("m")
    run_id = str(uuid.uuid4())
    turns.put_transcript(run_id, KEY, {"answer": "yes"})
    log = log_of(tmp_path, run_id)
    with log.open("ab") as handle:
        handle.write(b'{"schema_version":1,"key":{"step_id":"x"')  # the crash came here
    assert [t.record for t in turns.list_transcripts(run_id)] == [{"answer": "yes"}]
    fresh = DirectoryStore(tmp_path / "store").transcripts("m")  # as a resuming process
    later = TurnKey("review", "0", "reviewer-1", 3)
    fresh.put_transcript(run_id, later, {"answer": "later"})
    assert [t.key for t in fresh.list_transcripts(run_id)] == [KEY, later]


def test_a_link_or_a_damaged_transcript_is_store_corrupt_without_quoting_it(
    tmp_path: Path,
) -> None:
    store = DirectoryStore(tmp_path / "store")
    run_id = str(uuid.uuid4())
    turns = store.transcripts("m")
    turns.put_transcript(run_id, KEY, {"answer": "yes"})
    log = log_of(tmp_path, run_id)
    log.write_text('{"schema_version": 1, "key": "SECRET", "record": {}}\n')
    with pytest.raises(StoreCorrupt) as damaged:
        turns.list_transcripts(run_id)
    assert "SECRET" not in damaged.value.message
    assert damaged.value.message.startswith(f"{log} line 1 is not a turn transcript: key: ")
    outside = tmp_path / "outside.jsonl"
    outside.write_text("{}\n")
    log.unlink()
    log.symlink_to(outside)
    with pytest.raises(StoreLink):
        turns.list_transcripts(run_id)
    with pytest.raises(StoreLink):
        turns.put_transcript(run_id, KEY, {"answer": "no"})
    assert outside.read_text() == "{}\n"


def test_turns_are_in_numeric_iteration_order_whatever_a_planted_key_says(
    tmp_path: Path,
) -> None:
    store = DirectoryStore(tmp_path / "store")
    run_id = str(uuid.uuid4())
    turns = store.transcripts("m")
    # 5,000 digits is more than int() converts (exit 70); '²' is a digit int() refuses
    iterations = ["10", "9", "2.10", "2.9", "0", "9" * 5000, "²", "007"]
    for iteration in iterations:
        turns.put_transcript(run_id, TurnKey("s", iteration, "m", 1), {})
    listed = [t.key.iteration for t in turns.list_transcripts(run_id)]
    assert listed == ["²", "0", "2.9", "2.10", "007", "9", "10", "9" * 5000]
