"""The conformance suite against the directory backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mobctl.store.directory import DirectoryStore
from tests.store.conformance import *  # noqa: F403  (the suite's tests run here)


@pytest.fixture
def store(tmp_path: Path) -> DirectoryStore:
    return DirectoryStore(tmp_path / "store", lock_timeout=5)


@pytest.fixture
def reopen(tmp_path: Path) -> Callable[[], DirectoryStore]:
    return lambda: DirectoryStore(tmp_path / "store", lock_timeout=5)
