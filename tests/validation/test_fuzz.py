"""Malformed input never produces a traceback: any bytes, any TOML, any value types.

Every outcome is a list of diagnostics with known codes, and every diagnostic about a TOML
file carries a 1-based line and column.
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobctl.definition.model import MobDefinition
from mobctl.diagnostics import CODES
from mobctl.validation.catalog import bundled_catalog
from mobctl.validation.validate import Report, validate_bytes
from tests.conftest import CORPUS, SAMPLES

CATALOG = bundled_catalog()
SEEDS = sorted(SAMPLES.glob("*.toml")) + sorted(CORPUS.glob("*.toml"))
SEED_DOCS = [tomllib.loads(p.read_text()) for p in SEEDS]


def _known_keys() -> list[str]:
    keys: set[str] = set()
    pending: list[Any] = [MobDefinition]
    seen: set[Any] = set()
    import typing

    while pending:
        tp = pending.pop()
        if tp in seen:
            continue
        seen.add(tp)
        if isinstance(tp, type) and hasattr(tp, "model_fields"):
            for name, info in tp.model_fields.items():
                keys.add(name)
                pending.append(info.annotation)
        for arg in typing.get_args(tp):
            pending.append(arg)
    return sorted(keys)


KEYS = st.one_of(st.sampled_from(_known_keys()), st.text(min_size=1, max_size=8))
SCALARS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["{{ steps.a }}", "{{", "}}", "{{ }}", "params.x", "steps.a.b", "../x", ""]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=20,
)


def check(report: Report, fmt: str) -> None:
    for diag in report.diagnostics:
        assert diag.code in CODES
        assert diag.severity.value in ("error", "warning")
        assert diag.message
        if fmt == "toml" and report.loaded.document is not None:
            assert diag.line is not None and diag.line >= 1, diag
            assert diag.column is not None and diag.column >= 1, diag


def run(data: bytes, fmt: str) -> Report:
    report = validate_bytes(data, fmt, "fuzz." + fmt, Path("/nonexistent"), CATALOG)  # type: ignore[arg-type]
    check(report, fmt)
    return report


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes(data: bytes) -> None:
    run(data, "toml")
    run(data, "json")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_any_document(document: dict[str, Any]) -> None:
    run(tomlkit.dumps(document).encode(), "toml")
    run(json.dumps(document).encode(), "json")


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    document = copy.deepcopy(draw(st.sampled_from(SEED_DOCS)))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(document) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = document
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["delete", "replace", "rename", "insert"]))
        last = path[-1]
        if action == "delete":
            del parent[last]
        elif action == "replace":
            parent[last] = draw(VALUES)
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(KEYS)] = parent.pop(last)
        elif isinstance(parent, dict):
            parent[draw(KEYS)] = draw(VALUES)
        else:
            parent.insert(last, draw(VALUES))
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_definitions(document: dict[str, Any]) -> None:
    run(tomlkit.dumps(document).encode(), "toml")
    run(json.dumps(document).encode(), "json")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SEEDS), st.data())
def test_truncated_and_corrupted_files(path: Path, data: st.DataObject) -> None:
    raw = path.read_bytes()
    cut = data.draw(st.integers(0, len(raw)))
    run(raw[:cut], "toml")
    position = data.draw(st.integers(0, max(len(raw) - 1, 0)))
    byte = data.draw(st.integers(0, 255))
    run(raw[:position] + bytes([byte]) + raw[position + 1 :], "toml")
