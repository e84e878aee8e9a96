"""A mob's event log for people and scripts (``mobctl events tail|verify|prune``): filters,
the last N events, following. It uses only the ``EventStore`` contract and never locks to read.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase

from mobctl.api.runs import resolve_run
from mobctl.api.session import writing
from mobctl.api.waiting import OrphanWatch
from mobctl.clock import now, parse_timestamp, timestamp
from mobctl.errors import ConfirmationRequired, NotFound, StaleCursor, StoreCorrupt
from mobctl.ids import is_run_id, require_slug
from mobctl.store.contract import EventStore, LogProblem, Store
from mobctl.store.models import TERMINAL_EVENT_TYPES, MobEvent
from mobctl.store.run_ops import first_cursor

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


def tail(
    log: EventStore,
    query: EventQuery,
    *,
    after_cursor: int | None = None,
    limit: int | None = None,
    follow: bool = False,
    run_since: int | None = None,
    run_ended: bool = False,
    poll_interval: float = FOLLOW_POLL_INTERVAL,
    stop: Callable[[], bool] | None = None,
) -> Iterator[MobEvent]:
    """The matching events, oldest first, then (``follow``) every new one as it is appended.

    ``limit``: at most that many of the latest matches are shown first; by default 20, or
    every match after ``after_cursor`` when one is given. A query with a run reads from
    ``run_since`` (every event of the run comes after it) up to the run's terminal event, where
    following ends too (and at once when ``run_ended``: its events were pruned). Checks the
    cursor eagerly.
    """
    latest = log.latest_cursor()
    if after_cursor is not None and after_cursor > latest:
        raise StaleCursor(after_cursor, latest)
    if limit is None and after_cursor is None:
        limit = DEFAULT_LIMIT
    start = max(after_cursor or 0, run_since or 0)
    bounded = query.run_id is not None and run_since is not None
    return _tail(log, query, latest, start, limit, follow, run_ended, bounded, poll_interval, stop)


def _tail(
    log: EventStore,
    query: EventQuery,
    latest: int,
    after: int,
    limit: int | None,
    follow: bool,
    ended: bool,
    bounded: bool,  # the run's events end at its terminal event: read no further
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
            if query.matches(event):
                if limit is None:
                    yield event  # every match: stream it
                else:
                    kept.append(event)
            if bounded and run_id is not None and is_terminal_of(event, run_id):
                ended = True  # nothing of the run comes after its terminal event
                break
        yield from kept
    if not follow or ended:
        return
    if query.until is not None:  # nothing appended after --until can match: stop then
        until, outer = query.until, stop

        def stop_at_until() -> bool:
            return (outer is not None and outer()) or now() > until

        stop = stop_at_until
    try:
        for event in log.follow(last, poll_interval=poll_interval, stop=stop):
            if query.matches(event):
                yield event
            if run_id is not None and is_terminal_of(event, run_id):
                return
    except StaleCursor as exc:  # the cursor was checked above: the log went back since
        raise StaleCursor(exc.after, exc.latest, following=True) from None


def _logged_run(store: Store, mob_id: str, run_id: str) -> bool | None:
    """For a whole run id with no snapshot: None when the log has no event of it either, else
    whether its terminal event is there (one pass over the log: runs of other tools, or whose
    snapshot was deleted, are rare)."""
    if not is_run_id(run_id) or store.runs(mob_id).get_run(run_id) is not None:
        return None
    known = ended = False
    for event in events_after(store.events(mob_id), 0):
        if event.kind.field("run_id") == run_id:
            known = True
            ended = ended or event.kind.type in TERMINAL_EVENT_TYPES
    return ended if known else None


def mob_events(store: Store, mob_id: str) -> EventStore:
    """The event log of a mob the store knows (a spec, events or runs); else NotFound."""
    require_slug(mob_id, "mob id")
    if mob_id not in store.mob_ids():
        raise NotFound(
            f"no mob '{mob_id}' in the store {store.location}",
            hint="`mobctl specs list` shows the registered mobs",
        )
    return store.events(mob_id)


def events_tail(
    store: Store,
    mob_id: str,
    query: EventQuery,
    *,
    after_cursor: int | None = None,
    limit: int | None = None,
    follow: bool = False,
    poll_interval: float | None = None,
    stop: Callable[[], bool] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[MobEvent]:
    """A mob's matching events, oldest first; with ``follow``, then every new one until
    ``stop`` (or, when the query names a run, until that run's terminal event).

    ``limit`` keeps the latest matches (default 20, or all after ``after_cursor``). A cursor
    beyond the end is StaleCursor; a run the mob does not have is NotFound. Following a run
    also ends once the run is orphaned (its owner is gone: it would never end). Following a
    mob that does not exist yet waits for it (``on_wait`` is told so once); otherwise an
    unknown mob is NotFound. Takes no lock.
    """
    poll = poll_interval or FOLLOW_POLL_INTERVAL
    if follow and require_slug(mob_id, "mob id") not in store.mob_ids():

        def once_it_exists() -> Iterator[MobEvent]:
            if on_wait is not None:
                on_wait(f"waiting for mob '{mob_id}' to appear in the store {store.location}")
            while mob_id not in store.mob_ids():
                if stop is not None and stop():
                    return
                time.sleep(poll)
            yield from events_tail(
                store, mob_id, query, after_cursor=after_cursor, limit=limit, follow=True,
                poll_interval=poll, stop=stop,
            )  # fmt: skip

        return once_it_exists()
    log = mob_events(store, mob_id)
    since: int | None = None
    ended = False
    if query.run_id is not None:
        logged = _logged_run(store, mob_id, query.run_id)
        if logged is not None:  # only its events are left (its snapshot gone): all of them
            ended = logged
        else:
            run = resolve_run(store, mob_id, query.run_id)  # a unique prefix names it too
            query = dataclasses.replace(query, run_id=run.run_id)
            since, ended = first_cursor(run), run.terminal
            if follow and not ended:
                stop = OrphanWatch(store, run, stop)
    return tail(
        log,
        query,
        after_cursor=after_cursor,
        limit=limit,
        follow=follow,
        run_since=since,
        run_ended=ended,
        poll_interval=poll,
        stop=stop,
    )


@dataclass(frozen=True)
class EventLogCheck:
    mob_id: str
    path: str  # where the log is (the directory backend: its file)
    records: int
    latest_cursor: int
    problem: LogProblem | None  # the first one

    @property
    def ok(self) -> bool:
        return self.problem is None

    def error(self) -> StoreCorrupt:
        assert self.problem is not None
        torn = self.problem.message.startswith(("torn tail", "incomplete batch"))
        return StoreCorrupt(
            f"{self.path}: {self.problem.message}",
            hint="`mobctl store check --repair` moves a torn tail to quarantine"
            if torn
            else "nothing repairs a damaged record automatically; restore the log from a backup",
        )


def events_verify(store: Store, mob_id: str) -> EventLogCheck:
    """Check every record of a mob's log: hash chain, cursor order, batch framing."""
    log = mob_events(store, mob_id)
    result = log.verify_log()
    problem = result.problems[0] if result.problems else None
    return EventLogCheck(mob_id, log.location, result.records, result.last_cursor, problem)


@dataclass(frozen=True)
class PruneResult:
    mob_id: str
    older_than: str
    deleted: int
    latest_cursor: int
    repaired: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def document(self) -> dict[str, object]:
        return {
            "mob_id": self.mob_id,
            "older_than": self.older_than,
            "deleted": self.deleted,
            "latest_cursor": self.latest_cursor,
        }


def events_prune(
    store: Store,
    mob_id: str,
    older_than: datetime,
    *,
    confirm: Callable[[str, str], bool] | None = None,
) -> PruneResult:
    """Delete a mob's events older than ``older_than`` except the anchors (store contract §3.3).

    ``confirm(mob_id, cutoff)`` is asked first when given; False prunes nothing."""
    log = mob_events(store, mob_id)
    cutoff = timestamp(older_than)
    if confirm is not None and not confirm(mob_id, cutoff):
        raise ConfirmationRequired("not confirmed: nothing was pruned")
    with writing(store, mob_id) as session:
        deleted = log.prune(older_than)
    return PruneResult(
        mob_id, cutoff, deleted, log.latest_cursor(), session.repaired, session.warnings
    )
