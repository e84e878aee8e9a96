"""Verifying a mob's event log against its signed checkpoints (store contract §8.4, §8.8).

Two layers, each problem reported with the cursor it concerns:

1. The hash chain, judged record by record **in cursor order** (so a moved record is reported
   once, as moved, and its neighbours still verify): a record that is out of order or
   duplicated; a record whose hash does not verify (``changed``: it, or the hash of the
   record before it, was edited); a gap in the cursors across which the chain breaks
   (``missing``: records were deleted). A gap that a prune left is bridged by its chain link
   and is not a problem. An unreadable region that reaches the end of the file is a torn
   tail (a crash leftover that readers ignore), not a problem.
2. The authority history: its first key is the root; every later key must be endorsed by
   the key of the epoch before it and accept that key in turn (both signatures over both
   keys), epochs one apart. From the first entry that breaks this on, no key is trusted.
   A pinned peer id (``--peer-id``, the id ``supervisor init`` printed) must be among the
   trusted keys: that ties the history to a key the user knows, which the store alone can't.
3. The checkpoints: each must be signed by a trusted key of the history for its epoch (so
   checkpoints of rotated-out keys keep verifying), must not go back to an older epoch than
   a checkpoint before it in the file, and its hash must equal the chain hash at its cursor.
   A mismatch means a record at or before that cursor was changed even though the chain was
   re-hashed to hide it; the report names the range since the last checkpoint that verified.
   A checkpoint beyond the end of the log means the log was truncated, unless the log's
   high-water cursor shows those records were pruned; a checkpoint of a pruned record is
   counted as pruned, not failed.

What this cannot see: records deleted *and* disguised as a prune (a chain link added to
``events.meta.json``); checkpoints removed from the end of ``checkpoints.jsonl``; anything
re-signed with a trusted key's secret (a rotated-out key's secret can still re-sign the
records up to its last checkpoint if every later checkpoint is removed); and, without a
pinned peer id, a history replaced as a whole by one with a new root. ``signed_at`` is not
signed.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from mobctl.store.authority import history_message, parse_display_key, peer_id, signature_valid
from mobctl.store.checkpoints import checkpoint_message
from mobctl.store.contract import ChainRecord, ChainView, Store
from mobctl.store.hashing import line_hash
from mobctl.store.models import Checkpoint, SupervisorHistoryEntry


@dataclass(frozen=True)
class SignatureProblem:
    code: str  # out_of_order, changed, missing, unreadable, bad_signature, unknown_key, ...
    cursor: int | None  # the record concerned (None: a malformed checkpoint line, ...)
    message: str


@dataclass
class SignatureReport:
    mob_id: str
    latest_cursor: int = 0  # highest cursor in the log
    checkpoints: int = 0
    verified: int = 0  # checkpoints whose signature and hash verify
    pruned: int = 0  # checkpoints of records that were pruned since
    sealed_through: int = 0  # highest cursor covered by a verified checkpoint
    problems: list[SignatureProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, code: str, cursor: int | None, message: str) -> None:
        self.problems.append(SignatureProblem(code, cursor, message))

    def document(self) -> dict[str, Any]:
        return {
            "mob_id": self.mob_id,
            "ok": self.ok,
            "latest_cursor": self.latest_cursor,
            "checkpoints": self.checkpoints,
            "verified": self.verified,
            "pruned": self.pruned,
            "sealed_through": self.sealed_through,
            "problems": [vars(p) for p in self.problems],
        }


def verify_signatures(store: Store, mob_id: str, *, anchor: str | None = None) -> SignatureReport:
    """Check the chain, the history and every checkpoint; ``anchor``: a peer id the history
    must hold. See the module docstring for what is reported."""
    report = SignatureReport(mob_id)
    events = store.events(mob_id)
    chain = events.chain()
    by_cursor = _check_chain(chain, report)
    report.latest_cursor = max(by_cursor, default=0)
    found, malformed = events.checkpoints()
    report.checkpoints = len(found) + len(malformed)
    for number in malformed:
        report.add(
            "malformed_checkpoint",
            None,
            f"the checkpoints of mob '{mob_id}': line {number} is not a checkpoint",
        )
    history = _trusted_history(mob_id, store.metadata.load_supervisor_history(mob_id), report)
    if anchor is not None and not any(e.public_peer_id == anchor for e in history):
        report.add(
            "anchor_missing",
            None,
            f"the pinned supervisor {anchor} is not among the verified keys of the authority "
            f"history of mob '{mob_id}': the history was replaced, or the pin is wrong",
        )
    newest_epoch = -1
    for number, checkpoint in found:
        if checkpoint.epoch < newest_epoch:
            report.add(
                "epoch_regressed",
                checkpoint.cursor,
                f"checkpoint {number} (cursor {checkpoint.cursor}) is signed by epoch "
                f"{checkpoint.epoch} after a checkpoint of epoch {newest_epoch}: a rotated-out "
                "key signed it",
            )
            continue
        newest_epoch = checkpoint.epoch
        _check_checkpoint(mob_id, number, checkpoint, history, by_cursor, chain, report)
    if not found and not malformed and by_cursor:
        report.add(
            "unsealed",
            None,
            f"no checkpoint covers the event log of mob '{mob_id}' (cursors up to "
            f"{report.latest_cursor}): nothing is signed",
        )
    return report


def _trusted_history(
    mob_id: str, history: list[SupervisorHistoryEntry], report: SignatureReport
) -> list[SupervisorHistoryEntry]:
    """The entries up to the first one whose endorsements do not hold (see the docstring)."""
    trusted: list[SupervisorHistoryEntry] = []
    for number, entry in enumerate(history, 1):
        previous = trusted[-1] if trusted else None
        problem = _endorsement_problem(mob_id, entry, previous)
        if problem is not None:
            report.add(
                "untrusted_key",
                None,
                f"authority history entry {number} (epoch {entry.epoch}, peer "
                f"{entry.public_peer_id}) {problem}: no key from it on is trusted",
            )
            break
        trusted.append(entry)
    return trusted


def _endorsement_problem(
    mob_id: str, entry: SupervisorHistoryEntry, previous: SupervisorHistoryEntry | None
) -> str | None:
    key = parse_display_key(entry.public_key)
    assert key is not None  # the history is checked on read: an ed25519 key of its peer id
    if previous is not None:
        if entry.epoch != previous.epoch + 1:
            return f"follows epoch {previous.epoch}: epochs must grow by one"
        if entry.previous_public_key != previous.public_key:
            return f"does not name the key of epoch {previous.epoch} as its predecessor"
    message = history_message(mob_id, entry.epoch, entry.previous_public_key, entry.public_key)
    if not _signed(key, entry.acceptance, message):
        return "is not signed by its own key"
    if previous is None:
        return None
    previous_key = parse_display_key(previous.public_key)
    assert previous_key is not None
    if not _signed(previous_key, entry.endorsement, message):
        return f"is not endorsed by the key of epoch {previous.epoch}"
    return None


def _signed(key: bytes, signature: str | None, message: bytes) -> bool:
    try:
        raw = base64.b64decode((signature or "").encode("ascii"), validate=True)
    except (ValueError, binascii.Error):
        return False
    return bool(raw) and signature_valid(key, raw, message)


def _check_chain(chain: ChainView, report: SignatureReport) -> dict[int, ChainRecord]:
    """Order and chain problems; the readable records by cursor."""
    highest = 0
    seen: set[int] = set()
    for record in chain.records:
        cursor = record.cursor
        if cursor <= highest:
            word = "is a copy" if cursor in seen else "is out of order"
            report.add(
                "out_of_order",
                cursor,
                f"the record at cursor {cursor} (byte {record.position}) {word}: it comes after "
                f"cursor {highest}; records were moved or copied",
            )
        highest = max(highest, cursor)
        seen.add(cursor)
    unreadable = chain.unreadable
    for cursor, at in unreadable.items():
        report.add(
            "unreadable",
            cursor,
            f"the record at byte {at} (cursor {cursor}) does not parse: it was changed",
        )
    by_cursor: dict[int, ChainRecord] = {}
    for line in chain.records:
        by_cursor.setdefault(line.cursor, line)
    previous: ChainRecord | None = None
    for cursor in sorted(by_cursor):
        line = by_cursor[cursor]
        link = chain.chain_links.get(str(cursor))
        predecessor = link or (previous.hash if previous else chain.genesis)
        if line_hash(predecessor, line.body) != line.hash:
            after = previous.cursor if previous else 0
            first, last = after + 1, cursor - 1
            if (
                first <= last
                and last - first < len(unreadable)
                and all(c in unreadable for c in range(first, last + 1))
            ):
                pass  # the records are there but unreadable: reported above
            elif first <= last and link is None:
                span = f"cursor {first} is" if first == last else f"cursors {first}-{last} are"
                report.add(
                    "missing",
                    first,
                    f"{span} missing: the record at cursor {cursor} (byte {line.position}) no "
                    f"longer chains to cursor {after}; records were deleted",
                )
            else:
                before = f" (or the hash of cursor {after})" if after else ""
                report.add(
                    "changed",
                    cursor,
                    f"the record at cursor {cursor} (byte {line.position}) does not verify: "
                    f"it{before} was changed",
                )
        previous = line
    return by_cursor


def _check_checkpoint(
    mob_id: str,
    number: int,
    checkpoint: Checkpoint,
    history: list[SupervisorHistoryEntry],
    by_cursor: dict[int, ChainRecord],
    chain: ChainView,
    report: SignatureReport,
) -> None:
    cursor = checkpoint.cursor
    name = f"checkpoint {number} (cursor {cursor}, epoch {checkpoint.epoch})"
    raw_key = parse_display_key(checkpoint.public_key)
    known = (
        raw_key is not None
        and peer_id(raw_key) == checkpoint.public_peer_id
        and any(
            (e.epoch, e.public_key, e.public_peer_id)
            == (checkpoint.epoch, checkpoint.public_key, checkpoint.public_peer_id)
            for e in history
        )
    )
    if raw_key is None or not known:
        report.add(
            "unknown_key",
            cursor,
            f"{name} is signed by a key the verified authority history does not list for "
            f"epoch {checkpoint.epoch}",
        )
        return
    message = checkpoint_message(mob_id, cursor, checkpoint.hash)
    if not _signed(raw_key, checkpoint.signature, message):
        report.add(
            "bad_signature",
            cursor,
            f"{name}: the signature does not verify; the checkpoint was altered",
        )
        return
    line = by_cursor.get(cursor)
    if line is not None:
        if line.hash == checkpoint.hash:
            report.verified += 1
            report.sealed_through = max(report.sealed_through, cursor)
            return
        since = report.sealed_through
        where = (
            f"between cursors {since + 1} and {cursor}"
            if since
            else f"at or before cursor {cursor}"
        )
        report.add(
            "hash_mismatch",
            cursor,
            f"{name}: the log's chain hash at cursor {cursor} is not the one signed at "
            f"{checkpoint.signed_at}; a record {where} was changed, deleted or moved",
        )
        return
    latest = max(by_cursor, default=0)
    if cursor > latest:
        if chain.next_cursor > cursor:  # the high-water says it was issued, then pruned
            report.pruned += 1
            return
        report.add(
            "truncated",
            latest + 1,
            f"{name}: the log ends at cursor {latest}; records {latest + 1}-{cursor} were "
            "removed from its end",
        )
        return
    successor = min(c for c in by_cursor if c > cursor)
    if str(successor) in chain.chain_links:  # a prune bridged this hole
        report.pruned += 1
        return
    report.add("missing", cursor, f"{name}: the record it signs is missing from the log")
