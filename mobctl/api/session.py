"""The rules every writing command follows (store contract §8.9), in one place.

Opening a mob to write first repairs it (a terminal run whose terminal event a crash lost gets
it back, exactly once); closing it signs the log when terminal events were written and the mob
has a supervisor authority. A command opens a session and does its work inside it::

    with writing(store, mob_id) as session:
        ...                        # session.wrote_terminal() after writing a terminal event
    session.repaired, session.warnings
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from mobctl.ids import require_slug
from mobctl.store.checkpoints import sign_after_terminal
from mobctl.store.contract import Store
from mobctl.store.repair import repair_terminal_events


@dataclass
class Session:
    store: Store
    mob_id: str
    repaired: list[str] = field(default_factory=list)  # runs whose terminal event was re-added
    warnings: list[str] = field(default_factory=list)
    _terminal: bool = False

    def wrote_terminal(self) -> None:
        """Terminal events were written: the log is signed when the session closes."""
        self._terminal = True


@contextmanager
def writing(store: Store, mob_id: str) -> Iterator[Session]:
    """A writing command's session on ``mob_id``: repaired first, signed after (even when the
    work fails after writing terminal events: what was written gets signed)."""
    session = Session(store, require_slug(mob_id, "mob id"))
    session.repaired = repair_terminal_events(store, mob_id)
    try:
        yield session
    finally:
        if session.repaired or session._terminal:
            unsigned = sign_after_terminal(store, mob_id)
            if unsigned is not None:
                session.warnings.append(unsigned)
