"""The directory backend's transcripts: where they are, their mode, links and damage."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest

from mobctl.errors import StoreCorrupt, StoreLink
from mobctl.store.contract import TurnKey
from mobctl.store.directory import DirectoryStore
from mobctl.store.directory.transcripts import file_name, parse_name

KEY = TurnKey("review", "0", "reviewer-1", 2)


def test_one_private_file_per_turn_under_the_run(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "store")
    run_id = str(uuid.uuid4())
    store.transcripts("m").put_transcript(run_id, KEY, {"answer": "yes"})
    folder = tmp_path / "store" / "mobs" / "m" / "runs" / f"{run_id}.turns"
    (path,) = folder.iterdir()
    assert path.name == "t+review+0+reviewer-1+2.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.check().ok, store.check().problems


def test_names_round_trip_and_a_foreign_name_is_read_for_its_key() -> None:
    for key in (KEY, TurnKey("a+b", "1.2", "%", 3), TurnKey("s", "0", "m", 1, escalation=True)):
        assert parse_name(file_name(key)) == key
    assert file_name(TurnKey("s" * 300, "0", "m", 1)).startswith("h+")
    assert parse_name(file_name(TurnKey("s" * 300, "0", "m", 1))) is None
    assert parse_name("t+a+b.json") is None and parse_name("x+a+0+m+1.json") is None


def test_a_link_or_a_damaged_transcript_is_store_corrupt_without_quoting_it(
    tmp_path: Path,
) -> None:
    store = DirectoryStore(tmp_path / "store")
    run_id = str(uuid.uuid4())
    turns = store.transcripts("m")
    turns.put_transcript(run_id, KEY, {"answer": "yes"})
    folder = tmp_path / "store" / "mobs" / "m" / "runs" / f"{run_id}.turns"
    (folder / file_name(KEY)).write_text('{"schema_version": 1, "key": "SECRET", "record": {}}')
    with pytest.raises(StoreCorrupt) as damaged:
        turns.list_transcripts(run_id)
    assert "SECRET" not in damaged.value.message
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    (folder / file_name(KEY)).unlink()
    (folder / file_name(KEY)).symlink_to(outside)
    with pytest.raises(StoreLink):
        turns.list_transcripts(run_id)
    with pytest.raises(StoreLink):
        turns.put_transcript(run_id, KEY, {"answer": "no"})
    assert outside.read_text() == "{}"


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
