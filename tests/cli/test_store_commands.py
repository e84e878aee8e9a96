"""store init/check, register, specs and profiles through the real CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, cli, mobctl_process


def test_store_init_is_idempotent(store: Path) -> None:
    first = cli("store", "init", "--store", store)
    assert (first.exit_code, first.stdout) == (0, f"store created {store}\n")
    again = cli("store", "init", "--store", store, "--json")
    assert json.loads(again.stdout) == {"path": str(store), "created": False}
    marker = json.loads((store / "store.json").read_text())
    assert marker["format"] == "mobctl-store" and marker["schema_version"] == 1


def test_store_from_environment(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOBCTL_STORE", str(store))
    assert cli("store", "init").exit_code == 0
    assert (store / "store.json").exists()


def test_register_then_unchanged_then_updated(store: Path, tmp_path: Path) -> None:
    source = SAMPLES / "minimal.toml"
    first = cli("register", source, "--store", store, "--json")
    assert first.exit_code == 0
    record = json.loads(first.stdout)
    assert (record["mob_id"], record["revision"], record["changed"]) == ("hello", 1, True)
    assert record["digest"].startswith("sha256:")
    same = cli("register", source, "--store", store)
    assert same.stdout == f"hello is unchanged at revision 1 ({record['digest']})\n"
    changed = tmp_path / "hello.toml"
    changed.write_text(source.read_text().replace("Say hello", "Say hi"))
    updated = cli("register", changed, "--store", store)
    assert updated.stdout.startswith("registered hello revision 2 (sha256:")
    events = [
        json.loads(line)
        for line in (store / "mobs" / "hello" / "events.jsonl").read_text().splitlines()
    ]
    assert [e["kind"]["type"] for e in events] == ["mob_created", "mob_definition_updated"]
    assert list(events[1]["kind"])[:3] == ["type", "revision", "digest"]


def test_item10_a_revision_whose_event_cannot_be_logged_is_not_kept(
    store: Path, tmp_path: Path
) -> None:
    """register writes the spec, then logs its event under the same lock: when the append
    fails (a full disk; here a second hard link to the log) the spec goes back to the
    revision before, so the spec and the log never disagree."""
    source = SAMPLES / "minimal.toml"
    assert cli("register", source, "--store", store).exit_code == 0
    before = (store / "specs" / "hello.json").read_bytes()
    extra = tmp_path / "extra-link"
    os.link(store / "mobs" / "hello" / "events.jsonl", extra)
    changed = tmp_path / "hello.toml"
    changed.write_text(source.read_text().replace("Say hello", "Say HELLO"))
    refused = cli("register", changed, "--store", store)
    assert refused.exit_code == 6
    assert refused.stderr.startswith("error[store_corrupt]: ")
    assert (store / "specs" / "hello.json").read_bytes() == before
    extra.unlink()
    assert cli("store", "check", "--store", store).exit_code == 0
    again = cli("register", changed, "--store", store)
    assert again.stdout.startswith("registered hello revision 2 ")


def test_item10_a_spec_revision_missing_from_the_log_is_found_and_logged(
    store: Path, tmp_path: Path
) -> None:
    """If putting the spec back failed too, `store check` finds the revision the log lacks
    and `--repair` logs it."""
    source = SAMPLES / "minimal.toml"
    changed = tmp_path / "hello.toml"
    changed.write_text(source.read_text().replace("Say hello", "Say HELLO"))
    assert cli("register", source, "--store", store).exit_code == 0
    assert cli("register", changed, "--store", store).exit_code == 0
    log = store / "mobs" / "hello" / "events.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text(lines[0])  # the revision-2 event lost
    spec = store / "specs" / "hello.json"
    checked = cli("store", "check", "--store", store)
    assert (checked.exit_code, checked.stdout) == (
        6,
        f"problem[missing_definition_event] {spec}: spec revision 2 of mob 'hello' is not in "
        "the log (fixable with --repair)\n1 problem(s) found\n",
    )
    repaired = cli("store", "check", "--repair", "--store", store)
    assert repaired.exit_code == 0
    assert "repaired: logged spec revision 2 of mob 'hello'" in repaired.stdout
    logged = [json.loads(line)["kind"] for line in log.read_text().splitlines()]
    assert [(k["type"], k.get("revision")) for k in logged] == [
        ("mob_created", None),
        ("mob_definition_updated", 2),
    ]
    assert logged[1]["definition"] == json.loads(lines[1])["kind"]["definition"]
    assert cli("store", "check", "--store", store).exit_code == 0


def test_register_expect_revision(store: Path) -> None:
    source = SAMPLES / "minimal.toml"
    assert cli("register", source, "--store", store, "--expect-revision", "0").exit_code == 0
    conflict = cli("register", source, "--store", store, "--expect-revision", "0")
    assert conflict.exit_code == 1
    assert conflict.stderr.splitlines() == [
        "error[spec_revision_conflict]: mob 'hello' is at revision 1, not 0",
        "hint: re-read it and pass --expect-revision 1",
    ]


def test_register_refuses_invalid_definitions(store: Path) -> None:
    bad = SAMPLES / "invalid" / "unknown_model.toml"
    result = cli("register", bad, "--store", store)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{bad}:6:9: error[unknown_model] profiles.worker.model:")
    assert lines[1] == f"error[invalid_definition]: {bad} has 1 error(s); nothing was registered"
    assert not (store / "specs").exists()


def test_register_refuses_unsafe_mob_ids(store: Path) -> None:
    result = cli("register", SAMPLES / "invalid" / "unsafe_id.toml", "--store", store)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error[unsafe_id]: mob id '../escape' cannot be used as a file name"
    )
    assert not store.exists()


def test_register_keeps_referenced_files(store: Path) -> None:
    assert cli("register", SAMPLES / "code-review.toml", "--store", store).exit_code == 0
    record = json.loads(cli("specs", "show", "code-review", "--store", store, "--json").stdout)
    assert record["resources"]["schemas"]["schemas/verdicts.json"]["type"] == "object"
    assert record["resources"]["skills"]["skills/reviewer.md"].startswith("# Reviewer")
    assert record["source"]["format"] == "toml"
    assert record["definition"]["id"] == "code-review"


def test_specs_list_show_delete(store: Path) -> None:
    cli("register", SAMPLES / "minimal.toml", "--store", store)
    cli("register", SAMPLES / "triage.toml", "--store", store)
    listed = json.loads(cli("specs", "list", "--store", store, "--json").stdout)
    assert [r["mob_id"] for r in listed] == ["hello", "triage"]
    shown = cli("specs", "show", "hello", "--store", store)
    assert shown.stdout.startswith("# hello revision 1 sha256:")
    assert "[flows.main.steps.greet]" in shown.stdout
    wrong = cli("specs", "delete", "hello", "--expect-revision", "5", "--store", store)
    assert wrong.exit_code == 1
    assert wrong.stderr.startswith("error[cas_conflict]: mob 'hello' is at revision 1, not 5")
    unconfirmed = cli("specs", "delete", "hello", "--store", store)  # stdin: not a terminal
    assert (unconfirmed.exit_code, unconfirmed.stderr) == (
        2,
        "error[confirmation_required]: refusing to delete a definition without confirmation: "
        "stdin is not a terminal\nhint: pass --yes to delete without asking\n",
    )
    assert (
        cli("specs", "delete", "hello", "--yes", "--store", store).stdout
        == "deleted hello (was revision 1)\n"
    )
    missing = cli("specs", "show", "hello", "--store", store)
    assert missing.exit_code == 1
    assert missing.stderr.startswith(f"error[not_found]: no mob 'hello' is registered in {store}")


def test_profiles_lifecycle(store: Path, tmp_path: Path) -> None:
    profile = tmp_path / "writer.toml"
    profile.write_text('model = "claude-sonnet-4-6"\npeer_description = "House writer"\n')
    created = cli("profiles", "create", "house-writer", profile, "--store", store)
    assert created.stdout == "created realm profile house-writer (revision 1)\n"
    duplicate = cli("profiles", "create", "house-writer", profile, "--store", store)
    assert duplicate.exit_code == 1
    assert duplicate.stderr.startswith(
        "error[cas_conflict]: realm profile already exists: house-writer"
    )
    shown = json.loads(cli("profiles", "show", "house-writer", "--store", store, "--json").stdout)
    assert shown["profile"] == {"model": "claude-sonnet-4-6", "peer_description": "House writer"}
    profile.write_text('model = "claude-opus-4-8"\n')
    stale = cli(
        "profiles", "update", "house-writer", profile, "--expect-revision", "7", "--store", store
    )
    assert stale.exit_code == 1
    assert "is at revision 1, not 7" in stale.stderr
    updated = cli(
        "profiles", "update", "house-writer", profile, "--expect-revision", "1", "--store", store
    )
    assert updated.stdout == "updated realm profile house-writer (revision 2)\n"
    listed = cli("profiles", "list", "--store", store).stdout.splitlines()
    assert listed[0] == "NAME          REVISION  MODEL            UPDATED"
    assert listed[1].split()[:3] == ["house-writer", "2", "claude-opus-4-8"]
    deleted = cli("profiles", "delete", "house-writer", "--expect-revision", "2", "--store", store)
    assert deleted.stdout == "deleted realm profile house-writer (revision 2)\n"
    assert cli("profiles", "show", "house-writer", "--store", store).exit_code == 1


def test_profile_files_are_validated(store: Path, tmp_path: Path) -> None:
    """Every problem is reported with line:column, as `validate` reports it (issue 13 item
    14); only the first was, without a position."""
    bad = tmp_path / "bad.toml"
    bad.write_text('peer_description = 3\nskils = ["x"]\n[tools]\nbuiltins = "yes"\n')
    result = cli("profiles", "create", "x", bad, "--store", store)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"{bad}:1:1: error[invalid_value] model: missing required key 'model'\n"
        f"{bad}:1:20: error[invalid_value] peer_description: expected a string, found an "
        "integer\n"
        f"{bad}:2:1: warning[unknown_key] skils: unknown key 'skils' in the top level; did you "
        "mean 'skills'?\n"
        f"{bad}:4:12: error[invalid_value] tools.builtins: expected a boolean, found the string "
        "'yes'\n"
        f"error[invalid_definition]: {bad} has 3 error(s); nothing was stored\n"
        'hint: a realm profile is an inline profile table: model = "...", tools, skills, ...\n'
    )
    assert not store.exists()
    warned = tmp_path / "warned.json"
    warned.write_text('{\n  "model": "claude-sonnet-4-6",\n  "skils": []\n}\n')
    created = cli("profiles", "create", "x", warned, "--store", store)
    assert (created.exit_code, created.stdout) == (0, "created realm profile x (revision 1)\n")
    assert created.stderr == (
        f"{warned}:3:3: warning[unknown_key] skils: unknown key 'skils' in the top level; did "
        "you mean 'skills'?\n"
    )
    updated = cli("profiles", "update", "x", bad, "--expect-revision", "1", "--store", store)
    assert updated.exit_code == 1 and updated.stderr == result.stderr
    unsafe = cli("profiles", "create", "../x", SAMPLES / "minimal.toml", "--store", store)
    assert unsafe.exit_code == 1


def test_store_check_reports_and_repairs(store: Path) -> None:
    cli("register", SAMPLES / "minimal.toml", "--store", store)
    assert cli("store", "check", "--store", store).stdout == "store is consistent\n"
    log = store / "mobs" / "hello" / "events.jsonl"
    with log.open("ab") as handle:
        handle.write(b'{"cursor":2,')
    broken = cli("store", "check", "--store", store)
    assert broken.exit_code == 6
    assert broken.stdout.splitlines()[0].startswith(f"problem[torn_tail] {log}: torn tail at byte")
    assert broken.stdout.splitlines()[0].endswith("(fixable with --repair)")
    fixed = cli("store", "check", "--repair", "--store", store, "--json")
    document = json.loads(fixed.stdout)
    assert document["ok"] is True and fixed.exit_code == 0
    assert document["actions"][0].startswith(f"moved a torn tail of {log} to ")


def test_store_check_repair_rebuilds_missing_indexes(store: Path) -> None:
    """The indexes are rebuilt on first use when missing (a store of an older mobctl);
    `--repair` rebuilds them at once, so the first command after it pays nothing."""
    assert cli("run", SAMPLES / "minimal.toml", "-p", "name=x", "--store", store).exit_code == 0
    mob = store / "mobs" / "hello"
    for name in ("runs.index.jsonl", "runs.live.json", "roster.json"):
        (mob / name).unlink(missing_ok=True)
    assert cli("store", "check", "--store", store).exit_code == 0  # missing: no problem
    fixed = cli("store", "check", "--repair", "--store", store, "--json")
    assert json.loads(fixed.stdout)["actions"] == [
        f"rebuilt {mob / 'runs.index.jsonl'} from the snapshots and the log",
        f"rebuilt {mob / 'roster.json'} from the log",
    ]
    assert (mob / "runs.live.json").read_text() == '{"runs":[]}'
    assert json.loads((mob / "roster.json").read_text())["active"].keys() == {"assistant-1"}


def test_item14_a_file_whose_name_is_no_id_is_left_out_and_reported(
    store: Path, tmp_path: Path
) -> None:
    """A Finder copy ("hello copy.json") made the listings, `store check` and its repair fail
    whole with unsafe_id: listings leave such a file out, and `store check` reports it as a
    problem of that file (nothing repairs it: the file may be anyone's)."""
    cli("register", SAMPLES / "minimal.toml", "--store", store)
    profile = tmp_path / "p.toml"
    profile.write_text('model = "claude-sonnet-4-6"\n')
    cli("profiles", "create", "p1", profile, "--store", store)
    spec_copy = store / "specs" / "hello copy.json"
    profile_copy = store / "profiles" / "p1 copy.json"
    mob_copy = store / "mobs" / "hello copy"
    spec_copy.write_bytes((store / "specs" / "hello.json").read_bytes())
    profile_copy.write_bytes((store / "profiles" / "p1.json").read_bytes())
    mob_copy.mkdir()
    specs = cli("specs", "list", "-o", "name", "--store", store)
    assert (specs.exit_code, specs.stdout, specs.stderr) == (0, "hello\n", "")
    profiles = cli("profiles", "list", "-o", "name", "--store", store)
    assert (profiles.exit_code, profiles.stdout, profiles.stderr) == (0, "p1\n", "")
    problems = (
        f"problem[store_corrupt] {spec_copy}: not a spec record (the name is not a mob id)\n"
        f"problem[store_corrupt] {profile_copy}: not a realm profile (the name is not a profile "
        "name)\n"
        f"problem[store_corrupt] {mob_copy}: not a mob (the name is not a mob id)\n"
        "3 problem(s) found\n"
    )
    checked = cli("store", "check", "--store", store)
    assert (checked.exit_code, checked.stdout, checked.stderr) == (6, problems, "")
    repaired = cli("store", "check", "--repair", "--store", store)
    roster = store / "mobs" / "hello" / "roster.json"  # a registered mob's first index
    rebuilt = f"repaired: rebuilt {roster} from the log\n"
    assert (repaired.exit_code, repaired.stdout, repaired.stderr) == (6, rebuilt + problems, "")
    assert spec_copy.exists() and profile_copy.exists() and mob_copy.exists()


def test_newer_store_is_exit_6(store: Path) -> None:
    store.mkdir()
    (store / "store.json").write_text('{"format": "mobctl-store", "schema_version": 2}')
    result = cli("specs", "list", "--store", store)
    assert result.exit_code == 6
    assert result.stderr.startswith(
        f"error[store_format_too_new]: the store at {store} has schema_version 2"
    )


def test_real_process_lock_wait_message(store: Path) -> None:
    import subprocess
    import sys

    cli("store", "init", "--store", store)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nfrom pathlib import Path\nfrom mobctl.store.directory.files import StoreFiles\n"
            "from mobctl.store.directory.locks import Locks\n"
            f"with Locks(StoreFiles(Path({str(store)!r}))).hold('specs/hello'):\n    print('held', flush=True)\n    time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    try:
        result = mobctl_process(
            "register", SAMPLES / "minimal.toml", "--store", store, "--lock-timeout", "1.5"
        )
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 6
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"waiting for specs/hello lock held by pid {holder.pid} on ")
    assert lines[1].startswith(
        "error[store_lock_timeout]: timed out after 1.5s waiting for the specs/hello lock"
    )
