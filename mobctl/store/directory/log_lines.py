"""The event log's line format (store contract §8.4-§8.6), read from bytes: a record and its
chain check, the meta record, batch framing, prune groups, and finding lines by cursor
without a scan."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO

from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError

from mobctl.canonical import parse_json
from mobctl.clock import parse_timestamp
from mobctl.errors import StoreCorrupt
from mobctl.store.defects import defect
from mobctl.store.hashing import GENESIS, line_hash
from mobctl.store.models import EventKind, MobEvent, Timestamp

HASH_TAIL = 76  # len(',"hash":"' + 64 hex + '"}\n')
_HASH_TAIL = re.compile(rb',"hash":"([0-9a-f]{64})"\}\n\Z')
CURSOR = re.compile(rb'\{"cursor":(\d+),')
EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*")  # fullmatch
_CHUNK = 65536  # below this, binary search turns into a scan
_BACK = 4096  # first window when reading backwards

ANCHORS: frozenset[str] = frozenset(
    {
        "member_spawned",
        "member_retirement_started",
        "remote_member_runtime_retired",
        "remote_member_supervisor_revoked",
        "member_retired",
        "member_reset",
        "member_session_binding_recovered",
        "members_wired",
        "members_wired_batch",
        "members_unwired",
        "mob_reset",
        "mob_created",
        "mob_definition_updated",
    }
)


@dataclass(frozen=True, slots=True)
class Record:
    """One verified line of the log."""

    offset: int
    raw: bytes
    cursor: int
    hash: str
    batch: tuple[int, int] | None
    data: dict[str, Any]

    @property
    def end(self) -> int:
        return self.offset + len(self.raw)

    def event(self) -> MobEvent:
        return MobEvent(
            cursor=self.cursor,
            timestamp=self.data["timestamp"],
            mob_id=self.data["mob_id"],
            kind=EventKind.model_validate(self.data["kind"]),
        )


class PendingPrune(BaseModel):
    before: Timestamp  # its horizon
    first: int  # the first cursor it deletes


_HEX64 = re.compile(r"[0-9a-f]{64}")


def _chain_hash(text: str) -> str:
    if _HEX64.fullmatch(text) is None:  # a reader hashes it as ASCII
        raise PydanticCustomError("chain_hash", "Input should be 64 lowercase hex digits")
    return text


ChainHash = Annotated[str, AfterValidator(_chain_hash)]


class Meta(BaseModel):
    """``events.meta.json``: the cursor high-water, the chain's genesis and the links that
    bridge pruned records (§8.4, §8.6)."""

    next_cursor: int = 1
    genesis: ChainHash = GENESIS
    chain_links: dict[str, ChainHash] = Field(default_factory=dict)
    pruned_before: Timestamp | None = None  # the newest prune's horizon
    # a prune begun but maybe not done; it took effect iff the first record it deletes is gone
    # from the log (see ``pruned_before``)
    pending_prune: PendingPrune | None = None

    def predecessor(self, cursor: int, previous: str | None) -> str:
        return self.chain_links.get(str(cursor)) or previous or self.genesis


def parse_line(raw: bytes, offset: int, meta: Meta, previous: str | None) -> Record | None:
    """A line that parses, has an event's shape and verifies against its predecessor, else
    None (:func:`read_line` says why)."""
    record = read_line(raw, offset, meta, previous)
    return record if isinstance(record, Record) else None


def read_line(raw: bytes, offset: int, meta: Meta, previous: str | None) -> Record | str:
    """The record of a line, or what is wrong with it ("does not verify …"), in words that
    never quote it."""
    match = _HASH_TAIL.search(raw)
    if match is None:
        return "does not end with a chain hash"
    try:
        data = parse_json(raw)
    except ValueError as exc:
        return defect("an event", exc, names=EVENT_FIELDS)
    problem = _shape_problem(data)
    if problem is not None:
        return f"is not an event: {problem}"
    cursor = data["cursor"]
    body = raw[:-HASH_TAIL] + b"}"
    digest = match.group(1).decode()
    if line_hash(meta.predecessor(cursor, previous), body) != digest:
        return "does not verify (its chain hash does not match)"
    batch = data.get("batch")
    span = (batch[0], batch[1]) if batch is not None else None
    return Record(offset, raw, cursor, digest, span, data)


def file_identity(info: os.stat_result) -> tuple[int, int, int]:
    return info.st_ino, info.st_size, info.st_mtime_ns


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _member(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("identity"), str)
        and _integer(value.get("generation"))
    )


_TEXT = (lambda value: isinstance(value, str), "a string")
_INTEGER = (_integer, "an integer")
_OBJECT = (lambda value: isinstance(value, dict), "an object")
_MEMBER = (_member, 'a member {"identity": <string>, "generation": <integer>}')
# the fields of the kinds mobctl writes (flow-semantics §14.1) that readers rely on, by name
# (the same name has the same type in every kind); null or absent is read as missing
KIND_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    **dict.fromkeys(
        (
            *("run_id", "flow_id", "step_id", "reason", "cause", "agent_identity", "role"),
            *("runtime_mode", "from_role", "to_role", "escalated_to", "digest"),
        ),
        _TEXT,
    ),
    **dict.fromkeys(("attempt", "generation", "fence_token", "revision"), _INTEGER),
    **dict.fromkeys(("target", "agent_runtime_id"), _MEMBER),
    **dict.fromkeys(("params", "definition", "structured_output"), _OBJECT),
}
EVENT_FIELDS = frozenset(
    {"cursor", "timestamp", "mob_id", "kind", "batch", "hash", "type", "output", *KIND_FIELDS}
)


def _shape_problem(data: Any) -> str | None:
    """What keeps a decoded line from having an event's shape (a chain hash proves nothing:
    anyone can compute one), so that everything downstream may rely on it; None if nothing."""
    if not isinstance(data, dict):
        return "should be an object"
    cursor, moment, kind = data.get("cursor"), data.get("timestamp"), data.get("kind")
    if not _count(cursor):
        return "cursor: should be a positive integer"
    if not isinstance(moment, str) or not _is_time(moment):
        return "timestamp: should be an RFC 3339 timestamp"
    if not isinstance(data.get("mob_id"), str):
        return "mob_id: should be a string"
    if not isinstance(kind, dict):
        return "kind: should be an object"
    problem = kind_problem(kind)
    if problem is not None:
        return f"kind.{problem}"
    batch = data.get("batch")
    if batch is not None and not (
        isinstance(batch, list) and len(batch) == 2 and _count(batch[0]) and _count(batch[1])
    ):
        return "batch: should be [first cursor, count]"
    return None


def kind_problem(kind: dict[str, Any]) -> str | None:
    """What is wrong with an event's ``kind`` ("<field>: should be …"), or None: readers
    refuse such a kind, and so the log never takes one."""
    kind_type = kind.get("type")
    if not isinstance(kind_type, str) or EVENT_TYPE.fullmatch(kind_type) is None:
        return "type: should be an event type (lowercase letters, digits and '_')"
    for name in kind.keys() & KIND_FIELDS.keys():
        value = kind[name]
        check, expected = KIND_FIELDS[name]
        if value is not None and not check(value):
            return f"{name}: should be {expected}"
    return None


def _is_time(text: str) -> bool:
    try:
        parse_timestamp(text)
    except ValueError:
        return False
    return True


def stored_line(raw: bytes) -> tuple[int, str, bytes] | None:
    """(cursor, stored hash, hashed body) of a complete line, or None (it does not parse)."""
    if len(raw) <= HASH_TAIL or not raw.endswith(b'"}\n'):
        return None
    try:
        data = parse_json(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    cursor, digest = data.get("cursor"), data.get("hash")
    if not isinstance(cursor, int) or isinstance(cursor, bool) or not isinstance(digest, str):
        return None
    if raw[-HASH_TAIL:] != f',"hash":"{digest}"}}\n'.encode():
        return None
    return cursor, digest, raw[:-HASH_TAIL] + b"}"


def starts_batch(record: Record) -> bool:
    return record.batch is not None and record.batch[0] == record.cursor and record.batch[1] >= 2


def framing_problem(record: Record, batch: tuple[int, int] | None, expected: int) -> str | None:
    """Why ``record`` breaks the batch framing, given the batch open before it (or None)."""
    span = record.batch
    if batch is not None:
        if span != batch:
            return f"batch {list(batch)} is interrupted by cursor {record.cursor}"
        if record.cursor != expected:
            return f"cursor {record.cursor} in batch {list(batch)} should be {expected}"
        return None
    if span is not None and not starts_batch(record):
        return f"cursor {record.cursor} claims batch {list(span)}, which does not start there"
    return None


def prunable(records: list[Record], older_than: datetime) -> set[int]:
    def old(record: Record) -> bool:
        kind = record.data["kind"]
        if kind.get("type") in ANCHORS:
            return False
        return parse_timestamp(record.data["timestamp"]) < older_than

    doomed: set[int] = set()
    index = 0
    while index < len(records):
        record = records[index]
        size = record.batch[1] if record.batch and record.batch[0] == record.cursor else 1
        group = records[index : index + size]
        if all(old(r) for r in group):
            doomed.update(r.cursor for r in group)
        index += size
    return doomed


def read_forward(
    log: Path,
    handle: BinaryIO,
    start: int,
    size: int,
    meta: Meta,
    previous: str | None,
    after: int,
) -> Iterator[Record]:
    """Verified records from ``start``; whole batches only; raises on mid-log corruption."""
    offset = start
    pending: list[Record] = []
    for raw in iter(handle.readline, b""):
        if offset + len(raw) > size:
            break  # appended after we looked: read next time
        ended = raw.endswith(b"\n")
        record = read_line(raw, offset, meta, previous) if ended else "has no end of line"
        if not isinstance(record, Record):
            if valid_after(handle, size):
                raise StoreCorrupt(
                    f"event log {log}: the record at byte {offset} {record} (later records follow)",
                    hint="run `mobctl store check` for details; nothing repairs this automatically",
                )
            return  # a torn tail: ignored by readers
        offset += len(raw)
        previous = record.hash
        if record.batch:
            pending.append(record)
            if record.cursor == record.batch[0] + record.batch[1] - 1:
                yield from (r for r in pending if r.cursor > after)
                pending = []
            continue
        if record.cursor > after:
            yield record


def valid_after(handle: BinaryIO, size: int) -> bool:
    """Whether any later complete line looks like a record, ending with a chain hash (then
    the bad line is corruption, never a torn tail to cut)."""
    for raw in iter(handle.readline, b""):
        if handle.tell() > size or not raw.endswith(b"\n"):
            return False
        if _HASH_TAIL.search(raw):
            return True
    return False


def cursor_of(raw: bytes) -> int | None:
    match = CURSOR.match(raw)
    return int(match.group(1)) if match else None


def stored_hash(raw: bytes) -> str | None:
    match = _HASH_TAIL.search(raw)
    return match.group(1).decode() if match else None


def last_line_end(handle: BinaryIO, size: int) -> int:
    """End of the last newline-terminated line (a trailing partial line is torn)."""
    window = _BACK
    while True:
        start = max(0, size - window)
        handle.seek(start)
        chunk = handle.read(size - start)
        newline = chunk.rfind(b"\n")
        if newline != -1:
            return start + newline + 1
        if start == 0:
            return 0
        window *= 4


def line_before(handle: BinaryIO, offset: int) -> tuple[int, bytes]:
    """The complete line that ends at ``offset`` (which must be a line start > 0)."""
    window = _BACK
    while True:
        start = max(0, offset - window)
        handle.seek(start)
        chunk = handle.read(offset - start)
        cut = chunk.rfind(b"\n", 0, len(chunk) - 1)
        if cut != -1 or start == 0:
            line_start = start + cut + 1 if cut != -1 else 0
            return line_start, chunk[line_start - start :]
        window *= 4


def find_line(handle: BinaryIO, size: int, cursor: int) -> int:
    """Offset of the first line whose cursor is >= ``cursor`` (binary search by offset)."""
    low, high = 0, size
    while high - low > _CHUNK:
        middle = (low + high) // 2
        handle.seek(middle)
        handle.readline()
        position = handle.tell()
        if position >= high:
            high = middle
            continue
        found = cursor_of(handle.readline())
        if found is None or found >= cursor:
            high = position
        else:
            low = handle.tell()
    handle.seek(low)
    position = low
    for raw in iter(handle.readline, b""):
        found = cursor_of(raw)
        if found is None or found >= cursor or not raw.endswith(b"\n"):
            return position
        position += len(raw)
    return position
