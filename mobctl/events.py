"""Reading a mob's event log for people and scripts: filters, the last N events, following.

The logic behind ``mobctl events tail``. It uses only the ``EventStore`` contract (``poll``,
``tail``, ``latest_cursor``, ``follow``), so it works on any backend, and never takes a lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase

from mobctl.clock import now, parse_timestamp
from mobctl.errors import StaleCursor
from mobctl.store.contract import EventStore
from mobctl.store.models import TERMINAL_EVENT_TYPES, MobEvent

DEFAULT_LIMIT = 20
# A follower stats the log this often: an event is printed at most this long after its append
# (plus the read), and an idle follower costs one stat per interval.
FOLLOW_POLL_INTERVAL = 0.1
PAGE = 1000


@dataclass(frozen=True)
class EventQuery:
    """Which events to show: every condition given must hold (times are inclusive)."""

    run_id: str | None = None
    step_id: str | None = None
    types: tuple[str, ...] = ()  # glob patterns over ``kind.type``; any may match
    since: datetime | None = None
    until: datetime | None = None

    @property
    def selects_all(self) -> bool:
        return self == EventQuery()

    def matches(self, event: MobEvent) -> bool:
        kind = event.kind
        if self.run_id is not None and kind.field("run_id") != self.run_id:
            return False
        if self.step_id is not None and kind.field("step_id") != self.step_id:
            return False
        if self.types and not any(fnmatchcase(kind.type, p) for p in self.types):
            return False
        if self.since is not None or self.until is not None:
            moment = parse_timestamp(event.timestamp)
            if self.since is not None and moment < self.since:
                return False
            if self.until is not None and moment > self.until:
                return False
        return True


def is_terminal_of(event: MobEvent, run_id: str) -> bool:
    return event.kind.type in TERMINAL_EVENT_TYPES and event.kind.field("run_id") == run_id


def events_after(log: EventStore, after_cursor: int) -> Iterator[MobEvent]:
    """Every event with a cursor above ``after_cursor``, in order, a page at a time."""
    while page := log.poll(after_cursor, PAGE):
        yield from page
        after_cursor = page[-1].cursor


def run_in_log(log: EventStore, run_id: str) -> tuple[bool, bool]:
    """(whether any event belongs to the run, whether its terminal event is there)."""
    known = ended = False
    for event in events_after(log, 0):
        if event.kind.field("run_id") == run_id:
            known = True
            ended = ended or event.kind.type in TERMINAL_EVENT_TYPES
    return known, ended


def tail(
    log: EventStore,
    query: EventQuery,
    *,
    after_cursor: int | None = None,
    limit: int | None = None,
    follow: bool = False,
    run_ended: bool = False,
    poll_interval: float = FOLLOW_POLL_INTERVAL,
    stop: Callable[[], bool] | None = None,
) -> Iterator[MobEvent]:
    """The matching events, oldest first, then (``follow``) every new one as it is appended.

    ``limit``: at most that many of the latest matches are shown first; by default 20, or
    every match after ``after_cursor`` when one is given. Following a query with a run ends
    after that run's terminal event (at once when ``run_ended``). Checks the cursor eagerly.
    """
    latest = log.latest_cursor()
    if after_cursor is not None and after_cursor > latest:
        raise StaleCursor(after_cursor, latest)
    if limit is None and after_cursor is None:
        limit = DEFAULT_LIMIT
    return _tail(
        log, query, latest, after_cursor or 0, limit, follow, run_ended, poll_interval, stop
    )


def _tail(
    log: EventStore,
    query: EventQuery,
    latest: int,
    after: int,
    limit: int | None,
    follow: bool,
    ended: bool,
    poll_interval: float,
    stop: Callable[[], bool] | None,
) -> Iterator[MobEvent]:
    run_id = query.run_id
    last = after
    if limit is not None and query.selects_all and after == 0:
        shown = log.tail(limit) if limit else []  # seeks: no need to read the whole log
        last = shown[-1].cursor if shown else latest
        yield from shown
    else:
        kept: deque[MobEvent] = deque(maxlen=limit)
        for event in events_after(log, after):
            last = event.cursor
            ended = ended or (run_id is not None and is_terminal_of(event, run_id))
            if query.matches(event):
                if limit is None:
                    yield event  # every match: stream it
                else:
                    kept.append(event)
        yield from kept
    if not follow or ended:
        return
    if query.until is not None:  # nothing appended after --until can match: stop then
        until, outer = query.until, stop

        def stop_at_until() -> bool:
            return (outer is not None and outer()) or now() > until

        stop = stop_at_until
    for event in log.follow(last, poll_interval=poll_interval, stop=stop):
        if query.matches(event):
            yield event
        if run_id is not None and is_terminal_of(event, run_id):
            return
