"""Creating and checking a store (``mobctl store init|check``)."""

from __future__ import annotations

from mobctl.store.contract import CheckReport, Store


def store_init(store: Store) -> bool:
    """Create the store (idempotent); True when it was created now."""
    return store.prepare()


def store_check(store: Store, *, repair: bool) -> CheckReport:
    """Check (and with ``repair`` mend) the whole store (store contract §8.9)."""
    return store.check(repair=repair)
