"""A run's change journal: the base snapshot plus the changes made since (store contract §8.7).

A run snapshot is ``runs/<run_id>.json`` (the base, a whole ``MobRun`` document that records in
``mobctl.journal_seq`` the last change folded into it) and ``runs/<run_id>.journal``: one line
per committed mutation, ``{"seq": N, "ops": [...]}``, appended with one ``write`` and a data
sync. An op is ``["set", path, value]`` (replace or add the value at a path of object keys and
array indexes) or ``["push", path, value]`` (append to the array at the path). The current
snapshot is the base with every journal line whose ``seq`` is above ``journal_seq`` applied in
order.

Why not rewrite the whole snapshot per mutation: a run's snapshot grows with every step (ledger,
outputs, statuses), so whole rewrites make each step cost more as the run grows (quadratic over
a run). A journal line costs the size of the change. The journal is folded into the base when it
outgrows it (so reads stay linear in the snapshot's size) and when the run becomes terminal (so
finished runs are one plain JSON file).

A line without its newline is an append that never finished (a crash, or a write in progress
seen by a lock-free reader): it is not part of the snapshot, and the next writer cuts it off.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mobctl.canonical import canonical, parse_json
from mobctl.store.changes import Op, apply
from mobctl.store.defects import json_defect


class JournalGap(Exception):
    """The journal does not continue the base read (a concurrent fold): read again."""


class JournalCorrupt(Exception):
    def __init__(self, offset: int, problem: str) -> None:
        super().__init__(f"{problem} at byte {offset}")
        self.offset = offset


def encode(seq: int, ops: list[Op]) -> bytes:
    body = canonical({"seq": seq, "ops": [[kind, list(path), v] for kind, path, v in ops]})
    return body.encode("utf-8") + b"\n"


@dataclass
class Line:
    seq: int
    ops: list[list[Any]]
    end: int  # byte offset just after the line


def lines(data: bytes, start: int) -> Iterator[Line]:
    """The complete lines of ``data`` (a journal read from byte ``start``)."""
    offset = 0
    while True:
        newline = data.find(b"\n", offset)
        if newline < 0:
            return  # nothing, or an unfinished append
        raw = data[offset:newline]
        try:
            record = parse_json(raw)
        except ValueError as exc:
            problem = f"unreadable journal line (not valid JSON: {json_defect(exc)})"
            raise JournalCorrupt(start + offset, problem) from None
        seq = record.get("seq") if isinstance(record, dict) else None
        ops = record.get("ops") if isinstance(record, dict) else None
        if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(ops, list):
            problem = 'unreadable journal line (not {"seq": <integer>, "ops": <list>})'
            raise JournalCorrupt(start + offset, problem)
        offset = newline + 1
        yield Line(seq, ops, start + offset)


def replay(doc: dict[str, Any], seq: int, data: bytes, start: int) -> tuple[int, int]:
    """Apply the journal lines of ``data`` after ``seq``; the new seq and the byte offset
    just after the last complete line."""
    end = start
    for line in lines(data, start):
        end = line.end
        if line.seq <= seq:
            continue  # already folded into the base
        if line.seq != seq + 1:
            raise JournalGap(f"journal line {line.seq} after {seq}")
        try:
            apply(doc, line.ops)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            # the error would quote the line (a key, an op): the store's content
            problem = f"journal line {line.seq} does not apply to the snapshot"
            raise JournalCorrupt(end, problem) from None
        seq = line.seq
    return seq, end
