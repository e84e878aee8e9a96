"""Turn records cut to the store's record cap, storable whatever a driver put in them."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mobctl.canonical import canonical
from mobctl.engine.transcripts import capped, iteration_path

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
