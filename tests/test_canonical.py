"""Store JSON: parse_json refuses what the store never writes, wherever it sits in a document."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobctl.canonical import MAX_DOCUMENT_DEPTH, Unwritable, parse_json


def test_a_wide_shallow_document_with_many_brackets_reads() -> None:
    """A large snapshot holds far more brackets than the depth limit, side by side."""
    document = {"steps": [{"id": i, "targets": [[i]]} for i in range(5 * MAX_DOCUMENT_DEPTH)]}
    assert parse_json(json.dumps(document).encode()) == document


def test_brackets_inside_strings_do_not_count() -> None:
    document = {"text": "[" * (3 * MAX_DOCUMENT_DEPTH) + '\\"{' * MAX_DOCUMENT_DEPTH}
    assert parse_json(json.dumps(document).encode()) == document


@pytest.mark.parametrize("depth", [MAX_DOCUMENT_DEPTH + 1, MAX_DOCUMENT_DEPTH + 40])
def test_a_document_nested_past_the_limit_is_refused(depth: int) -> None:
    text = "[" * depth + "1" + "]" * depth
    with pytest.raises(Unwritable, match=f"nested more than {MAX_DOCUMENT_DEPTH} levels deep"):
        parse_json(text.encode())


def test_a_document_nested_to_the_limit_reads() -> None:
    depth = MAX_DOCUMENT_DEPTH
    assert parse_json(("[" * depth + "1" + "]" * depth).encode()) is not None


@given(st.recursive(st.text(max_size=5), lambda inner: st.lists(inner, max_size=3), max_leaves=20))
def test_any_shallow_value_round_trips(value: object) -> None:
    assert parse_json(json.dumps(value).encode()) == value


def test_a_lone_surrogate_escape_is_refused() -> None:
    with pytest.raises(Unwritable, match="lone surrogate"):
        parse_json(b'{"deep": [[{"k": "\\ud800"}]]}')
