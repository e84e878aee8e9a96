"""Races and integrity (the trust issue, items 10-15), with real processes.

Each test is named after the item it proves; each would fail without its fix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mobctl.store.directory import DirectoryStore
from tests.conftest import REPO, SAMPLES, cli
from tests.engine.test_run_processes import start, wait_for_dispatch
from tests.engine.test_runs_processes import wait_for
from tests.engine.test_scenarios import HEAD, events


def _finish(process: subprocess.Popen[str], timeout: float = 120) -> tuple[str, str]:
    out, err = process.communicate(timeout=timeout)
    return out, err


# --- item 11: concurrent first runs provision one member per role ---------------------------


def test_item11_concurrent_first_runs_provision_one_member_per_role(tmp_path: Path) -> None:
    mob = tmp_path / "mob.toml"
    mob.write_text(
        HEAD + '[profiles.lead]\nmodel = "claude-sonnet-4-6"\n'
        '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n'
        '[flows.main.steps.b]\nrole = "lead"\nmessage = "b"\ndepends_on = ["a"]\n'
    )
    for round_ in range(4):
        store = tmp_path / f"store-{round_}"
        assert cli("register", mob, "--store", store).exit_code == 0
        runs = [start(["run", "s", "--store", str(store)], tmp_path) for _ in range(6)]
        for process in runs:
            _, err = _finish(process)
            assert process.returncode == 0, err
        spawned = [e for e in events(store) if e["type"] == "member_spawned"]
        assert sorted((e["agent_identity"], e["generation"]) for e in spawned) == [
            ("lead-1", 0),
            ("w-1", 0),
        ]
        # every step went to the one member of its role
        targets = {e["target"]["identity"] for e in events(store) if e["type"] == "step_dispatched"}
        assert targets == {"w-1", "lead-1"}


_PROVISIONER = """
import os, sys, time
from pathlib import Path
from mobctl import api
from mobctl.engine.members import provision
from mobctl.store.backends import open_store
store = open_store(Path(sys.argv[1]))
definition = api.registered_definition(store, "s")
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
provision(store, definition, ["w", "lead"])
"""


def test_item11_provisioning_racing_at_the_same_instant_is_a_cas(tmp_path: Path) -> None:
    """The same race, made likely: processes released together by a barrier file."""
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + '[profiles.lead]\nmodel = "claude-sonnet-4-6"\n')
    script = tmp_path / "provision.py"
    script.write_text(_PROVISIONER)
    for round_ in range(5):
        store = tmp_path / f"store-{round_}"
        assert cli("register", mob, "--store", store).exit_code == 0
        go = tmp_path / f"go-{round_}"
        children = [
            subprocess.Popen(
                [sys.executable, str(script), str(store), str(go)],
                env=os.environ | {"PYTHONPATH": str(REPO)},
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        time.sleep(1.0)  # let every child import mobctl and wait at the barrier
        go.touch()
        for child in children:
            _, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
        spawned = [e for e in events(store) if e["type"] == "member_spawned"]
        assert sorted(e["agent_identity"] for e in spawned) == ["lead-1", "w-1"]


# --- item 13: a retired member gets no new turns ---------------------------------------------


def test_item13_a_member_retired_during_a_run_gets_no_new_turn(tmp_path: Path) -> None:
    mob = tmp_path / "mob.toml"
    mob.write_text(
        HEAD + '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n'
        '[flows.main.steps.b]\nrole = "w"\nmessage = "b"\ndepends_on = ["a"]\n'
    )
    fixtures = tmp_path / "slow.toml"
    fixtures.write_text(
        '[[reply]]\nstep = "a"\ndelay_ms = 1500\noutput = "A"\n'
        '[[reply]]\nstep = "b"\noutput = "B"\n'
    )
    store = tmp_path / "store"
    assert cli("register", mob, "--store", store).exit_code == 0
    for _ in range(2):
        assert cli("members", "spawn", "s", "w", "--store", store).exit_code == 0
    process = start(
        ["run", "s", "--driver", f"scripted:{fixtures}", "--store", str(store), "--json"],
        tmp_path,
    )

    def dispatched_a() -> bool:
        return any(
            e["type"] == "step_dispatched" and e["step_id"] == "a" for e in _events_if_any(store)
        )

    wait_for(dispatched_a, timeout=60)
    retired = cli("members", "retire", "s", "w-1", "--store", store)
    assert retired.exit_code == 0, retired.stderr
    out, err = _finish(process)
    assert process.returncode == 0, err
    assert json.loads(out)["outputs"] == {"a": {"w-1": "A", "w-2": "A"}, "b": {"w-2": "B"}}
    b_targets = [
        e["target"]["identity"]
        for e in events(store)
        if e["type"] == "step_dispatched" and e["step_id"] == "b"
    ]
    assert b_targets == ["w-2"]


def _events_if_any(store: Path) -> list[dict[str, Any]]:
    return events(store) if (store / "mobs" / "s" / "events.jsonl").exists() else []


# --- the roster index (store contract §4.9) ----------------------------------------------------


def test_roster_index_is_rebuilt_when_missing_or_stale(tmp_path: Path) -> None:
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD)
    store = tmp_path / "store"
    assert cli("register", mob, "--store", store).exit_code == 0
    assert cli("members", "spawn", "s", "w", "--count", "2", "--store", store).exit_code == 0
    index = store / "mobs" / "s" / "roster.json"
    written = json.loads(index.read_text())
    assert sorted(written["active"]) == ["w-1", "w-2"]
    index.unlink()
    listed = cli("members", "list", "s", "--json", "--store", store)
    assert [m["identity"] for m in json.loads(listed.stdout)] == ["w-1", "w-2"]
    # an index that no longer matches the log (a log cleared and written again) is ignored
    index.write_text(json.dumps(written))
    DirectoryStore(store).events("s").clear()
    listed = cli("members", "list", "s", "--json", "--store", store)
    assert json.loads(listed.stdout) == []
    index.write_text("not json")
    assert cli("members", "spawn", "s", "w", "--store", store).exit_code == 0
    assert sorted(json.loads(index.read_text())["active"]) == ["w-1"]


def test_a_planted_roster_index_is_found_and_rebuilt_by_store_check(tmp_path: Path) -> None:
    """roster.json names the log's cursor and hash, so it is used as it is; one that claims
    members the log does not give (a retired member back, an intruder) is a problem for
    `store check`, and `--repair` rebuilds it from the log."""
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD)
    store = tmp_path / "store"
    assert cli("register", mob, "--store", store).exit_code == 0
    assert cli("members", "spawn", "s", "w", "--count", "2", "--store", store).exit_code == 0
    assert cli("members", "retire", "s", "w-2", "--store", store).exit_code == 0
    index = store / "mobs" / "s" / "roster.json"
    planted = json.loads(index.read_text())
    planted["active"]["intruder"] = {**planted["active"]["w-1"], "identity": "intruder"}
    index.write_text(json.dumps(planted))
    checked = cli("store", "check", "--store", store)
    assert checked.exit_code == 6
    assert checked.stdout == (
        f"problem[stale_index] {index}: roster.json disagrees with the log's member events up "
        f"to cursor {planted['cursor']} (fixable with --repair)\n1 problem(s) found\n"
    )
    repaired = cli("store", "check", "--repair", "--store", store)
    assert repaired.exit_code == 0
    assert f"repaired: rebuilt {index} from the log" in repaired.stdout
    listed = cli("members", "list", "s", "--json", "--store", store)
    assert [m["identity"] for m in json.loads(listed.stdout)] == ["w-1"]


def test_a_run_hidden_from_the_run_index_is_found_and_repaired(tmp_path: Path) -> None:
    """runs.live.json lists the runs a repair looks at: a planted one that leaves out a run
    missing its terminal event would hide it from every repair; `store check` finds the
    disagreement and `--repair` rebuilds the index, then repairs the run."""
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n')
    store = tmp_path / "store"
    assert cli("run", mob, "--store", store).exit_code == 0
    log = store / "mobs" / "s" / "events.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    assert json.loads(lines[-1])["kind"]["type"] == "flow_completed"
    log.write_text("".join(lines[:-1]))  # the terminal event lost
    live = store / "mobs" / "s" / "runs.live.json"
    live.write_text('{"runs": []}')  # and the run hidden from repair
    run_id = json.loads(lines[-1])["kind"]["run_id"]
    checked = cli("store", "check", "--store", store)
    assert checked.exit_code == 6
    assert (
        f"problem[stale_index] {store / 'mobs' / 's' / 'runs.index.jsonl'}: run {run_id} "
        "is unsettled but not listed as live (fixable with --repair)" in checked.stdout
    )
    assert "problem[missing_terminal_event]" in checked.stdout
    repaired = cli("store", "check", "--repair", "--store", store)
    assert repaired.exit_code == 0, repaired.stdout
    assert f"repaired: appended the missing terminal event of run {run_id}" in repaired.stdout
    assert cli("store", "check", "--store", store).exit_code == 0


def test_runtime_mode_of_a_realm_profile_decides_tool_overlays(tmp_path: Path) -> None:
    """A realm profile with ``runtime_mode = "turn_driven"`` accepts a step's tool overlay
    (flow-semantics §7.5): the mode comes from the live roster, not from the inline default."""
    profile = tmp_path / "house.toml"
    profile.write_text('model = "claude-sonnet-4-6"\nruntime_mode = "turn_driven"\n')
    store = tmp_path / "store"
    assert cli("profiles", "create", "house", profile, "--store", store).exit_code == 0
    mob = tmp_path / "mob.toml"
    mob.write_text(
        '[mob]\nid = "s"\n[profiles.w]\nrealm_profile = "house"\n'
        '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\nallowed_tools = ["search"]\n'
    )
    result = cli("run", mob, "--store", store, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["outputs"] == {"a": {"w-1": "a"}}
    spawned = [e for e in events(store) if e["type"] == "member_spawned"]
    assert spawned[0]["runtime_mode"] == "turn_driven"


# --- item 12: a live run is never taken over ---------------------------------------------------


def _clock_ahead(seconds: int) -> dict[str, str]:
    """The environment that runs a child process with its wall clock ``seconds`` ahead
    (libfaketime; monotonic time left alone)."""
    import libfaketime

    _, env = libfaketime.get_reload_information()
    return env | {"FAKETIME": f"+{seconds}s", "DONT_FAKE_MONOTONIC": "1"}


def test_item12_a_process_whose_clock_is_ahead_never_takes_a_live_run_over(
    tmp_path: Path,
) -> None:
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\ntimeout_ms = 60000\n')
    fixtures = tmp_path / "slow.toml"
    fixtures.write_text('[[reply]]\ndelay_ms = 4000\noutput = "done"\n')
    store = tmp_path / "store"
    owner = start(
        ["run", str(mob), "--driver", f"scripted:{fixtures}", "--store", str(store), "--json"],
        tmp_path,
    )
    run_id = wait_for_dispatch(store)
    skewed = os.environ | {"PYTHONPATH": str(REPO)} | _clock_ahead(600)
    for args in (["runs", "recover", "s", "--cancel"], ["runs", "resume", "s", run_id]):
        other = subprocess.run(
            [sys.executable, "-m", "mobctl", *args, "--store", str(store)],
            capture_output=True,
            text=True,
            env=skewed,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        if args[1] == "recover":
            assert (other.returncode, other.stdout) == (0, "mob 's' has no orphaned runs\n")
        else:
            assert other.returncode == 1
            assert other.stderr.startswith(
                f"error[run_not_resumable]: run {run_id} still has a live owner: pid {owner.pid}"
            )
    out, err = _finish(owner)
    assert owner.returncode == 0, err
    assert json.loads(out)["status"] == "completed"
    dispatches = [e for e in events(store) if e["type"] == "step_dispatched"]
    assert len(dispatches) == 1


# --- item 10: `mobctl run FILE` runs that file -------------------------------------------------


def _versioned(tmp_path: Path, version: str) -> Path:
    path = tmp_path / f"{version}.toml"
    path.write_text(HEAD + f'[flows.main.steps.a]\nrole = "w"\nmessage = "{version}"\n')
    return path


def test_item10_concurrent_runs_of_two_files_each_run_their_own_file(tmp_path: Path) -> None:
    files = {version: _versioned(tmp_path, version) for version in ("v1", "v2")}
    store = tmp_path / "store"
    for _ in range(4):
        runs = {
            version: start(["run", str(path), "--store", str(store), "--json"], tmp_path)
            for version, path in files.items()
        }
        for version, process in runs.items():
            out, err = _finish(process)
            assert process.returncode == 0, err
            assert "spec_revision_conflict" not in err
            assert json.loads(out)["outputs"] == {"a": {"w-1": version}}
    # each run records the revision it ran, and that revision is its file's definition
    store_ = DirectoryStore(store)
    for run in store_.runs("s").list_runs():
        assert run.mobctl is not None and run.mobctl.spec_revision is not None
        output = run.root_step_outputs["a"]
        assert isinstance(output, dict)
        revision_event = _definition_event(store, run.mobctl.spec_revision)
        message = revision_event["definition"]["flows"]["main"]["steps"]["a"]["message"]
        assert output == {"w-1": message}


def test_item10_a_registration_landing_in_between_does_not_change_what_runs(
    tmp_path: Path,
) -> None:
    """The race made certain: another process registers v2 right after this command
    registered v1 (the real spec store, with its ``put_spec`` followed by a second one)."""
    from mobctl import api
    from mobctl.api.registration import candidate, store_candidate
    from mobctl.store.backends import open_store
    from mobctl.validation.catalog import bundled_catalog

    v1, v2 = _versioned(tmp_path, "v1"), _versioned(tmp_path, "v2")
    store = open_store(tmp_path / "store")
    real_put = store.specs.put_spec
    raced: list[int] = []

    def put_then_race(*args: Any, **kwargs: Any) -> int:
        revision = real_put(*args, **kwargs)
        if not raced:  # the other process wins the next moment
            raced.append(0)
            raced[0] = store_candidate(store, candidate(v2, bundled_catalog())).revision
        return revision

    store.specs.put_spec = put_then_race  # type: ignore[method-assign]
    outcome = api.start_run(store, str(v1))
    assert raced == [2]
    assert outcome.run.mobctl is not None and outcome.run.mobctl.spec_revision == 1
    assert outcome.outputs == {"a": {"w-1": "v1"}}


def _definition_event(store: Path, revision: int) -> dict[str, Any]:
    for event in events(store):
        if event["type"] == "mob_created" and revision == 1:
            return event
        if event["type"] == "mob_definition_updated" and event["revision"] == revision:
            return event
    raise AssertionError(f"no event for revision {revision}")


def test_item10_concurrent_identical_registrations_all_succeed(tmp_path: Path) -> None:
    mob = _versioned(tmp_path, "v1")
    for round_ in range(3):
        store = tmp_path / f"store-{round_}"
        registrations = [
            start(["register", str(mob), "--store", str(store), "--json"], tmp_path)
            for _ in range(5)
        ]
        revisions = []
        for process in registrations:
            out, err = _finish(process)
            assert process.returncode == 0, err
            revisions.append(json.loads(out)["revision"])
        assert revisions == [1] * 5
        assert [e["type"] for e in events(store)] == ["mob_created"]


# --- item 15: the spec and its event agree -----------------------------------------------------


def test_item15_a_definition_whose_event_is_too_large_is_not_stored(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("MOBCTL_MAX_RECORD_BYTES", str(16 * 1024))
    mob = tmp_path / "big.toml"
    mob.write_text(
        '[mob]\nid = "s"\n[skills.huge]\nsource = "inline"\ncontent = "'
        + "x" * 20_000
        + '"\n[profiles.w]\nmodel = "claude-sonnet-4-6"\nskills = ["huge"]\n'
    )
    store = tmp_path / "store"
    for _ in range(2):  # refused the same way each time, never "unchanged"
        refused = cli("register", mob, "--store", store)
        assert refused.exit_code == 1
        assert refused.stderr.startswith("error[record_too_large]: event 'mob_created' is ")
    assert cli("specs", "list", "--store", store, "--json").stdout.strip() == "[]"
    assert not (store / "mobs" / "s" / "events.jsonl").exists()


# --- item 14: pruning never produces a false tamper alarm or disables repair -------------------


def _minimal_run(store: Path) -> None:
    fixtures = SAMPLES / "fixtures" / "hello.toml"
    ran = cli(
        "run", SAMPLES / "minimal.toml", "-p", "name=Ada", "--driver", f"scripted:{fixtures}",
        "--store", store,
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr


def test_item14_pruning_the_tail_of_a_sealed_log_is_no_tamper_alarm(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert cli("register", SAMPLES / "minimal.toml", "--store", store).exit_code == 0
    assert cli("supervisor", "init", "hello", "--store", store).exit_code == 0
    _minimal_run(store)  # signs a checkpoint at its terminal event, the log's last record
    time.sleep(0.01)
    pruned = cli("events", "prune", "hello", "--older-than", "0s", "--yes", "--store", store)
    assert pruned.exit_code == 0, pruned.stderr
    _minimal_run(store)
    verified = cli("events", "verify", "hello", "--signatures", "--json", "--store", store)
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)["signatures"]
    assert report["problems"] == [] and report["pruned"] >= 1 and report["verified"] >= 1
    assert cli("store", "check", "--store", store).exit_code == 0
    # and again after a second prune of the tail, which rewrites the chain links
    time.sleep(0.01)
    assert (
        cli("events", "prune", "hello", "--older-than", "0s", "--yes", "--store", store).exit_code
        == 0
    )
    _minimal_run(store)
    verified = cli("events", "verify", "hello", "--signatures", "--json", "--store", store)
    assert verified.exit_code == 0
    assert json.loads(verified.stdout)["signatures"]["problems"] == []


def test_item14_a_prune_horizon_in_the_future_does_not_turn_repair_off(tmp_path: Path) -> None:
    from tests.cli.test_runs_commands import crash_between_the_two_writes, flow_canceled, place

    store = tmp_path / "store"
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n')
    assert cli("run", mob, "--store", store).exit_code == 0
    future = "2999-01-01T00:00:00Z"
    pruned = cli("events", "prune", "s", "--older-than", future, "--yes", "--store", store)
    assert pruned.exit_code == 0, pruned.stderr
    horizon = DirectoryStore(store).events("s").pruned_before()
    assert horizon is not None and horizon.year < 2999
    time.sleep(0.01)
    orphan = place(store, "0d000000-0000-4000-8000-000000000001", None)
    crash_between_the_two_writes(store, orphan.run_id)
    assert cli("members", "spawn", "s", "w", "--store", store).exit_code == 0  # a writer
    assert len(flow_canceled(store, orphan.run_id)) == 1


def test_item14_a_prune_that_fails_does_not_advance_the_horizon(tmp_path: Path) -> None:
    """A real write failure: the prune runs in a process whose files may not grow past 8 KiB
    (RLIMIT_FSIZE, as on a full disk), so the meta is written but the new log is not."""
    import resource
    import signal

    store = tmp_path / "store"
    mob = tmp_path / "mob.toml"
    big = "x" * 12_000  # the anchors that survive a prune outweigh the limit
    mob.write_text(
        f'[mob]\nid = "s"\n[skills.k]\nsource = "inline"\ncontent = "{big}"\n'
        '[profiles.w]\nmodel = "claude-sonnet-4-6"\nskills = ["k"]\n'
        '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n'
    )
    for _ in range(3):
        assert cli("run", mob, "--store", store).exit_code == 0
    log = store / "mobs" / "s" / "events.jsonl"
    before = log.read_bytes()
    time.sleep(0.01)

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process

    failed = subprocess.run(
        [sys.executable, "-m", "mobctl", "events", "prune", "s", "--older-than", "0s", "--yes",
         "--store", str(store)],
        capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(REPO)},
        preexec_fn=small_files, stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip
    assert failed.returncode == 6, failed.stderr
    assert failed.stderr.startswith("error[store_write_failed]: cannot write ")
    assert log.read_bytes() == before
    assert DirectoryStore(store).events("s").pruned_before() is None
    assert cli("store", "check", "--store", store).exit_code == 0
    # the same prune, with room to write, takes effect
    assert (
        cli("events", "prune", "s", "--older-than", "0s", "--yes", "--store", store).exit_code == 0
    )
    assert DirectoryStore(store).events("s").pruned_before() is not None
