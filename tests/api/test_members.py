"""Members: spawn, list, retire, auto-provision; the roster comes from the event log."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from mobctl import api
from mobctl.engine import members
from mobctl.store.directory import DirectoryStore
from tests.conftest import SAMPLES, cli


@pytest.fixture
def store(store: Path) -> Path:
    """The test's store, with the code-review sample registered."""
    assert cli("register", SAMPLES / "code-review.toml", "--store", store).exit_code == 0
    return store


def test_spawn_list_retire(store: Path) -> None:
    spawned = cli("members", "spawn", "code-review", "reviewer", "--count", "3", "--store", store)
    assert spawned.stdout.splitlines() == [
        "spawned reviewer-1 (role reviewer, generation 0)",
        "spawned reviewer-2 (role reviewer, generation 0)",
        "spawned reviewer-3 (role reviewer, generation 0)",
    ]
    assert cli("members", "retire", "code-review", "reviewer-2", "--store", store).stdout == (
        "retired reviewer-2 (role reviewer)\n"
    )
    listed = json.loads(cli("members", "list", "code-review", "--store", store, "--json").stdout)
    assert [m["identity"] for m in listed] == ["reviewer-1", "reviewer-3"]
    again = json.loads(
        cli("members", "spawn", "code-review", "reviewer", "--store", store, "--json").stdout
    )
    assert again == [{"identity": "reviewer-2", "generation": 1, "role": "reviewer"}]
    log = (store / "mobs" / "code-review" / "events.jsonl").read_text().splitlines()
    spawned_event = json.loads(log[1])["kind"]
    assert spawned_event == {
        "type": "member_spawned",
        "agent_identity": "reviewer-1",
        "generation": 0,
        "fence_token": 1,
        "agent_runtime_id": {"identity": "reviewer-1", "generation": 0},
        "role": "reviewer",
        "runtime_mode": "turn_driven",
    }
    assert list(json.loads(log[4])["kind"]) == ["type", "agent_identity", "generation", "role"]


def test_member_errors(store: Path) -> None:
    unknown = cli("members", "spawn", "code-review", "ghost", "--store", store)
    assert unknown.exit_code == 1
    assert unknown.stderr.splitlines() == [
        "error[not_found]: mob 'code-review' has no profile 'ghost'",
        "hint: profiles: lead, reviewer",
    ]
    cli("members", "spawn", "code-review", "lead", "--id", "boss", "--store", store)
    duplicate = cli("members", "spawn", "code-review", "lead", "--id", "boss", "--store", store)
    assert duplicate.exit_code == 1
    assert duplicate.stderr.startswith("error[cas_conflict]: member 'boss' is already active")
    both = cli(
        "members", "spawn", "code-review", "lead", "--id", "x", "--count", "2", "--store", store
    )
    assert both.exit_code == 2
    missing = cli("members", "retire", "code-review", "nobody", "--store", store)
    assert missing.exit_code == 1
    assert missing.stderr.startswith(
        "error[not_found]: no active member 'nobody' in mob 'code-review'"
    )
    unregistered = cli("members", "spawn", "nope", "x", "--store", store)
    assert unregistered.exit_code == 1
    assert cli("members", "list", "../x", "--store", store).exit_code == 1


def test_roster_survives_pruning(store: Path) -> None:
    from datetime import UTC, datetime, timedelta

    cli("members", "spawn", "code-review", "lead", "--store", store)
    opened = DirectoryStore(store)
    assert opened.events("code-review").prune(datetime.now(UTC) + timedelta(days=1)) == 0
    assert list(members.roster(opened, "code-review").active) == ["lead-1"]


def test_auto_provision_and_concurrent_spawns(store: Path) -> None:
    opened = DirectoryStore(store)
    definition = api.registered_definition(opened, "code-review")
    spawned = members.provision(opened, definition, ["lead", "reviewer", "lead"])
    assert [m.identity for m in spawned] == ["lead-1", "reviewer-1"]
    assert members.provision(opened, definition, ["lead", "reviewer"]) == []
    results: list[str] = []

    def racer() -> None:
        results.append(members.spawn(DirectoryStore(store), definition, "reviewer").identity)

    threads = [threading.Thread(target=racer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [f"reviewer-{n}" for n in range(2, 8)]


def test_realm_profile_members(tmp_path: Path) -> None:
    location = tmp_path / "store"
    assert cli("register", SAMPLES / "draft-critique.toml", "--store", location).exit_code == 0
    missing = cli("members", "spawn", "draft-critique", "editor", "--store", location)
    assert missing.exit_code == 1
    assert "realm profile 'house-editor', which does not exist" in missing.stderr
    profile = tmp_path / "editor.toml"
    profile.write_text('model = "claude-opus-4-8"\nruntime_mode = "turn_driven"\n')
    cli("profiles", "create", "house-editor", profile, "--store", location)
    assert cli("members", "spawn", "draft-critique", "editor", "--store", location).exit_code == 0
