"""A dict that remembers which keys were assigned, so that the scheduler writes to the run
journal only what changed since its last write (not the whole, growing, flow state)."""

from __future__ import annotations

from typing import Any


class Tracked(dict[str, Any]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changed: set[str] = set()

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.changed.add(key)

    def drain(self) -> set[str]:
        """The keys assigned since the last drain (and forget them)."""
        changed, self.changed = self.changed, set()
        return changed
