"""The store under test: the directory backend, fresh for each test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mobctl.store.contract import Store
from mobctl.store.directory import DirectoryStore


@pytest.fixture
def open_store(tmp_path: Path) -> Callable[[], DirectoryStore]:
    """A new store object on the same data each call (the first one finds it empty): the
    factory the backend-neutral conformance suite takes."""
    return lambda: DirectoryStore(tmp_path / "store", lock_timeout=5)


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    return open_store()
