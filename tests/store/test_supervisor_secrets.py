"""Supervisor secrets at rest (store contract §8.8): 0600, scrypt + AES-256-GCM, the history."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from mobctl.errors import (
    InsecureSecretFile,
    InternalStoreError,
    PassphraseRequired,
    StoreCorrupt,
    StoreFormatTooNew,
    WrongPassphrase,
)
from mobctl.store.authority import MAX_EPOCH, display_key, peer_id, public_key
from mobctl.store.directory import DirectoryStore
from mobctl.store.models import SupervisorHistoryEntry
from tests.store.conformance import MOB, SEED, authority

PENDING = bytes(range(100, 132))


def open_store(root: Path, passphrase: str | None = None) -> DirectoryStore:
    return DirectoryStore(root, lock_timeout=5, passphrase=passphrase)


def supervisor_file(root: Path) -> Path:
    return root / "mobs" / MOB / "metadata" / "supervisor.json"


def test_plaintext_secret_is_meerkats_list_in_a_0600_file(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.metadata.put_supervisor_authority(MOB, authority())
    path = supervisor_file(tmp_path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["secret_key"] == list(SEED)
    assert store.metadata.supervisor_secret_at_rest(MOB) == "plaintext"


def test_encrypted_envelope_format_and_round_trip(tmp_path: Path) -> None:
    store = open_store(tmp_path, "correct horse")
    record = authority(SEED, 4, pending=PENDING)
    store.metadata.put_supervisor_authority(MOB, record)
    document = json.loads(supervisor_file(tmp_path).read_text())
    envelope = document["secret_key"]
    assert list(envelope) == ["enc", "salt", "n", "r", "p", "nonce", "ct"]
    assert (envelope["enc"], envelope["n"], envelope["r"], envelope["p"]) == (
        "scrypt-aes256gcm-v1",
        32768,
        8,
        1,
    )
    assert document["pending_rotation"]["secret_key"]["enc"] == "scrypt-aes256gcm-v1"
    assert document["public_peer_id"] == record.public_peer_id and document["epoch"] == 4
    # the documented format, decrypted with nothing but cryptography's primitives
    salt = base64.b64decode(envelope["salt"])
    key = Scrypt(salt=salt, length=32, n=32768, r=8, p=1).derive(b"correct horse")
    associated = f"{MOB}:{record.public_peer_id}".encode()
    nonce, sealed = base64.b64decode(envelope["nonce"]), base64.b64decode(envelope["ct"])
    assert AESGCM(key).decrypt(nonce, sealed, associated) == SEED
    assert store.metadata.supervisor_secret_at_rest(MOB) == "scrypt-aes256gcm-v1"
    # the API returns and compares decrypted records, in a new process-like object too
    again = open_store(tmp_path, "correct horse")
    assert again.metadata.load_supervisor_authority(MOB) == record
    promoted = authority(PENDING, 5)
    assert again.metadata.compare_and_put_supervisor_authority(MOB, record, promoted) is True
    assert again.metadata.load_supervisor_authority(MOB) == promoted


def test_missing_and_wrong_passphrases_are_clear_errors(tmp_path: Path) -> None:
    open_store(tmp_path, "right").metadata.put_supervisor_authority(MOB, authority())
    with pytest.raises(PassphraseRequired) as missing:
        open_store(tmp_path).metadata.load_supervisor_authority(MOB)
    assert missing.value.message == (
        f"the supervisor secret of mob '{MOB}' is encrypted at rest and no passphrase was given"
    )
    assert missing.value.hint == (
        "set MOBCTL_KEY_PASSPHRASE to the passphrase it was encrypted with"
    )
    with pytest.raises(WrongPassphrase) as wrong:
        open_store(tmp_path, "wrong").metadata.load_supervisor_authority(MOB)
    assert wrong.value.message == (
        f"cannot decrypt the supervisor secret of mob '{MOB}': wrong passphrase, or the file "
        "was altered"
    )
    assert (missing.value.exit_code, wrong.value.exit_code) == (6, 6)


def test_put_if_absent_counts_a_record_it_cannot_decrypt_as_present(tmp_path: Path) -> None:
    open_store(tmp_path, "right").metadata.put_supervisor_authority(MOB, authority())
    before = supervisor_file(tmp_path).read_bytes()
    other = authority(bytes(32))
    assert open_store(tmp_path).metadata.put_supervisor_authority_if_absent(MOB, other) is False
    assert supervisor_file(tmp_path).read_bytes() == before


def test_an_envelope_is_bound_to_its_mob_and_key(tmp_path: Path) -> None:
    store = open_store(tmp_path, "pw")
    store.metadata.put_supervisor_authority(MOB, authority())
    other_mob = tmp_path / "mobs" / "other" / "metadata"
    other_mob.mkdir(parents=True)
    copy = other_mob / "supervisor.json"
    copy.write_bytes(supervisor_file(tmp_path).read_bytes())
    copy.chmod(0o600)
    with pytest.raises(WrongPassphrase):
        store.metadata.load_supervisor_authority("other")
    document = json.loads(supervisor_file(tmp_path).read_text())
    document["public_peer_id"] = peer_id(public_key(bytes(32)))  # another key's record
    supervisor_file(tmp_path).write_text(json.dumps(document))
    with pytest.raises(WrongPassphrase):
        open_store(tmp_path, "pw").metadata.load_supervisor_authority(MOB)


def test_a_plaintext_secret_is_encrypted_by_the_next_write(tmp_path: Path) -> None:
    open_store(tmp_path).metadata.put_supervisor_authority(MOB, authority())
    locked = open_store(tmp_path, "pw")
    current = locked.metadata.load_supervisor_authority(MOB)
    assert current == authority()
    rotated = authority(SEED, 0, pending=PENDING)
    assert locked.metadata.compare_and_put_supervisor_authority(MOB, current, rotated)
    assert locked.metadata.supervisor_secret_at_rest(MOB) == "scrypt-aes256gcm-v1"
    assert list(SEED) != json.loads(supervisor_file(tmp_path).read_text())["secret_key"]


def test_unknown_schemes_and_absurd_parameters_are_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path, "pw")
    store.metadata.put_supervisor_authority(MOB, authority())
    path = supervisor_file(tmp_path)
    document = json.loads(path.read_text())
    for change, error, text in [
        ({"enc": "argon2-xchacha-v9"}, StoreFormatTooNew, "encrypted with a scheme this mobctl"),
        ({"n": 2**40}, StoreCorrupt, "invalid parameters"),
        ({"n": 1000}, StoreCorrupt, "invalid parameters"),
        ({"r": True}, StoreCorrupt, "invalid parameters"),
        ({"nonce": "short"}, StoreCorrupt, "not valid base64"),
    ]:
        broken = {**document, "secret_key": {**document["secret_key"], **change}}
        path.write_text(json.dumps(broken))
        with pytest.raises(error, match=text):
            open_store(tmp_path, "pw").metadata.load_supervisor_authority(MOB)
    path.write_text(json.dumps(document))
    path.chmod(0o640)
    with pytest.raises(InsecureSecretFile) as caught:
        open_store(tmp_path, "pw").metadata.load_supervisor_authority(MOB)
    assert caught.value.hint == f"chmod 600 {path}"


def test_a_pending_epoch_beyond_the_last_is_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    at_max = authority(SEED, MAX_EPOCH)
    store.metadata.put_supervisor_authority(MOB, at_max)
    with pytest.raises(InternalStoreError, match="exactly one epoch ahead"):
        store.metadata.put_supervisor_authority(MOB, authority(SEED, MAX_EPOCH, pending=PENDING))
    assert store.metadata.load_supervisor_authority(MOB) == at_max


def entry(seed: bytes, epoch: int) -> SupervisorHistoryEntry:
    key = public_key(seed)
    return SupervisorHistoryEntry(
        epoch=epoch,
        public_peer_id=peer_id(key),
        public_key=display_key(key),
        activated_at="2026-11-22T20:15:03.123456Z",
    )


def test_history_appends_once_per_authority(tmp_path: Path) -> None:
    meta = open_store(tmp_path).metadata
    assert meta.load_supervisor_history(MOB) == []
    assert meta.record_supervisor_activation(MOB, entry(SEED, 0)) is True
    assert meta.record_supervisor_activation(MOB, entry(SEED, 0)) is False
    assert meta.record_supervisor_activation(MOB, entry(PENDING, 1)) is True
    assert meta.load_supervisor_history(MOB) == [entry(SEED, 0), entry(PENDING, 1)]
    path = tmp_path / "mobs" / MOB / "metadata" / "supervisor-history.jsonl"
    lines = path.read_text().splitlines()
    assert json.loads(lines[1]) == {
        "epoch": 1,
        "public_peer_id": peer_id(public_key(PENDING)),
        "public_key": display_key(public_key(PENDING)),
        "activated_at": "2026-11-22T20:15:03.123456Z",
    }
    forged = entry(SEED, 2).model_copy(update={"public_peer_id": peer_id(public_key(PENDING))})
    with pytest.raises(
        InternalStoreError, match="public_key: not an ed25519 key that matches public_peer_id"
    ):
        meta.record_supervisor_activation(MOB, forged)
    path.write_text(lines[0] + "\nnot json\n")
    with pytest.raises(StoreCorrupt, match="line 2 is not an authority history entry"):
        meta.load_supervisor_history(MOB)


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        ({"epoch": -1}, "epoch: out of range (0 to 2**64-1)"),
        ({"epoch": 2**64}, "epoch: out of range (0 to 2**64-1)"),
        ({"public_key": "ed25519:xyz"}, "public_key: not an ed25519 key that matches"),
        ({"public_peer_id": peer_id(public_key(SEED))}, "public_key: not an ed25519 key that"),
        ({"epoch": "one"}, "epoch: Input should be a valid integer"),
    ],
)
def test_history_lines_edited_by_hand_are_checked_as_on_write(
    tmp_path: Path, edit: dict[str, object], problem: str
) -> None:
    meta = open_store(tmp_path).metadata
    meta.record_supervisor_activation(MOB, entry(SEED, 0))
    meta.record_supervisor_activation(MOB, entry(PENDING, 1))
    path = tmp_path / "mobs" / MOB / "metadata" / "supervisor-history.jsonl"
    first, second = path.read_text().splitlines()
    path.write_text(first + "\n" + json.dumps(json.loads(second) | edit) + "\n")
    with pytest.raises(StoreCorrupt) as caught:
        meta.load_supervisor_history(MOB)
    assert caught.value.message.startswith(
        f"{path} line 2 is not an authority history entry: {problem}"
    )
