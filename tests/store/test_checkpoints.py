"""Signed checkpoints: ``api.seal``, ``checkpoint_if_authority`` and ``api.verify_signatures``
(store contract §8.8) on real files, including a tampered log in every way the brief names."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mobctl import api
from mobctl.canonical import canonical
from mobctl.clock import now
from mobctl.errors import NotFound, PassphraseRequired
from mobctl.store import checkpoints
from mobctl.store.authority import (
    display_key,
    history_message,
    parse_display_key,
    peer_id,
    public_key,
    sign,
)
from mobctl.store.checkpoints import checkpoint_if_authority, checkpoint_message
from mobctl.store.directory import DirectoryStore
from mobctl.store.directory.check import check_store
from mobctl.store.hashing import line_hash
from mobctl.store.models import Checkpoint, SupervisorHistoryEntry
from mobctl.store.supervisor import create, rotate
from tests.store.conformance import MOB, event


def open_store(root: Path, passphrase: str | None = None) -> DirectoryStore:
    return DirectoryStore(root / "store", lock_timeout=5, passphrase=passphrase)


def log_path(store: DirectoryStore) -> Path:
    return store.root / "mobs" / MOB / "events.jsonl"


def checkpoint_lines(store: DirectoryStore) -> list[dict[str, object]]:
    path = store.root / "mobs" / MOB / "checkpoints.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def append(store: DirectoryStore, count: int, **fields: object) -> None:
    for _ in range(count):
        store.events(MOB).append(event("step_completed", run_id="r", step_id="s", **fields))


def sealed_store(tmp_path: Path) -> DirectoryStore:
    """Ten events, checkpoints at cursors 5 and 10."""
    store = open_store(tmp_path)
    create(store, MOB)
    append(store, 5)
    api.seal(store, MOB)
    append(store, 5)
    api.seal(store, MOB)
    return store


def problems(store: DirectoryStore) -> list[tuple[str, int | None]]:
    report = api.verify_signatures(store, MOB)
    return [(p.code, p.cursor) for p in report.problems]


def test_seal_signs_the_head_of_the_log(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    record = create(store, MOB)
    assert record is not None
    append(store, 3)
    sealed = api.seal(store, MOB)
    assert sealed.written is True
    head = json.loads(log_path(store).read_text().splitlines()[-1])
    [line] = checkpoint_lines(store)
    assert list(line) == [
        "cursor",
        "hash",
        "epoch",
        "public_peer_id",
        "public_key",
        "signed_at",
        "signature",
    ]
    assert (line["cursor"], line["hash"], line["epoch"]) == (3, head["hash"], 0)
    assert line["public_peer_id"] == record.public_peer_id
    raw = public_key(bytes(record.secret_key))
    assert line["public_key"] == display_key(raw) and str(line["signed_at"]).endswith("Z")
    # the documented message, checked with nothing but cryptography
    message = f"mobctl-checkpoint-v1\n{MOB}\n3\n{head['hash']}".encode()
    assert checkpoint_message(MOB, 3, str(head["hash"])) == message
    Ed25519PublicKey.from_public_bytes(raw).verify(
        base64.b64decode(str(line["signature"])), message
    )
    assert sealed.checkpoint.model_dump() == line
    again = api.seal(store, MOB)
    assert (again.written, again.checkpoint) == (False, sealed.checkpoint)
    append(store, 1)
    assert api.seal(store, MOB).checkpoint.cursor == 4
    assert [c["cursor"] for c in checkpoint_lines(store)] == [3, 4]


def test_seal_needs_an_authority_and_events(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with pytest.raises(NotFound) as missing:
        api.seal(store, MOB)
    assert (missing.value.message, missing.value.hint) == (
        f"mob '{MOB}' has no supervisor authority",
        f"create one with `mobctl supervisor init {MOB}`",
    )
    create(store, MOB)
    with pytest.raises(NotFound) as empty:
        api.seal(store, MOB)
    assert empty.value.message == (
        f"the event log of mob '{MOB}' is empty: there is nothing to seal"
    )
    assert not (store.root / "mobs" / MOB / "checkpoints.jsonl").exists()


def test_checkpoint_if_authority(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    append(store, 2)
    assert checkpoint_if_authority(store, MOB) is None  # no authority: nothing written
    assert not (store.root / "mobs" / MOB / "checkpoints.jsonl").exists()
    create(store, MOB)
    written = checkpoint_if_authority(store, MOB)
    assert written is not None and written.cursor == 2
    assert api.verify_signatures(store, MOB).ok


def test_an_encrypted_secret_needs_its_passphrase_to_sign(tmp_path: Path) -> None:
    store = open_store(tmp_path, "pw")
    create(store, MOB)
    append(store, 1)
    assert checkpoint_if_authority(store, MOB) is not None
    locked = open_store(tmp_path)
    with pytest.raises(PassphraseRequired):
        checkpoint_if_authority(locked, MOB)
    with pytest.raises(PassphraseRequired):
        api.seal(locked, MOB)
    assert api.verify_signatures(locked, MOB).ok  # verifying needs public keys only


def test_checkpoints_of_rotated_out_keys_still_verify(tmp_path: Path) -> None:
    store = sealed_store(tmp_path)
    api.supervisor_rotate(store, MOB)
    append(store, 2)
    api.seal(store, MOB)
    api.supervisor_rotate(store, MOB)
    report = api.verify_signatures(store, MOB)
    assert report.ok, report.problems
    assert (report.checkpoints, report.verified, report.sealed_through) == (3, 3, 12)
    assert [c["epoch"] for c in checkpoint_lines(store)] == [0, 0, 1]
    # without the history, old keys prove nothing
    (store.root / "mobs" / MOB / "metadata" / "supervisor-history.jsonl").unlink()
    assert problems(store) == [("unknown_key", 5), ("unknown_key", 10), ("unknown_key", 12)]


def test_an_edited_record_is_reported_with_its_cursor(tmp_path: Path) -> None:
    store = sealed_store(tmp_path)
    lines = log_path(store).read_bytes().splitlines(keepends=True)
    lines[6] = lines[6].replace(b'"step_id":"s"', b'"step_id":"t"')
    log_path(store).write_bytes(b"".join(lines))
    assert problems(store) == [("changed", 7)]
    [problem] = api.verify_signatures(store, MOB).problems
    assert problem.message == (
        f"the record at cursor 7 (byte {sum(map(len, lines[:6]))}) does not verify: it (or the "
        "hash of cursor 6) was changed"
    )


def test_an_edit_hidden_by_rehashing_the_chain_breaks_the_signature(tmp_path: Path) -> None:
    store = sealed_store(tmp_path)
    lines = log_path(store).read_bytes().splitlines(keepends=True)
    lines[6] = lines[6].replace(b'"step_id":"s"', b'"step_id":"t"')
    previous = json.loads(lines[5])["hash"]
    for index in range(6, len(lines)):  # recompute every hash from the edit on
        body = lines[index][:-76] + b"}"
        previous = line_hash(previous, body)
        lines[index] = body[:-1] + b',"hash":"' + previous.encode() + b'"}\n'
    log_path(store).write_bytes(b"".join(lines))
    assert store.events(MOB).verify() == []  # the chain alone cannot tell
    report = api.verify_signatures(store, MOB)
    assert [(p.code, p.cursor) for p in report.problems] == [("hash_mismatch", 10)]
    assert report.problems[0].message.startswith(
        "checkpoint 2 (cursor 10, epoch 0): the log's chain hash at cursor 10 is not the one "
        "signed at "
    )
    assert report.problems[0].message.endswith(
        "; a record between cursors 6 and 10 was changed, deleted or moved"
    )
    assert (report.verified, report.sealed_through) == (1, 5)


def test_a_deleted_record_is_reported_with_its_cursor(tmp_path: Path) -> None:
    store = sealed_store(tmp_path)
    lines = log_path(store).read_bytes().splitlines(keepends=True)
    log_path(store).write_bytes(b"".join(lines[:2] + lines[3:]))
    report = api.verify_signatures(store, MOB)
    assert [(p.code, p.cursor) for p in report.problems] == [("missing", 3)]
    assert report.problems[0].message == (
        f"cursor 3 is missing: the record at cursor 4 (byte {len(lines[0]) + len(lines[1])}) "
        "no longer chains to cursor 2; records were deleted"
    )
    log_path(store).write_bytes(b"".join(lines[:2] + lines[6:]))  # 3-6, and checkpoint 1's
    assert problems(store) == [("missing", 3), ("missing", 5)]


def test_swapped_records_are_reported_with_their_cursor(tmp_path: Path) -> None:
    store = sealed_store(tmp_path)
    lines = log_path(store).read_bytes().splitlines(keepends=True)
    lines[3], lines[4] = lines[4], lines[3]
    log_path(store).write_bytes(b"".join(lines))
    report = api.verify_signatures(store, MOB)
    assert [(p.code, p.cursor) for p in report.problems] == [("out_of_order", 4)]
    assert report.problems[0].message == (
        f"the record at cursor 4 (byte {sum(map(len, lines[:4]))}) is out of order: it comes "
        "after cursor 5; records were moved or copied"
    )
    lines[3], lines[4] = lines[4], lines[3]
    log_path(store).write_bytes(b"".join([*lines, lines[1]]))  # a copied record
    assert problems(store) == [("out_of_order", 2)]


def test_a_truncated_log_is_reported_with_the_first_missing_cursor(tmp_path: Path) -> None:
    store = sealed_store(tmp_path)
    data = log_path(store).read_bytes()
    lines = data.splitlines(keepends=True)
    log_path(store).write_bytes(b"".join(lines[:7]))
    report = api.verify_signatures(store, MOB)
    assert [(p.code, p.cursor) for p in report.problems] == [("truncated", 8)]
    assert report.problems[0].message == (
        "checkpoint 2 (cursor 10, epoch 0): the log ends at cursor 7; records 8-10 were removed "
        "from its end"
    )
    log_path(store).write_bytes(data[: len(b"".join(lines[:8])) + 20])  # mid-line: a torn tail
    assert problems(store) == [("truncated", 9)]
    log_path(store).write_bytes(b"")
    assert problems(store) == [("truncated", 1), ("truncated", 1)]


def test_an_unparsable_record_is_reported_once(tmp_path: Path) -> None:
    store = sealed_store(tmp_path)
    lines = log_path(store).read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"kind":{', b'"kind":[')
    log_path(store).write_bytes(b"".join(lines))
    assert problems(store) == [("unreadable", 3)]


def test_altered_forged_and_malformed_checkpoints(tmp_path: Path) -> None:
    store = sealed_store(tmp_path)
    path = store.root / "mobs" / MOB / "checkpoints.jsonl"
    first, second = path.read_text().splitlines()
    altered = json.loads(first) | {"cursor": 4}
    seed = bytes(32)  # a key the history does not list, claiming epoch 0
    head = json.loads(log_path(store).read_text().splitlines()[9])
    forged = Checkpoint(
        cursor=10,
        hash=head["hash"],
        epoch=0,
        public_peer_id=peer_id(public_key(seed)),
        public_key=display_key(public_key(seed)),
        signed_at="2026-11-22T20:15:03.123456Z",
        signature=base64.b64encode(sign(seed, checkpoint_message(MOB, 10, head["hash"]))).decode(),
    )
    path.write_text(
        "\n".join([canonical(altered), second, canonical(forged.document()), "{oops"]) + "\n"
    )
    report = api.verify_signatures(store, MOB)
    assert [(p.code, p.cursor) for p in report.problems] == [
        ("malformed_checkpoint", None),
        ("bad_signature", 4),
        ("unknown_key", 10),
    ]
    assert [p.message for p in report.problems] == [
        "the checkpoints of mob 'review': line 4 is not a checkpoint",
        "checkpoint 1 (cursor 4, epoch 0): the signature does not verify; the checkpoint was "
        "altered",
        "checkpoint 3 (cursor 10, epoch 0) is signed by a key the verified authority history "
        "does not list for epoch 0",
    ]
    assert (report.checkpoints, report.verified) == (4, 1)


def test_a_torn_checkpoint_line_is_ignored_then_cut_off(tmp_path: Path) -> None:
    store = sealed_store(tmp_path)
    path = store.root / "mobs" / MOB / "checkpoints.jsonl"
    with path.open("ab") as handle:
        handle.write(b'{"cursor":11,"ha')
    assert api.verify_signatures(store, MOB).ok
    append(store, 1)
    api.seal(store, MOB)
    assert [c["cursor"] for c in checkpoint_lines(store)] == [5, 10, 11]


def test_checkpoints_of_pruned_records_are_pruned_not_failed(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    create(store, MOB)
    old = now() - timedelta(hours=1)
    for _ in range(5):
        store.events(MOB).append(event("step_completed", old, run_id="r", step_id="s"))
    api.seal(store, MOB)  # cursor 5
    append(store, 3)
    api.seal(store, MOB)  # cursor 8
    for _ in range(2):
        store.events(MOB).append(event("step_completed", old, run_id="r", step_id="s"))
    api.seal(store, MOB)  # cursor 10
    assert store.events(MOB).prune(now() - timedelta(minutes=1)) == 7  # 1-5 and 9-10
    report = api.verify_signatures(store, MOB)
    assert report.ok, report.problems
    assert (report.checkpoints, report.verified, report.pruned) == (3, 1, 2)
    # a deletion that is not a prune is still one
    lines = log_path(store).read_bytes().splitlines(keepends=True)
    log_path(store).write_bytes(lines[0] + lines[2])
    assert problems(store) == [("missing", 7)]


def test_an_unsealed_log_is_a_problem_and_an_empty_one_is_not(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    assert api.verify_signatures(store, MOB).ok
    create(store, MOB)
    append(store, 2)
    report = api.verify_signatures(store, MOB)
    assert [(p.code, p.cursor, p.message) for p in report.problems] == [
        (
            "unsealed",
            None,
            f"no checkpoint covers the event log of mob '{MOB}' (cursors up to 2): nothing is "
            "signed",
        )
    ]
    assert report.document() == {
        "mob_id": MOB,
        "ok": False,
        "latest_cursor": 2,
        "checkpoints": 0,
        "verified": 0,
        "pruned": 0,
        "sealed_through": 0,
        "problems": [{"code": "unsealed", "cursor": None, "message": report.problems[0].message}],
    }


# --- the authority history is endorsed; pins and epochs ----------------------------------------


def history_path(store: DirectoryStore) -> Path:
    return store.root / "mobs" / MOB / "metadata" / "supervisor-history.jsonl"


def rehash_from(store: DirectoryStore, index: int) -> None:
    """Recompute every chain hash from line ``index`` on (an attacker hiding an edit)."""
    lines = log_path(store).read_bytes().splitlines(keepends=True)
    previous = json.loads(lines[index - 1])["hash"]
    for at in range(index, len(lines)):
        body = lines[at][:-76] + b"}"
        previous = line_hash(previous, body)
        lines[at] = body[:-1] + b',"hash":"' + previous.encode() + b'"}\n'
    log_path(store).write_bytes(b"".join(lines))


def forge(store: DirectoryStore, seed: bytes, epoch: int) -> None:
    """Re-sign every checkpoint of the file with ``seed`` as ``epoch``, over the log as it is."""
    hashes = {
        c: json.loads(line)["hash"]
        for c, line in enumerate(log_path(store).read_text().splitlines(), 1)
    }
    forged = []
    for line in checkpoint_lines(store):
        cursor = int(str(line["cursor"]))
        forged.append(
            Checkpoint(
                cursor=cursor,
                hash=hashes[cursor],
                epoch=epoch,
                public_peer_id=peer_id(public_key(seed)),
                public_key=display_key(public_key(seed)),
                signed_at="2026-11-23T01:00:00.000000Z",
                signature=base64.b64encode(
                    sign(seed, checkpoint_message(MOB, cursor, hashes[cursor]))
                ).decode(),
            ).document()
        )
    path = store.root / "mobs" / MOB / "checkpoints.jsonl"
    path.write_text("".join(canonical(c) + "\n" for c in forged))


def self_endorsed_entry(seed: bytes, epoch: int, previous_key: str | None) -> str:
    """A history line for ``seed`` that its own key signs twice (no predecessor's secret)."""
    key = display_key(public_key(seed))
    message = history_message(MOB, epoch, previous_key, key)
    signature = base64.b64encode(sign(seed, message)).decode()
    entry = SupervisorHistoryEntry(
        epoch=epoch,
        public_peer_id=peer_id(public_key(seed)),
        public_key=key,
        activated_at="2026-11-23T01:00:00.000000Z",
        previous_public_key=previous_key,
        endorsement=signature if previous_key else None,
        acceptance=signature,
    )
    return canonical(entry.document()) + "\n"


def test_rotations_are_endorsed_by_the_key_before(tmp_path: Path) -> None:
    store = sealed_store(tmp_path)
    api.supervisor_rotate(store, MOB)
    first, second = [json.loads(line) for line in history_path(store).read_text().splitlines()]
    assert "endorsement" not in first and "previous_public_key" not in first
    assert second["previous_public_key"] == first["public_key"]
    message = history_message(MOB, 1, first["public_key"], second["public_key"])
    for key, signature in ((first, "endorsement"), (second, "acceptance")):
        raw = parse_display_key(key["public_key"])
        assert raw is not None
        Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(second[signature]), message)
    assert api.verify_signatures(store, MOB).ok


def test_a_key_added_to_the_history_by_hand_is_not_trusted(tmp_path: Path) -> None:
    """The attack: edit a record, re-hash the chain, add a fresh key to the history, re-sign."""
    store = sealed_store(tmp_path)
    api.supervisor_rotate(store, MOB)
    lines = log_path(store).read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"step_id":"s"', b'"step_id":"t"')
    log_path(store).write_bytes(b"".join(lines))
    rehash_from(store, 2)
    head_key = json.loads(history_path(store).read_text().splitlines()[-1])["public_key"]
    seed = bytes(range(32))
    with history_path(store).open("a") as handle:
        handle.write(self_endorsed_entry(seed, 2, head_key))
    forge(store, seed, 2)
    report = api.verify_signatures(store, MOB)
    assert [(p.code, p.cursor) for p in report.problems] == [
        ("untrusted_key", None),
        ("unknown_key", 5),
        ("unknown_key", 10),
    ]
    assert report.problems[0].message == (
        f"authority history entry 3 (epoch 2, peer {peer_id(public_key(seed))}) is not endorsed "
        "by the key of epoch 1: no key from it on is trusted"
    )
    assert report.verified == 0


def test_a_replaced_history_is_caught_by_a_pinned_peer_id(tmp_path: Path) -> None:
    store = sealed_store(tmp_path)
    pinned = api.supervisor_show(store, MOB).public_peer_id
    assert api.verify_signatures(store, MOB, peer_id=pinned).ok
    lines = log_path(store).read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"step_id":"s"', b'"step_id":"t"')
    log_path(store).write_bytes(b"".join(lines))
    rehash_from(store, 2)
    seed = bytes(range(32))
    history_path(store).write_text(self_endorsed_entry(seed, 0, None))  # a new root
    forge(store, seed, 0)
    assert api.verify_signatures(store, MOB).ok  # the store alone cannot tell (documented)
    report = api.verify_signatures(store, MOB, peer_id=pinned.upper())
    assert [(p.code, p.message) for p in report.problems] == [
        (
            "anchor_missing",
            f"the pinned supervisor {pinned} is not among the verified keys of the authority "
            f"history of mob '{MOB}': the history was replaced, or the pin is wrong",
        )
    ]


def test_a_rotated_out_key_cannot_sign_after_a_newer_one(tmp_path: Path) -> None:
    store = sealed_store(tmp_path)
    old = rotate(store, MOB).previous
    append(store, 2)
    api.seal(store, MOB)  # epoch 1 at cursor 12
    append(store, 1)
    head = json.loads(log_path(store).read_text().splitlines()[-1])
    seed = bytes(old.secret_key)
    late = Checkpoint(
        cursor=13,
        hash=head["hash"],
        epoch=0,
        public_peer_id=old.public_peer_id,
        public_key=display_key(public_key(seed)),
        signed_at="2026-11-23T01:00:00.000000Z",
        signature=base64.b64encode(sign(seed, checkpoint_message(MOB, 13, head["hash"]))).decode(),
    )
    with (store.root / "mobs" / MOB / "checkpoints.jsonl").open("a") as handle:
        handle.write(canonical(late.document()) + "\n")
    report = api.verify_signatures(store, MOB)
    assert [(p.code, p.cursor, p.message) for p in report.problems] == [
        (
            "epoch_regressed",
            13,
            "checkpoint 4 (cursor 13) is signed by epoch 0 after a checkpoint of epoch 1: a "
            "rotated-out key signed it",
        )
    ]


def test_a_stale_authority_signs_with_the_newest_key(tmp_path: Path) -> None:
    """A process that read the authority before a rotation, and seals after the new key did,
    signs with the new key: the file's epochs never go back."""
    store = sealed_store(tmp_path)
    stale = rotate(store, MOB).previous
    append(store, 1)
    api.seal(store, MOB)
    append(store, 1)
    sealed = checkpoints._seal(store, MOB, stale)
    assert sealed is not None and sealed.checkpoint.epoch == 1
    assert [c["epoch"] for c in checkpoint_lines(store)] == [0, 0, 1, 1]
    assert api.verify_signatures(store, MOB).ok


def test_a_crash_between_history_and_promotion_is_completed_with_the_same_key(
    tmp_path: Path,
) -> None:
    store = sealed_store(tmp_path)

    class Crash(Exception):
        pass

    def crash() -> None:
        raise Crash

    with pytest.raises(Crash):
        rotate(store, MOB, between_steps=crash)
    rotation = rotate(store, MOB)
    assert rotation.resumed and rotation.current.epoch == 1
    epochs = [json.loads(line)["epoch"] for line in history_path(store).read_text().splitlines()]
    assert epochs == [0, 1]
    append(store, 1)
    api.seal(store, MOB)
    assert api.verify_signatures(store, MOB).ok


def test_store_check_reports_a_damaged_history_and_checkpoint_file(tmp_path: Path) -> None:
    store = sealed_store(tmp_path)
    assert check_store(store).ok
    history_path(store).write_text("garbage\n")
    path = store.root / "mobs" / MOB / "checkpoints.jsonl"
    path.write_text(path.read_text() + "[1, 2]\n")
    report = check_store(store)
    assert [(p.code, Path(p.path).name) for p in report.problems] == [
        ("store_corrupt", "supervisor-history.jsonl"),
        ("store_corrupt", "checkpoints.jsonl"),
    ]
    assert report.problems[1].message == "line 3 is not a checkpoint"
