"""The directory backend: the whole store under one folder (store contract §8)."""

from mobctl.store.directory.store import DEFAULT_MAX_RECORD_BYTES, DirectoryStore

__all__ = ["DEFAULT_MAX_RECORD_BYTES", "DirectoryStore"]
