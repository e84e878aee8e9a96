"""Turn records cut to the store's record cap, storable whatever a driver put in them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobctl.canonical import canonical
from mobctl.drivers.base import Drivers
from mobctl.drivers.echo import EchoDriver
from mobctl.engine.runner import FlowRunner
from mobctl.engine.transcripts import capped, iteration_path
from mobctl.errors import WriteFailed
from mobctl.store.directory import DirectoryStore
from tests.engine.test_backoff import definition

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=40,
)


def test_a_record_that_fits_is_kept_whole() -> None:
    record = {"status": "completed", "output": "short", "driver": {"messages": ["a", "b"]}}
    assert capped(record, 4096) == record


def test_a_long_record_is_cut_to_the_cap_and_says_so() -> None:
    record = {"status": "completed", "output": "x" * 100_000, "driver": {"stderr": "y" * 50_000}}
    kept = capped(record, 4096)
    assert len(canonical(kept).encode()) <= 4096
    assert kept["truncated"] is True and kept["status"] == "completed"
    assert kept["output"].startswith("xxx") and "[cut: " in kept["output"]


@given(st.dictionaries(st.text(), JSON, max_size=8), st.integers(min_value=1024, max_value=8192))
def test_any_record_becomes_storable_json_within_the_cap(record: dict[str, Any], cap: int) -> None:
    kept = capped(record, cap)
    text = canonical(kept)  # raises on what JSON cannot hold (NaN, lone surrogates)
    assert len(text.encode()) <= cap


def test_loop_iterations_are_dotted_outermost_first() -> None:
    assert iteration_path("r-root") == "0"
    assert iteration_path("r-root::loop::iter-2") == "2"
    assert iteration_path("r-root::l::iter-1::m::iter-3") == "1.3"


class _Refusing:
    def put_transcript(self, *args: object, **kwargs: object) -> None:
        raise WriteFailed("the disk is full")

    def list_transcripts(self, *args: object, **kwargs: object) -> list[object]:
        return []


class _StoreRefusingTranscripts(DirectoryStore):
    def transcripts(self, mob_id: str) -> Any:
        return _Refusing()


def test_a_turn_whose_transcript_cannot_be_written_is_never_recorded(tmp_path: Path) -> None:
    """The transcript comes first: when it cannot be written, the store error ends the run's
    process (exit 6 at the CLI) and the turn's result is not recorded (a resume redoes it)."""
    store = _StoreRefusingTranscripts(tmp_path / "store")
    steps = {"a": {"role": "w", "message": "x"}}
    runner = FlowRunner(store, definition(steps), "main", {}, Drivers(EchoDriver()))
    runner.create()
    with pytest.raises(WriteFailed, match="the disk is full"):
        runner.execute()
    kinds = [e.kind.type for e in DirectoryStore(tmp_path / "store").events("s").replay_all()]
    assert "step_dispatched" in kinds
    assert "step_target_completed" not in kinds and "step_completed" not in kinds


def test_an_integer_too_long_to_write_is_kept_as_a_note() -> None:
    """Python refuses to write an integer of more than 4300 digits: the turn's record keeps a
    note instead (a worker that raised here once left its run waiting forever)."""
    kept = capped({"structured_output": [10**4300, 7]}, 4096)
    assert kept == {"structured_output": ["[integer too large to keep]", 7]}
    canonical(kept)
