"""Opening a store by its location: the composition root's one place that knows backends.

A directory path opens the directory backend (the embedded default); a database backend would
be chosen here by its URL scheme.
"""

from __future__ import annotations

from pathlib import Path

from mobctl.store.contract import Store
from mobctl.store.directory import DEFAULT_MAX_RECORD_BYTES, DirectoryStore
from mobctl.store.directory.locks import DEFAULT_TIMEOUT, WaitCallback

__all__ = ["DEFAULT_MAX_RECORD_BYTES", "MIN_RECORD_BYTES", "open_store"]

MIN_RECORD_BYTES = 16 * 1024  # room for the engine's own records around an output


def open_store(
    location: str | Path,
    *,
    lock_timeout: float = DEFAULT_TIMEOUT,
    on_wait: WaitCallback | None = None,
    passphrase: str | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    durable: bool = True,
) -> Store:
    """The store at ``location``; ``passphrase`` encrypts supervisor secrets at rest;
    ``max_record_bytes`` caps an event line or a run change (at least :data:`MIN_RECORD_BYTES`);
    ``durable=False``: nothing is synced to the disk, for a store thrown away after use."""
    return DirectoryStore(
        Path(location),
        lock_timeout=lock_timeout,
        on_wait=on_wait,
        passphrase=passphrase,
        max_record_bytes=max(max_record_bytes, MIN_RECORD_BYTES),
        durable=durable,
    )
