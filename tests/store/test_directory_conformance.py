"""The conformance suite against the directory backend."""

from __future__ import annotations

from tests.store.conformance import *  # noqa: F403  (the suite's tests run here)
