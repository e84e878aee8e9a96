"""``mobctl supervisor init|show|rotate`` through the real CLI and real processes."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.kdf import scrypt

from mobctl import api
from mobctl.store import checkpoints
from mobctl.store.authority import MAX_EPOCH, display_key, parse_display_key, peer_id, public_key
from mobctl.store.directory import DirectoryStore
from mobctl.store.directory.metadata import validate_authority
from mobctl.store.supervisor import authority_from_seed
from tests.conftest import SAMPLES, cli, mobctl_process

MOB = "hello"  # sample-mobs/minimal.toml
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# rotate in a child process that dies (SIGKILL) between the two compare-and-puts
CRASH_BETWEEN_STEPS = """
import os, signal, sys
from pathlib import Path
from mobctl import api
from mobctl.store.backends import open_store
store = open_store(Path(sys.argv[1]), passphrase=os.environ.get("MOBCTL_KEY_PASSPHRASE"))
api.supervisor_rotate(store, sys.argv[2], between_steps=lambda: os.kill(os.getpid(), signal.SIGKILL))
"""


@pytest.fixture
def store(store: Path) -> Path:
    """The test's store, with the minimal sample registered."""
    assert cli("register", SAMPLES / "minimal.toml", "--store", store).exit_code == 0
    return store


def show(store: Path) -> dict[str, object]:
    result = cli("supervisor", "show", MOB, "--store", store, "--json")
    assert result.exit_code == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def history_epochs(store: Path) -> list[tuple[int, str]]:
    path = store / "mobs" / MOB / "metadata" / "supervisor-history.jsonl"
    return [
        (e["epoch"], e["public_peer_id"]) for e in map(json.loads, path.read_text().splitlines())
    ]


def test_init_show_rotate(store: Path) -> None:
    created = cli("supervisor", "init", MOB, "--store", store)
    assert created.exit_code == 0, created.stderr
    lines = created.stdout.splitlines()
    assert lines[0] == "created the supervisor of hello at epoch 0"
    peer, key = lines[1].removeprefix("peer id     "), lines[2].removeprefix("public key  ")
    assert UUID.match(peer) and len(key) == len("ed25519:") + 44 and len(lines) == 3
    raw = parse_display_key(key)
    assert raw is not None and peer_id(raw) == peer  # the §7.1 derivation
    shown = show(store)
    assert shown == {
        "mob_id": MOB,
        "epoch": 0,
        "public_peer_id": peer,
        "public_key": key,
        "protocol_version": 5,
        "secret_at_rest": "plaintext",
        "pending_rotation": None,
        "history": [
            {
                "epoch": 0,
                "public_peer_id": peer,
                "public_key": key,
                "activated_at": shown["history"][0]["activated_at"],  # type: ignore[index]
                "acceptance": shown["history"][0]["acceptance"],  # type: ignore[index]
            }
        ],
    }
    text = cli("supervisor", "show", MOB, "--store", store)
    assert text.stdout.splitlines()[:6] == [
        "mob         hello",
        "epoch       0",
        f"peer id     {peer}",
        f"public key  {key}",
        "protocol    5",
        "secret      plaintext, file mode 600",
    ]
    rotated = cli("supervisor", "rotate", MOB, "--store", store, "--json")
    assert rotated.exit_code == 0, rotated.stderr
    document = json.loads(rotated.stdout)
    assert (document["action"], document["previous_epoch"], document["epoch"]) == ("rotated", 0, 1)
    assert document["resumed"] is False and UUID.match(document["public_peer_id"])
    assert re.match(r"^[0-9a-f-]{36}$", document["operation_id"])
    assert document["public_peer_id"] != peer
    assert history_epochs(store) == [(0, peer), (1, document["public_peer_id"])]
    again = cli("supervisor", "rotate", MOB, "--store", store)
    assert again.stdout.splitlines()[0] == "rotated the supervisor of hello: epoch 1 -> 2"


def test_second_init_is_refused_unless_forced(store: Path) -> None:
    assert cli("supervisor", "init", MOB, "--store", store).exit_code == 0
    before = show(store)
    second = cli("supervisor", "init", MOB, "--store", store)
    assert (second.exit_code, second.stdout) == (1, "")
    assert second.stderr.splitlines() == [
        "error[supervisor_exists]: mob 'hello' already has a supervisor authority",
        "hint: rotate its key with `mobctl supervisor rotate hello` (or init --force)",
    ]
    assert show(store) == before
    forced = cli("supervisor", "init", MOB, "--force", "--store", store, "--json")
    assert forced.exit_code == 0
    document = json.loads(forced.stdout)
    assert (document["action"], document["previous_epoch"], document["epoch"]) == ("rotated", 0, 1)


def test_errors_for_unknown_mobs_and_missing_authorities(store: Path) -> None:
    unknown = cli("supervisor", "init", "nope", "--store", store)
    assert unknown.exit_code == 1
    assert unknown.stderr.splitlines() == [
        f"error[not_found]: no mob 'nope' is registered in {store}",
        "hint: `mobctl specs list` shows the registered mobs",
    ]
    for command in ("show", "rotate"):
        missing = cli("supervisor", command, MOB, "--store", store)
        assert (missing.exit_code, missing.stdout) == (1, "")
        assert missing.stderr.splitlines() == [
            "error[not_found]: mob 'hello' has no supervisor authority",
            "hint: create one with `mobctl supervisor init hello`",
        ]
    unsafe = cli("supervisor", "show", "../etc", "--store", store)
    assert unsafe.exit_code == 1 and unsafe.stderr.startswith("error[unsafe_id]: mob id '../etc'")
    assert not (store / "mobs" / "nope").exists()


def test_a_readable_secret_file_is_refused(store: Path) -> None:
    assert cli("supervisor", "init", MOB, "--store", store).exit_code == 0
    path = store / "mobs" / MOB / "metadata" / "supervisor.json"
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)
    for command in ("show", "rotate"):
        result = cli("supervisor", command, MOB, "--store", store)
        assert (result.exit_code, result.stdout) == (6, "")
        assert result.stderr.splitlines() == [
            f"error[insecure_secret_file]: {path} is readable by other users (mode 644)",
            f"hint: chmod 600 {path}",
        ]


def test_passphrase_encrypts_and_is_required(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOBCTL_KEY_PASSPHRASE", "correct horse")
    assert cli("supervisor", "init", MOB, "--store", store).exit_code == 0
    document = json.loads((store / "mobs" / MOB / "metadata" / "supervisor.json").read_text())
    assert document["secret_key"]["enc"] == "scrypt-aes256gcm-v1"
    shown = cli("supervisor", "show", MOB, "--store", store)
    assert "secret      encrypted (scrypt-aes256gcm-v1)" in shown.stdout.splitlines()
    monkeypatch.delenv("MOBCTL_KEY_PASSPHRASE")
    missing = cli("supervisor", "rotate", MOB, "--store", store)
    assert (missing.exit_code, missing.stdout) == (6, "")
    assert missing.stderr.splitlines() == [
        "error[passphrase_required]: the supervisor secret of mob 'hello' is encrypted at rest "
        "and no passphrase was given",
        "hint: set MOBCTL_KEY_PASSPHRASE to the passphrase it was encrypted with",
    ]
    monkeypatch.setenv("MOBCTL_KEY_PASSPHRASE", "wrong")
    wrong = cli("supervisor", "show", MOB, "--store", store)
    assert (wrong.exit_code, wrong.stdout) == (6, "")
    assert wrong.stderr.splitlines() == [
        "error[wrong_passphrase]: cannot decrypt the supervisor secret of mob 'hello': wrong "
        "passphrase, or the file was altered",
        "hint: set MOBCTL_KEY_PASSPHRASE to the passphrase the secret was encrypted with",
    ]
    # a secret that store check cannot open is no damage it knows of
    assert cli("store", "check", "--store", store).exit_code == 0
    # an empty variable counts as unset
    monkeypatch.setenv("MOBCTL_KEY_PASSPHRASE", "")
    assert cli("supervisor", "show", MOB, "--store", store).exit_code == 6
    monkeypatch.setenv("MOBCTL_KEY_PASSPHRASE", "correct horse")
    rotated = cli("supervisor", "rotate", MOB, "--store", store, "--json")
    assert json.loads(rotated.stdout)["secret_at_rest"] == "scrypt-aes256gcm-v1"


def test_a_rotation_killed_between_its_steps_is_completed_with_the_same_key(store: Path) -> None:
    assert cli("supervisor", "init", MOB, "--store", store).exit_code == 0
    first = show(store)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_BETWEEN_STEPS, str(store), MOB],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    interrupted = show(store)
    pending = interrupted["pending_rotation"]
    assert isinstance(pending, dict)
    assert (interrupted["epoch"], interrupted["public_peer_id"]) == (0, first["public_peer_id"])
    assert pending["epoch"] == 1 and pending["public_peer_id"] != first["public_peer_id"]
    text = cli("supervisor", "show", MOB, "--store", store).stdout
    assert (
        f"pending     epoch 1, peer id {pending['public_peer_id']} (operation "
        f"{pending['operation_id']}); `mobctl supervisor rotate hello` completes it"
    ) in text.splitlines()
    assert history_epochs(store) == [(0, first["public_peer_id"])]
    completed = mobctl_process("supervisor", "rotate", MOB, "--store", store)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        "rotated the supervisor of hello: epoch 0 -> 1",
        f"completed the rotation an earlier command began (operation {pending['operation_id']})",
        f"peer id     {pending['public_peer_id']}",
        f"public key  {pending['public_key']}",
    ]
    after = show(store)
    assert after["pending_rotation"] is None
    assert history_epochs(store) == [(0, first["public_peer_id"]), (1, pending["public_peer_id"])]
    fresh = json.loads(cli("supervisor", "rotate", MOB, "--store", store, "--json").stdout)
    assert (fresh["epoch"], fresh["resumed"]) == (2, False)


ROTATE_FOREVER = """
import sys
from pathlib import Path
from mobctl import api
from mobctl.store.backends import open_store
store = open_store(Path(sys.argv[1]))
while True:
    change = api.supervisor_rotate(store, sys.argv[2])
    print("ack", change.view.epoch, change.view.public_peer_id, flush=True)
"""


@pytest.mark.slow
def test_rotations_killed_at_random_moments_never_fork_an_epoch(store: Path) -> None:
    assert cli("supervisor", "init", MOB, "--store", store).exit_code == 0
    rng = random.Random(6)
    promised: dict[int, str] = {}  # epoch -> the peer id recorded as pending for it
    acked: dict[int, str] = {}
    for _ in range(20):
        child = subprocess.Popen(
            [sys.executable, "-c", ROTATE_FOREVER, str(store), MOB],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        first = child.stdout.readline()  # it is rotating now, however slowly it started
        time.sleep(rng.uniform(0, 0.35))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        out = first + out
        for line in out.split("\n")[:-1]:  # whole lines: a kill may cut the last one short
            _, epoch, peer = line.split()
            acked[int(epoch)] = peer
        record = DirectoryStore(store).metadata.load_supervisor_authority(MOB)
        assert record is not None
        validate_authority(record)
        promised.setdefault(record.epoch, record.public_peer_id)
        if record.pending_rotation is not None:
            promised.setdefault(
                record.pending_rotation.epoch, record.pending_rotation.public_peer_id
            )
    final = mobctl_process("supervisor", "rotate", MOB, "--store", store, "--json")
    assert final.returncode == 0, final.stderr
    epoch = json.loads(final.stdout)["epoch"]
    history = history_epochs(store)
    assert [e for e, _ in history] == list(range(epoch + 1))  # +1 each time, no epoch twice
    assert len(acked) > 20
    active = dict(history)
    for seen, peer in {**promised, **acked}.items():
        assert active[seen] == peer, seen  # a pending key, once recorded, is the one promoted


def test_epochs_never_wrap(store: Path) -> None:
    direct = DirectoryStore(store)
    direct.metadata.put_supervisor_authority(
        MOB, authority_from_seed(bytes(range(32)), epoch=MAX_EPOCH - 1)
    )
    last = cli("supervisor", "rotate", MOB, "--store", store, "--json")
    assert last.exit_code == 0, last.stderr
    assert json.loads(last.stdout)["epoch"] == MAX_EPOCH == 18446744073709551615
    path = store / "mobs" / MOB / "metadata" / "supervisor.json"
    before = path.read_bytes()
    for command in (("rotate",), ("init", "--force")):
        refused = cli("supervisor", *command, MOB, "--store", store)
        assert (refused.exit_code, refused.stdout) == (1, "")
        assert refused.stderr.splitlines() == [
            "error[supervisor_epoch_exhausted]: the supervisor authority of mob 'hello' is at "
            "epoch 18446744073709551615, the last one: a rotation would wrap the epoch, so none "
            "is possible",
            "hint: the authority stays valid; nothing was written",
        ]
        assert path.read_bytes() == before


def test_the_spec_test_vector_is_what_init_would_store(store: Path) -> None:
    record = authority_from_seed(bytes(range(32)))
    assert record.public_peer_id == "20717512-f552-54ae-94a6-3103e70650a2"
    key = display_key(public_key(bytes(range(32))))
    assert key == "ed25519:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
    DirectoryStore(store).metadata.put_supervisor_authority(MOB, record)
    shown = show(store)
    assert (shown["public_peer_id"], shown["public_key"]) == (record.public_peer_id, key)


def test_help_has_examples() -> None:
    for command in ("init", "show", "rotate"):
        result = cli("supervisor", command, "--help")
        assert result.exit_code == 0 and "mobctl supervisor " + command in result.stdout


def secret_forms(seed: bytes) -> list[str]:
    """Every way a secret could plausibly be spelled out."""
    pair = seed + public_key(seed)
    forms = [seed.hex(), seed.hex().upper(), str(list(seed)), json.dumps(list(seed))]
    forms.append(json.dumps(list(seed), separators=(",", ":")))
    for raw in (seed, pair):
        forms += [base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()]
        forms += [base64.b64encode(raw).decode().rstrip("=")]
    return forms


@pytest.mark.parametrize("passphrase", [None, "correct horse"])
def test_secrets_are_never_printed_or_logged(
    store: Path, passphrase: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if passphrase:
        monkeypatch.setenv("MOBCTL_KEY_PASSPHRASE", passphrase)
    direct = DirectoryStore(store, passphrase=passphrase)
    outputs: list[str] = []

    def run(*args: str | Path, code: int = 0) -> None:
        result = cli(*args, "--store", store)
        assert result.exit_code == code, result.stderr
        outputs.extend([result.stdout, result.stderr])

    seeds: list[bytes] = []
    run("supervisor", "init", MOB)
    run("supervisor", "init", MOB, code=1)  # refused: an error path
    for _ in range(2):
        record = direct.metadata.load_supervisor_authority(MOB)
        assert record is not None
        seeds.append(bytes(record.secret_key))
        for args in (("show", MOB), ("show", MOB, "--json"), ("rotate", MOB, "--json")):
            run("supervisor", *args)
        run(
            "run",
            SAMPLES / "minimal.toml",
            "-p",
            "name=Ada",
            "--driver",
            f"scripted:{SAMPLES / 'fixtures' / 'hello.toml'}",
        )
        api.seal(direct, MOB)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_BETWEEN_STEPS, str(store), MOB],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    record = direct.metadata.load_supervisor_authority(MOB)
    assert record is not None and record.pending_rotation is not None
    seeds += [bytes(record.secret_key), bytes(record.pending_rotation.secret_key)]
    run("supervisor", "show", MOB, "--json")  # shows the pending rotation
    run("supervisor", "rotate", MOB)
    outputs.extend([crashed.stdout, crashed.stderr])
    assert cli("store", "check", "--store", store).exit_code == 0
    assert api.verify_signatures(direct, MOB).ok
    secret_file = store / "mobs" / MOB / "metadata" / "supervisor.json"
    files = {
        path: path.read_text(errors="replace")
        for path in store.rglob("*")
        if path.is_file() and (path != secret_file or passphrase)
    }
    assert any(p.name == "checkpoints.jsonl" for p in files)
    assert any(p.name == "events.jsonl" for p in files)
    # error paths: a record edited by hand is refused without quoting it, decrypted or not
    current = direct.metadata.load_supervisor_authority(MOB)
    assert current is not None
    seed = list(current.secret_key)
    kept = json.loads(secret_file.read_text())
    refused: list[str] = []
    for edited in (
        {k: v for k, v in kept.items() if k != "public_peer_id"},  # a missing field
        kept | {"epoch": "zero"},  # a wrong type
        kept | {"protocol_version": 99},  # valid JSON, an invalid authority
        kept | {"secret_key": seed[:31]},  # a short seed (the bytes in the clear)
        kept | {"secret_key": [300, *seed[1:]]},  # a byte out of range
    ):
        secret_file.write_text(json.dumps(edited))
        for args in (("show", MOB), ("show", MOB, "--json"), ("rotate", MOB, "--json")):
            result = cli("supervisor", *args, "--store", store)
            assert result.exit_code == 6, (edited.keys(), args, result.stderr)  # not 70
            assert result.stderr.startswith("error["), result.stderr
            refused.extend([result.stdout, result.stderr])
    secret_file.write_text(json.dumps(kept))
    parts = [", ".join(map(str, seed[i : i + 4])) for i in range(0, 32, 4)]
    parts += [",".join(map(str, seed[i : i + 4])) for i in range(0, 32, 4)]
    assert all(part not in text for part in parts for text in refused), refused
    outputs += refused
    for seed_bytes in seeds:
        for form in secret_forms(seed_bytes):
            assert all(form not in text for text in outputs), form
            for path, text in files.items():
                assert form not in text, (path, form)


def test_a_finished_run_is_signed_up_to_its_terminal_event(store: Path) -> None:
    assert cli("supervisor", "init", MOB, "--store", store).exit_code == 0
    fixtures = SAMPLES / "fixtures" / "hello.toml"
    ran = cli("run", MOB, "-p", "name=Ada", "--driver", f"scripted:{fixtures}", "--store", store)
    assert ran.exit_code == 0, ran.stderr
    opened = DirectoryStore(store)
    checkpoints = [
        json.loads(line)
        for line in (store / "mobs" / MOB / "checkpoints.jsonl").read_text().splitlines()
    ]
    assert checkpoints[-1]["cursor"] == opened.events(MOB).latest_cursor()
    assert api.verify_signatures(opened, MOB).ok


def test_a_run_without_the_passphrase_finishes_and_warns(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOBCTL_KEY_PASSPHRASE", "correct horse")
    assert cli("supervisor", "init", MOB, "--store", store).exit_code == 0
    monkeypatch.delenv("MOBCTL_KEY_PASSPHRASE")
    fixtures = SAMPLES / "fixtures" / "hello.toml"
    ran = cli("run", MOB, "-p", "name=Ada", "--driver", f"scripted:{fixtures}", "--store", store)
    assert ran.exit_code == 0, ran.stderr
    assert "warning: no checkpoint was signed: " in ran.stderr
    assert not (store / "mobs" / MOB / "checkpoints.jsonl").exists()


def test_events_seal_and_verify_signatures_through_the_cli(store: Path) -> None:
    assert cli("supervisor", "init", MOB, "--store", store).exit_code == 0
    fixtures = SAMPLES / "fixtures" / "hello.toml"
    ran = cli("run", MOB, "-p", "name=Ada", "--driver", f"scripted:{fixtures}", "--store", store)
    assert ran.exit_code == 0, ran.stderr
    latest = DirectoryStore(store).events(MOB).latest_cursor()
    again = cli("events", "seal", MOB, "--store", store)
    assert (again.exit_code, again.stdout) == (
        0,
        f"already sealed mob '{MOB}' at cursor {latest} (epoch 0)\n",
    )
    verified = cli("events", "verify", MOB, "--signatures", "--store", store)
    assert verified.exit_code == 0, verified.stderr
    assert verified.stdout.endswith(
        f"signatures verify: 1 checkpoint(s), records signed through cursor {latest}\n"
    )
    log = store / "mobs" / MOB / "events.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if '"step_target_completed"' in line)
    cursor = json.loads(lines[index])["cursor"]
    lines[index] = lines[index].replace('"output":"', '"output":"forged ')
    log.write_text("".join(lines))
    tampered = cli("events", "verify", MOB, "--signatures", "--store", store, "--json")
    assert tampered.exit_code == 6
    document = json.loads(tampered.stdout)
    assert document["ok"] is False
    offset = sum(len(line.encode()) for line in lines[:index])
    assert document["problem"] == {
        "offset": offset,
        "message": f"record at byte {offset} does not verify (its chain hash does not match)",
    }
    first = document["signatures"]["problems"][0]
    assert (first["code"], first["cursor"]) == ("changed", cursor)
    text = cli("events", "verify", MOB, "--signatures", "--store", store)
    assert text.exit_code == 6
    assert text.stdout.startswith(f"problem[changed] cursor {cursor}: the record at cursor ")
    assert text.stderr.startswith("error[store_corrupt]: ")
    assert (
        f"events.jsonl: record at byte {offset} does not verify (its chain hash does not match)\n"
        in text.stderr
    )


def test_verify_signatures_with_a_pinned_peer_id(store: Path) -> None:
    created = json.loads(cli("supervisor", "init", MOB, "--store", store, "--json").stdout)
    fixtures = SAMPLES / "fixtures" / "hello.toml"
    ran = cli("run", MOB, "-p", "name=Ada", "--driver", f"scripted:{fixtures}", "--store", store)
    assert ran.exit_code == 0, ran.stderr
    assert cli("supervisor", "rotate", MOB, "--store", store).exit_code == 0
    pinned = created["public_peer_id"]
    verify = ("events", "verify", MOB, "--signatures", "--store", store)
    assert cli(*verify, "--peer-id", pinned).exit_code == 0
    other = str(uuid.uuid4())
    wrong = cli(*verify, "--peer-id", other)
    assert wrong.exit_code == 6
    assert wrong.stdout.splitlines()[0] == (
        f"problem[anchor_missing]: the pinned supervisor {other} is not among the verified keys "
        f"of the authority history of mob '{MOB}': the history was replaced, or the pin is wrong"
    )
    bad = cli(*verify, "--peer-id", "nope")
    assert (bad.exit_code, bad.stderr) == (
        2,
        "error[usage]: --peer-id 'nope' is not a peer id\n"
        "hint: give the public_peer_id that `mobctl supervisor show` prints (a UUID)\n",
    )
    alone = cli("events", "verify", MOB, "--peer-id", pinned, "--store", store)
    assert (alone.exit_code, alone.stderr) == (
        2,
        "error[usage]: --peer-id needs --signatures\nhint: add --signatures\n",
    )


def test_verify_signatures_of_an_unsealed_log_says_how_to_seal(store: Path) -> None:
    fixtures = SAMPLES / "fixtures" / "hello.toml"
    ran = cli("run", MOB, "-p", "name=Ada", "--driver", f"scripted:{fixtures}", "--store", store)
    assert ran.exit_code == 0, ran.stderr
    unsealed = cli("events", "verify", MOB, "--signatures", "--store", store)
    assert unsealed.exit_code == 6
    assert unsealed.stderr.endswith(
        f"hint: `mobctl events seal {MOB}` signs the log now; it needs a supervisor authority "
        f"(`mobctl supervisor init {MOB}`)\n"
    )


def edits(record: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """Hand edits of supervisor.json: name -> (the edited document, what the error names)."""
    other = authority_from_seed(bytes(range(32))).public_peer_id
    drop = {k: v for k, v in record.items() if k != "public_peer_id"}
    pending = {
        "secret_key": list(range(32)),
        "public_peer_id": other,
        "epoch": record["epoch"] + 1,
        "protocol_version": 5,
    }
    return {
        "missing field": (drop, "public_peer_id: Field required"),
        "wrong type": (record | {"epoch": "zero"}, "epoch: Input should be a valid integer"),
        "short seed": (record | {"secret_key": record["secret_key"][:3]}, "secret_key: must be"),
        "byte 300": (record | {"secret_key": [300, *record["secret_key"][1:]]}, "32 bytes"),
        "byte -1": (record | {"secret_key": [-1, *record["secret_key"][1:]]}, "32 bytes"),
        "wrong peer": (record | {"public_peer_id": other}, "public_peer_id: does not match"),
        "epoch -1": (record | {"epoch": -1}, "epoch: out of range"),
        "epoch 2^64": (record | {"epoch": 2**64}, "epoch: out of range"),
        "protocol 99": (record | {"protocol_version": 99}, "protocol_version: not one of"),
        "seed a string": (record | {"secret_key": "abc"}, "secret_key: Input should be a valid"),
        "pending short seed": (
            record | {"pending_rotation": pending | {"secret_key": record["secret_key"][:3]}},
            "pending_rotation.secret_key: must be",
        ),
        "pending byte 256": (
            record | {"pending_rotation": pending | {"secret_key": [256] * 32}},
            "pending_rotation.secret_key: must be",
        ),
        "pending same epoch": (
            record | {"pending_rotation": pending | {"epoch": record["epoch"]}},
            "pending_rotation.epoch: must be",
        ),
        "pending missing field": (
            record | {"pending_rotation": {"secret_key": record["secret_key"]}},
            "pending_rotation.public_peer_id: Field required",
        ),
    }


def refused_as_corrupt(result: Any, path: Path, named: str, leaks: list[str]) -> None:
    """``store_corrupt`` (exit 6) naming the file and ``named``, and no secret in any form."""
    assert result.exit_code == 6, result.stderr
    assert result.stderr.startswith(f"error[store_corrupt]: {path} is not a "), result.stderr
    assert named in result.stderr, result.stderr
    assert all(leak not in result.stdout + result.stderr for leak in leaks), result.stderr


def test_a_hand_edited_authority_is_store_corrupt_and_never_shows_the_secret(
    store: Path,
) -> None:
    assert cli("supervisor", "init", MOB, "--store", store).exit_code == 0
    path = store / "mobs" / MOB / "metadata" / "supervisor.json"
    record = json.loads(path.read_text())
    seed = bytes(record["secret_key"])
    leaks = [*secret_forms(seed), ", ".join(map(str, seed[:4])), ",".join(map(str, seed[:4]))]
    leaks.append("input_value")  # pydantic's own text, which quotes the document
    fixtures = SAMPLES / "fixtures" / "hello.toml"
    for name, (document, named) in edits(record).items():
        path.write_text(json.dumps(document))
        for args in (
            ("supervisor", "show", MOB),
            ("supervisor", "rotate", MOB),
            ("events", "seal", MOB),
        ):
            refused_as_corrupt(cli(*args, "--store", store), path, named, leaks)
        checked = cli("store", "check", "--store", store)
        assert checked.exit_code == 6, (name, checked.stdout)
        assert f"problem[store_corrupt] {path}: " in checked.stdout, (name, checked.stdout)
        assert all(leak not in checked.stdout + checked.stderr for leak in leaks), name
        ran = cli(
            "run", MOB, "-p", "name=Ada", "--driver", f"scripted:{fixtures}", "--store", store
        )
        assert ran.exit_code == 0, (name, ran.stderr)  # the run is not failed by its signature
        assert "warning: no checkpoint was signed: " in ran.stderr, name
        assert all(leak not in ran.stdout + ran.stderr for leak in leaks), name


def test_a_hand_edited_encrypted_authority_never_shows_the_decrypted_secret(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOBCTL_KEY_PASSPHRASE", "correct horse")
    assert cli("supervisor", "init", MOB, "--store", store).exit_code == 0
    path = store / "mobs" / MOB / "metadata" / "supervisor.json"
    record = json.loads(path.read_text())
    metadata = DirectoryStore(store, passphrase="correct horse").metadata
    authority = metadata.load_supervisor_authority(MOB)
    assert authority is not None
    seed = bytes(authority.secret_key)
    leaks = [*secret_forms(seed), "input_value", ",".join(map(str, seed[:4]))]
    for document, named in (
        (record | {"epoch": -1}, "epoch: out of range"),
        (record | {"protocol_version": 99}, "protocol_version: not one of"),
        (record | {"extra": 1}, "<key>: Extra inputs are not permitted"),  # a key is content
    ):
        path.write_text(json.dumps(document))
        refused_as_corrupt(cli("supervisor", "show", MOB, "--store", store), path, named, leaks)


def test_an_envelope_demanding_absurd_scrypt_work_is_refused(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOBCTL_KEY_PASSPHRASE", "correct horse")
    assert cli("supervisor", "init", MOB, "--store", store).exit_code == 0
    path = store / "mobs" / MOB / "metadata" / "supervisor.json"
    record = json.loads(path.read_text())
    for n, r, p in ((2**20, 32, 16), (2**20, 8, 1), (2**17, 8, 8)):  # 4 GiB; 1 GiB; 64x work
        record["secret_key"] |= {"n": n, "r": r, "p": p}
        path.write_text(json.dumps(record))
        shown = cli("supervisor", "rotate", MOB, "--store", store)
        assert (shown.exit_code, shown.stderr) == (
            6,
            f"error[store_corrupt]: the supervisor secret of mob '{MOB}': the encrypted envelope "
            "has invalid parameters\n",
        ), (n, r, p)


def test_an_envelope_whose_scrypt_runs_out_of_memory_is_corrupt(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOBCTL_KEY_PASSPHRASE", "correct horse")
    assert cli("supervisor", "init", MOB, "--store", store).exit_code == 0
    path = store / "mobs" / MOB / "metadata" / "supervisor.json"
    before = path.read_bytes()

    class Starved:  # cryptography raises MemoryError when OpenSSL cannot allocate scrypt's
        def __init__(self, **_: object) -> None:
            pass

        def derive(self, _: bytes) -> bytes:
            raise MemoryError("Not enough memory to derive key")

    monkeypatch.setattr(scrypt, "Scrypt", Starved)
    for command in ("show", "rotate"):
        result = cli("supervisor", command, MOB, "--store", store)
        assert (result.exit_code, result.stderr) == (
            6,
            f"error[store_corrupt]: the supervisor secret of mob '{MOB}': the encrypted envelope "
            "demands more memory than is available\n",
        ), command
    assert path.read_bytes() == before


def test_a_signature_that_fails_unexpectedly_is_a_warning_and_never_quotes_the_failure(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("supervisor", "init", MOB, "--store", store).exit_code == 0

    def broken(*_: object) -> None:
        raise ValueError("secret bytes 1, 2, 3")  # a bug: its text could quote a record

    monkeypatch.setattr(checkpoints, "checkpoint_if_authority", broken)
    fixtures = SAMPLES / "fixtures" / "hello.toml"
    ran = cli("run", MOB, "-p", "name=Ada", "--driver", f"scripted:{fixtures}", "--store", store)
    assert ran.exit_code == 0, ran.stderr  # the run finished; only its signature is missing
    assert (
        "warning: no checkpoint was signed: the supervisor authority failed (ValueError)\n"
        in ran.stderr
    )
    assert "secret bytes" not in ran.stdout + ran.stderr

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "checkpoint_if_authority", interrupted)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C is never turned into a warning
        checkpoints.sign_after_terminal(DirectoryStore(store), MOB)


def test_a_passphrase_that_is_not_utf8_works(store: Path) -> None:
    env = {**os.environ}
    env.pop("MOBCTL_KEY_PASSPHRASE", None)
    environ = {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
    environ[b"MOBCTL_KEY_PASSPHRASE"] = b"ab\xffc"
    exe = shutil.which("mobctl")
    command = [exe] if exe else [sys.executable, "-m", "mobctl"]

    def mobctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args, "--store", str(store)],
            env=environ,  # type: ignore[arg-type]
            capture_output=True,
            text=True,
            timeout=60,
        )

    created = mobctl("supervisor", "init", MOB)
    assert created.returncode == 0, created.stderr
    assert mobctl("supervisor", "rotate", MOB).returncode == 0
    environ[b"MOBCTL_KEY_PASSPHRASE"] = b"ab\xfec"
    wrong = mobctl("supervisor", "rotate", MOB)
    assert wrong.returncode != 0 and wrong.stderr.startswith("error[wrong_passphrase]: ")
