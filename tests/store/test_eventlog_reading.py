"""Readers of the event log against concurrent writers, and whole-log verification (§8.4-§8.6).

The cases here are the ones ``mobctl events`` depends on: a follower that sees a torn tail
repaired by an append of the same length, a reader that opens the log while a prune replaces
it, and ``verify_log`` judging hashes, cursor order and batch framing with byte offsets.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mobctl.canonical import canonical
from mobctl.store.directory import DirectoryStore
from mobctl.store.directory.eventlog import DirectoryEventStore
from mobctl.store.directory.log_lines import Meta
from mobctl.store.hashing import GENESIS, line_hash
from tests.store.conformance import MOB, event

FIXED = "2026-01-01T00:00:00.000000Z"


def log_path(store: DirectoryStore) -> Path:
    return store.root / "mobs" / MOB / "events.jsonl"


def test_follow_sees_an_append_that_replaces_a_torn_tail_of_the_same_length(
    store: DirectoryStore, tmp_path: Path
) -> None:
    log = store.events(MOB)
    log.append(event("x"))
    # the line the next append writes, measured on a scratch copy of the log
    scratch = DirectoryStore(tmp_path / "scratch")
    scratch.events(MOB).append(event("x"))
    scratch.events(MOB).append(event("y", datetime(2026, 1, 1, tzinfo=UTC)))
    length = len(log_path(scratch).read_bytes().splitlines(keepends=True)[1])

    seen: list[int] = []
    done = threading.Event()

    def follow() -> None:
        for item in (
            DirectoryStore(store.root).events(MOB).follow(0, poll_interval=0.02, stop=done.is_set)
        ):
            seen.append(item.cursor)

    follower = threading.Thread(target=follow)
    follower.start()
    try:
        wait_until(lambda: seen == [1])
        with log_path(store).open("ab") as handle:
            handle.write(b"x" * length)  # a torn tail exactly as long as the next line
        time.sleep(0.2)  # the follower has looked at the torn tail
        size = log_path(store).stat().st_size
        log.append(event("y", datetime(2026, 1, 1, tzinfo=UTC)))  # quarantines, then appends
        assert log_path(store).stat().st_size == size  # same inode, same size
        wait_until(lambda: seen == [1, 2])
    finally:
        done.set()
        follower.join(timeout=10)
    assert seen == [1, 2]


def test_a_reader_that_meets_a_prune_between_open_and_meta_sees_no_corruption(
    store: DirectoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = store.events(MOB)
    old = datetime.now(UTC) - timedelta(hours=1)
    writer.append(event("member_spawned", old, agent_identity="w-1"))
    writer.append(event("a", old))
    writer.append(event("b"))  # its predecessor changes when "a" is pruned
    reader = DirectoryStore(store.root).events(MOB)
    original = DirectoryEventStore.read_meta
    pruned: list[int] = []

    def prune_meanwhile(self: DirectoryEventStore) -> Meta:
        meta = original(self)
        if self is reader and not pruned:
            pruned.append(writer.prune(datetime.now(UTC) - timedelta(minutes=1)))
        return meta

    monkeypatch.setattr(DirectoryEventStore, "read_meta", prune_meanwhile)
    assert [e.kind.type for e in reader.poll(0, 10)] == ["member_spawned", "a", "b"]
    assert pruned == [1]
    assert [e.kind.type for e in reader.poll(0, 10)] == ["member_spawned", "b"]


def wait_until(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- verify_log ----------------------------------------------------------------------------


def forge(records: list[dict[str, Any]]) -> bytes:
    """Lines whose hashes chain correctly, whatever their cursors and batch fields say."""
    previous = GENESIS
    lines = []
    for record in records:
        body = canonical(
            {"cursor": record["cursor"], "timestamp": FIXED, "mob_id": MOB, "kind": {"type": "x"}}
            | ({"batch": record["batch"]} if "batch" in record else {})
        ).encode()
        previous = line_hash(previous, body)
        lines.append(body[:-1] + b',"hash":"' + previous.encode() + b'"}\n')
    return b"".join(lines)


def verify(store: DirectoryStore, records: list[dict[str, Any]]) -> list[tuple[int, str]]:
    log_path(store).parent.mkdir(parents=True, exist_ok=True)
    data = forge(records)
    log_path(store).write_bytes(data)
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    result = store.events(MOB).verify_log()
    # every offset names the start of a line
    assert all(p.offset in starts for p in result.problems)
    return [(starts.index(p.offset), p.message) for p in result.problems]


def test_verify_log_counts_a_clean_log(store: DirectoryStore) -> None:
    log = store.events(MOB)
    log.append(event("a"))
    log.append_batch([event("b"), event("c"), event("d")])
    result = log.verify_log()
    assert (result.records, result.last_cursor, result.problems) == (4, 4, [])


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([{"cursor": 1}, {"cursor": 2, "batch": [2, 2]}, {"cursor": 3, "batch": [2, 2]}], []),
        ([{"cursor": 1}, {"cursor": 1}], [(1, "cursor 1")]),
        ([{"cursor": 2}, {"cursor": 1}], [(1, "cursor 1")]),
        (
            [{"cursor": 1, "batch": [1, 2]}, {"cursor": 2}],
            [(1, "batch [1, 2] is interrupted by cursor 2")],
        ),
        (
            [{"cursor": 1, "batch": [1, 3]}, {"cursor": 3, "batch": [1, 3]}],
            [(1, "cursor 3 in batch [1, 3] should be 2")],
        ),
        (
            [{"cursor": 1}, {"cursor": 2, "batch": [1, 2]}],
            [(1, "cursor 2 claims batch [1, 2], which does not start there")],
        ),
        (
            [{"cursor": 1, "batch": [1, 1]}],
            [(0, "cursor 1 claims batch [1, 1], which does not start there")],
        ),
        (
            [{"cursor": 1}, {"cursor": 2, "batch": [2, 3]}, {"cursor": 3, "batch": [2, 3]}],
            [(1, "incomplete batch at the end of the log")],
        ),
    ],
)
def test_verify_log_judges_cursor_order_and_batch_framing(
    store: DirectoryStore, records: list[dict[str, Any]], expected: list[tuple[int, str]]
) -> None:
    found = verify(store, records)
    assert [line for line, _ in found] == [line for line, _ in expected]
    for (_, message), (_, start) in zip(found, expected, strict=True):
        assert message.startswith(start + " "), message


def test_verify_log_stops_at_a_record_that_does_not_verify(store: DirectoryStore) -> None:
    log = store.events(MOB)
    for i in range(3):
        log.append(event("x", i=i))
    data = log_path(store).read_bytes()
    second = data.index(b"\n") + 1
    log_path(store).write_bytes(data.replace(b'"i":1', b'"i":7'))
    result = log.verify_log()
    assert result.records == 1
    assert [(p.offset, p.message) for p in result.problems] == [
        (second, f"record at byte {second} does not verify (its chain hash does not match)")
    ]
    assert json.loads(data.splitlines()[0])["cursor"] == 1
