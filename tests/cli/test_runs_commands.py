"""`mobctl runs list|show|cancel|recover` through the CLI, on runs made by real `mobctl run`s
and on snapshots placed with the store contract (owners alive, gone, expired, released)."""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mobctl.clock import now, timestamp
from mobctl.engine.custody import orphan_reason
from mobctl.host import host, me
from mobctl.store.changes import RunExpectation, RunMutation
from mobctl.store.directory import DirectoryStore
from mobctl.store.models import (
    EventKind,
    FlowRunState,
    MobctlRunState,
    MobRun,
    NewMobEvent,
    RunOwner,
)
from tests.conftest import SAMPLES, cli
from tests.engine.test_scenarios import HEAD

STEPS = (
    "[limits]\nmax_step_retries = 1\n"
    '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n'
    '[flows.main.steps.b]\nrole = "w"\nmessage = "b"\ndepends_on = ["a"]\n'
    '[flows.main.steps.c]\nrole = "w"\nmessage = "c"\ndepends_on = ["b"]\n'
    '[flows.other.steps.x]\nrole = "w"\nmessage = "x"\n'
)
REPLIES = (
    '[[reply]]\nstep = "a"\noutput = "A"\n'
    '[[reply]]\nstep = "b"\nfail = "flaky"\n'
    '[[reply]]\nstep = "x"\noutput = "X"\n'
)


@pytest.fixture
def mob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """(definition, fixtures, store) of mob ``s``: flow ``main`` fails at b, ``other`` passes.

    Ids made by real runs start with ``9``, so the hand-placed runs' prefixes (``0a``,
    ``abc``, ``fff``...) match exactly the runs a test means, whatever the random draw.
    """
    drawn = itertools.count(1)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=(9 << 124) | next(drawn)))
    definition = tmp_path / "mob.toml"
    definition.write_text(HEAD + STEPS)
    replies = tmp_path / "replies.toml"
    replies.write_text(REPLIES)
    return definition, replies, tmp_path / "store"


def run(mob: tuple[Path, Path, Path], flow: str) -> str:
    definition, replies, store = mob
    result = cli(
        "run", definition, flow, "--driver", f"scripted:{replies}", "--store", store, "--json"
    )
    assert result.exit_code in (0, 3), result.stderr
    return str(json.loads(result.stdout)["run_id"])


def runs_cmd(store: Path, *args: str) -> Any:
    return cli("runs", *args, "--store", store)


def owner(**changes: Any) -> RunOwner:
    pid, where, started = me()
    stamp = timestamp()
    fields: dict[str, Any] = {
        "token": "t-" + os.urandom(4).hex(),
        "pid": pid,
        "host": where,
        "process_start": started,
        "acquired_at": stamp,
        "heartbeat_at": stamp,
    }
    return RunOwner(**(fields | changes))


def place(
    store: Path, run_id: str, lease: RunOwner | None, *, created: str | None = None
) -> MobRun:
    """A pending run of flow main (no process behind it) holding ``lease``."""
    run = MobRun(
        run_id=run_id,
        mob_id="s",
        flow_id="main",
        status="pending",
        flow_state=FlowRunState(
            phase="Absent", ordered_steps=["a"], step_status={"a": None}, active_node_count=0
        ),
        created_at=created or timestamp(),
        mobctl=MobctlRunState(owner=lease),
    )
    DirectoryStore(store).runs("s").create_run(run)
    return run


def gone() -> RunOwner:
    """This process's pid with another start time: provably not the owner any more."""
    return owner(process_start="another-incarnation")


def flow_canceled(store: Path, run_id: str) -> list[dict[str, Any]]:
    events = DirectoryStore(store).events("s").replay_all()
    return [
        e.kind.model_dump()
        for e in events
        if e.kind.type == "flow_canceled" and e.kind.field("run_id") == run_id
    ]


# --- list ------------------------------------------------------------------------------------


def test_list_newest_first_with_filters_and_json(mob: tuple[Path, Path, Path]) -> None:
    store = mob[2]
    failed = run(mob, "main")
    completed = run(mob, "other")
    listed = runs_cmd(store, "list", "s")
    assert listed.exit_code == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["RUN", "FLOW", "STATUS", "CAUSE", "STARTED", "DURATION"]
    assert [line.split()[:4] for line in lines[1:]] == [
        [completed[:8], "other", "completed", "-"],
        [failed[:8], "main", "failed", "step_error"],
    ]
    only = json.loads(runs_cmd(store, "list", "s", "--flow", "main", "--json").stdout)
    assert [r["run_id"] for r in only] == [failed]
    assert set(only[0]) == {
        "run_id",
        "mob_id",
        "flow_id",
        "status",
        "cause",
        "timed_out",
        "orphaned",
        "orphan_reason",
        "cancel_requested",
        "created_at",
        "completed_at",
        "duration_ms",
        "owner",
    }
    assert only[0]["status"] == "failed" and only[0]["cause"] == "step_error"
    assert only[0]["orphaned"] is False and isinstance(only[0]["duration_ms"], int)
    by_status = json.loads(runs_cmd(store, "list", "s", "--status", "completed", "--json").stdout)
    assert [r["run_id"] for r in by_status] == [completed]
    both = runs_cmd(store, "list", "s", "--status", "completed", "--status", "failed", "--json")
    assert [r["run_id"] for r in json.loads(both.stdout)] == [completed, failed]
    none = runs_cmd(store, "list", "s", "--status", "canceled")
    assert (none.exit_code, none.stdout, none.stderr) == (0, "", "mob 's' has no runs that match\n")


def test_list_marks_orphans_and_filters_them(mob: tuple[Path, Path, Path]) -> None:
    store = mob[2]
    run(mob, "other")
    dead = place(store, "0d000000-0000-4000-8000-000000000001", gone())
    alive = place(store, "0a000000-0000-4000-8000-000000000002", owner())
    listed = runs_cmd(store, "list", "s")
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert "pending (orphaned)" in rows[dead.run_id[:8]]
    assert "orphaned" not in rows[alive.run_id[:8]]
    orphans = json.loads(runs_cmd(store, "list", "s", "--status", "orphaned", "--json").stdout)
    assert [(o["run_id"], o["orphaned"]) for o in orphans] == [(dead.run_id, True)]
    assert (
        orphans[0]["orphan_reason"] == f"its owner process (pid {os.getpid()} on {host()}) is gone"
    )


def test_list_errors(mob: tuple[Path, Path, Path]) -> None:
    store = mob[2]
    run(mob, "other")
    bad = runs_cmd(store, "list", "s", "--status", "bogus")
    assert bad.exit_code == 2
    assert bad.stderr == (
        "error[usage]: unknown status 'bogus'\n"
        "hint: use one of: pending, running, completed, failed, timed_out, canceled, orphaned\n"
    )
    unknown = runs_cmd(store, "list", "nope")
    assert unknown.exit_code == 1
    assert unknown.stderr == (
        f"error[not_found]: no mob 'nope' in {store}\n"
        "hint: `mobctl specs list` shows the registered mobs\n"
    )
    unsafe = runs_cmd(store, "list", "../x")
    assert unsafe.exit_code == 1 and unsafe.stderr.startswith("error[unsafe_id]: mob id '../x'")


def test_list_of_a_mob_without_runs(mob: tuple[Path, Path, Path]) -> None:
    definition, _, store = mob
    assert cli("register", definition, "--store", store).exit_code == 0
    result = runs_cmd(store, "list", "s")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "mob 's' has no runs\n")
    assert runs_cmd(store, "list", "s", "--json").stdout == "[]\n"


# --- show ------------------------------------------------------------------------------------


def test_show_steps_members_attempts_reasons(mob: tuple[Path, Path, Path]) -> None:
    store = mob[2]
    run_id = run(mob, "main")
    result = runs_cmd(store, "show", "s", run_id[:8])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"run       {run_id}\nmob       s\nflow      main\n")
    assert "status    failed (step_error)\n" in out
    steps = out.split("\nsteps\n", 1)[1].splitlines()
    assert steps[0].split() == [
        "STEP",
        "STATUS",
        "MEMBERS",
        "ATTEMPTS",
        "STARTED",
        "DURATION",
        "REASON",
    ]
    assert steps[1].split()[:4] == ["a", "completed", "w-1", "1"]
    assert steps[2].split()[:4] == ["b", "failed", "w-1", "2"] and steps[2].endswith("flaky")
    assert steps[3].split()[:2] == ["c", "skipped"]
    assert steps[3].endswith("dependency 'b' failed")
    assert "  b: w-1 attempt 1 failed: flaky\n  b: w-1 attempt 2 failed: flaky\n" in out
    assert '\noutputs\n{\n  "a": {\n    "w-1": "A"\n  }\n}\n' in out
    assert out.endswith(
        '\nresult\n{\n  "w-1": "A"\n}\n'
        "\naccounting (tokens)\n"
        "  MEMBER  ROLE  TURNS  INPUT  OUTPUT  CACHE READ  CACHE WRITE\n"
        "  w-1     w     3      -      -       -           -\n"
        "  total                0      0\n"
    )


def test_show_json_is_the_snapshot(mob: tuple[Path, Path, Path]) -> None:
    store = mob[2]
    run_id = run(mob, "other")
    shown = json.loads(runs_cmd(store, "show", "s", run_id, "--json").stdout)
    snapshot = DirectoryStore(store).runs("s").get_run(run_id)
    assert snapshot is not None and shown == snapshot.document()
    assert list(shown)[:8] == [
        "run_id",
        "mob_id",
        "flow_id",
        "flow_definition_digest",
        "status",
        "flow_state",
        "activation_params",
        "created_at",
    ]
    assert shown["status"] == "completed" and shown["root_step_outputs"] == {"x": {"w-1": "X"}}
    assert shown["schema_version"] == 7 and shown["flow_authority_inputs"] == []


def test_show_prefix_ambiguous_and_unknown(mob: tuple[Path, Path, Path]) -> None:
    store = mob[2]
    run(mob, "other")
    first = place(store, "abc00000-0000-4000-8000-000000000001", owner())
    second = place(store, "abc00000-0000-4000-8000-000000000002", owner())
    assert runs_cmd(store, "show", "s", "ABC00000-0000-4000-8000-000000000001").exit_code == 0
    unique = runs_cmd(store, "show", "s", "abc00000-0000-4000-8000-0000000000", "--json")
    assert unique.exit_code == 1 and "matches 2 runs" in unique.stderr
    exact = json.loads(runs_cmd(store, "show", "s", second.run_id, "--json").stdout)
    assert exact["run_id"] == second.run_id
    ambiguous = runs_cmd(store, "show", "s", "abc")
    assert ambiguous.exit_code == 1
    assert ambiguous.stderr == (
        f"error[ambiguous_run_id]: run id prefix 'abc' matches 2 runs of mob 's': "
        f"{first.run_id}, {second.run_id}\n"
        "hint: give more characters of the run id\n"
    )
    unknown = runs_cmd(store, "show", "s", "fff")
    assert unknown.exit_code == 1
    assert unknown.stderr == (
        "error[not_found]: mob 's' has no run 'fff'\nhint: `mobctl runs list s` lists its runs\n"
    )
    no_mob = runs_cmd(store, "show", "t", "abc")
    assert no_mob.exit_code == 1 and no_mob.stderr.startswith("error[not_found]: no mob 't' in ")


def test_show_of_a_running_run_and_an_orphan(mob: tuple[Path, Path, Path]) -> None:
    store = mob[2]
    run(mob, "other")
    live = place(store, "0a000000-0000-4000-8000-000000000002", owner())
    out = runs_cmd(store, "show", "s", "0a").stdout
    assert "status    pending\n" in out and f"owner     pid {os.getpid()} on {host()}" in out
    assert "orphaned" not in out
    assert "\n  a     pending  -" in out
    place(store, "0d000000-0000-4000-8000-000000000001", None)
    orphan = runs_cmd(store, "show", "s", "0d").stdout
    assert "orphaned  it has no owner lease\n" in orphan
    assert live.run_id[:8] in runs_cmd(store, "list", "s").stdout


# --- the orphan judgement (pure) -------------------------------------------------------------


def test_orphan_judgement() -> None:
    moment = now()
    base = MobRun(run_id="r", mob_id="s", flow_id="main", created_at=timestamp(moment))

    def judged(lease: RunOwner | None, *, state: str = "unknown", **changes: Any) -> str | None:
        run = base.model_copy(update={"mobctl": MobctlRunState(owner=lease), **changes})
        return orphan_reason(run, moment, probe=lambda pid, where, started: state)  # type: ignore[arg-type,return-value]

    fresh = owner(pid=42, host="h")
    assert judged(fresh) is None
    assert judged(fresh, status="running") is None
    assert judged(None) == "it has no owner lease"
    assert judged(fresh, status="completed", state="gone") is None  # terminal: never orphaned
    assert judged(owner(released_at="2026-01-01T00:00:00Z")) == (
        "its owner released the lease at 2026-01-01T00:00:00Z"
    )
    assert judged(fresh, state="gone") == "its owner process (pid 42 on h) is gone"
    # another host: the heartbeat decides, after ttl_ms plus the clock-skew margin
    stale = timestamp(moment - timedelta(seconds=91))
    assert judged(owner(pid=42, host="h", heartbeat_at=stale)) == (
        f"its owner (pid 42 on h) has not renewed its lease since {stale}"
    )
    recent = timestamp(moment - timedelta(seconds=89))
    assert judged(owner(pid=42, host="h", heartbeat_at=recent)) is None
    assert judged(owner(heartbeat_at=stale, ttl_ms=60_000)) is None
    # this host, owner alive: never orphaned, however old its heartbeat looks
    ancient = timestamp(moment - timedelta(days=1))
    assert judged(owner(pid=42, host="h", heartbeat_at=ancient), state="alive") is None
    no_extras = base.model_copy(update={"mobctl": None})
    assert orphan_reason(no_extras, moment) == "it has no owner lease"
    # the default probe: this process is alive; a pid of this host with another start is not
    assert (
        orphan_reason(base.model_copy(update={"mobctl": MobctlRunState(owner=owner())}), moment)
        is None
    )
    assert orphan_reason(base.model_copy(update={"mobctl": MobctlRunState(owner=gone())}), moment)


def test_custody_is_taken_by_one_process_only(mob: tuple[Path, Path, Path]) -> None:
    from mobctl.engine.custody import cancel_in_custody, take_over
    from mobctl.errors import CustodyLost

    store = mob[2]
    run(mob, "other")
    opened = DirectoryStore(store)
    judged = place(store, "0d000000-0000-4000-8000-000000000001", gone())
    ours = take_over(opened, judged)
    assert ours is not None
    assert take_over(opened, judged) is None  # judged on a lease that is gone now
    rival = owner()
    assert opened.runs("s").acquire_run_lease(judged.run_id, rival, expected_token=ours.token)
    with pytest.raises(CustodyLost):
        cancel_in_custody(opened, "s", judged.run_id, ours, "execution_custody_lost")
    after = opened.runs("s").get_run(judged.run_id)
    assert after is not None and after.status == "pending"
    assert after.mobctl is not None and after.mobctl.owner == rival  # not released by the loser
    assert flow_canceled(store, judged.run_id) == []


# --- cancel ----------------------------------------------------------------------------------


def test_cancel_terminal_run_is_a_no_op(mob: tuple[Path, Path, Path]) -> None:
    store = mob[2]
    run_id = run(mob, "other")
    result = runs_cmd(store, "cancel", "s", run_id[:6])
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == f"run {run_id} is already completed: nothing to cancel\n"
    document = json.loads(runs_cmd(store, "cancel", "s", run_id, "--json").stdout)
    assert document == {
        "run_id": run_id,
        "status": "completed",
        "cause": None,
        "action": "already_terminal",
        "reason": None,
    }
    assert flow_canceled(store, run_id) == []


def test_cancel_an_orphan_converges_it_at_once(mob: tuple[Path, Path, Path]) -> None:
    store = mob[2]
    run(mob, "other")
    orphan = place(store, "0d000000-0000-4000-8000-000000000001", gone())
    result = runs_cmd(store, "cancel", "s", "0d", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "run_id": orphan.run_id,
        "status": "canceled",
        "cause": "cancel_requested",
        "action": "canceled_here",
        "reason": f"its owner process (pid {os.getpid()} on {host()}) is gone",
    }
    assert flow_canceled(store, orphan.run_id) == [
        {
            "type": "flow_canceled",
            "run_id": orphan.run_id,
            "flow_id": "main",
            "cause": "cancel_requested",
        }
    ]
    final = DirectoryStore(store).runs("s").get_run(orphan.run_id)
    assert final is not None and final.mobctl is not None and final.mobctl.owner is not None
    assert final.mobctl.cancel_requested is not None
    assert (
        final.mobctl.owner.released_at is not None
        and final.mobctl.owner.token != orphan.mobctl.owner.token
    )  # type: ignore[union-attr]
    assert final.flow_state.step_status == {"a": "Canceled"}
    assert final.flow_state.phase == "Canceled" and final.completed_at is not None
    started = [
        e for e in DirectoryStore(store).events("s").replay_all() if e.kind.type == "flow_started"
    ]
    assert all(e.kind.field("run_id") != orphan.run_id for e in started)  # no flow_started


def test_cancel_a_live_run_requests_then_takes_over_after_the_timeout(
    mob: tuple[Path, Path, Path],
) -> None:
    store = mob[2]
    run(mob, "other")
    live = place(store, "0a000000-0000-4000-8000-000000000002", owner())
    requested = runs_cmd(store, "cancel", "s", "0a")
    assert requested.exit_code == 0, requested.stderr
    assert requested.stdout == (
        f"cancel requested for run {live.run_id}; its owner (pid {os.getpid()} on {host()}) "
        "stops it (--wait waits)\n"
    )
    current = DirectoryStore(store).runs("s").get_run(live.run_id)
    assert current is not None and current.status == "pending"
    assert current.mobctl is not None and current.mobctl.cancel_requested is not None
    assert current.mobctl.cancel_requested["by"]["command"] == "mobctl runs cancel"  # type: ignore[index]
    # nobody is running it: after the grace period this process takes custody (§12.1)
    waited = runs_cmd(store, "cancel", "s", "0a", "--wait", "--timeout", "300ms")
    assert waited.exit_code == 0, waited.stderr
    assert waited.stdout == (
        f"run {live.run_id} canceled (cancel_requested): canceled by this process because "
        "its owner did not stop within 300ms\n"
    )
    assert len(flow_canceled(store, live.run_id)) == 1


def test_cancel_errors(mob: tuple[Path, Path, Path]) -> None:
    store = mob[2]
    run(mob, "other")
    unknown = runs_cmd(store, "cancel", "s", "fff")
    assert unknown.exit_code == 1 and unknown.stderr.startswith(
        "error[not_found]: mob 's' has no run 'fff'"
    )
    bad = runs_cmd(store, "cancel", "s", "fff", "--timeout", "soon")
    assert bad.exit_code == 2
    assert (
        bad.stderr == "error[usage]: --timeout 'soon' is not a duration\n"
        "hint: use seconds (30) or a duration such as 500ms, 30s, 1m30s, 2h or 1d\n"
    )


# --- recover ---------------------------------------------------------------------------------


def test_recover_lists_then_cancels_orphans_once(mob: tuple[Path, Path, Path]) -> None:
    store = mob[2]
    done = run(mob, "other")
    stale = timestamp(now() - timedelta(minutes=5))
    dead = place(store, "0d000000-0000-4000-8000-000000000001", gone())
    bare = place(store, "0e000000-0000-4000-8000-000000000002", None)
    expired = place(
        store, "0f000000-0000-4000-8000-000000000003", owner(host="elsewhere", heartbeat_at=stale)
    )
    live = place(store, "0a000000-0000-4000-8000-000000000004", owner())
    listed = runs_cmd(store, "recover", "s")
    assert listed.exit_code == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        f"orphaned run {dead.run_id}: its owner process (pid {os.getpid()} on {host()}) is gone",
        f"orphaned run {bare.run_id}: it has no owner lease",
        f"orphaned run {expired.run_id}: its owner (pid {os.getpid()} on elsewhere) has not "
        f"renewed its lease since {stale}",
    ]
    assert listed.stderr == "hint: `mobctl runs recover s --cancel` cancels them\n"
    assert all(flow_canceled(store, r.run_id) == [] for r in (dead, bare, expired))
    canceled = json.loads(runs_cmd(store, "recover", "s", "--cancel", "--json").stdout)
    assert canceled["repaired"] == []
    assert [(o["run_id"], o["status"], o["outcome"]) for o in canceled["orphans"]] == [
        (dead.run_id, "canceled", "canceled"),
        (bare.run_id, "canceled", "canceled"),
        (expired.run_id, "canceled", "canceled"),
    ]
    for orphan in (dead, bare, expired):
        assert flow_canceled(store, orphan.run_id) == [
            {
                "type": "flow_canceled",
                "run_id": orphan.run_id,
                "flow_id": "main",
                "cause": "execution_custody_lost",
            }
        ]
    again = runs_cmd(store, "recover", "s", "--cancel")
    assert (again.exit_code, again.stdout) == (0, "mob 's' has no orphaned runs\n")
    statuses = {r.run_id: r.status for r in DirectoryStore(store).runs("s").list_runs()}
    assert statuses[live.run_id] == "pending" and statuses[done] == "completed"
    assert cli("store", "check", "--store", store).exit_code == 0


def test_recover_and_cancel_sign_the_log_they_end_runs_in(mob: tuple[Path, Path, Path]) -> None:
    """With a supervisor authority, the terminal events a cancel writes are signed, as a run's."""
    store = mob[2]
    run(mob, "other")
    assert cli("supervisor", "init", "s", "--store", store).exit_code == 0
    checkpoints = store / "mobs" / "s" / "checkpoints.jsonl"
    last_signed = lambda: json.loads(checkpoints.read_text().splitlines()[-1])["cursor"]  # noqa: E731
    place(store, "0d000000-0000-4000-8000-000000000001", gone())
    recovered = runs_cmd(store, "recover", "s", "--cancel")
    assert recovered.exit_code == 0 and recovered.stderr == "", recovered.stderr
    assert last_signed() == DirectoryStore(store).events("s").latest_cursor()
    place(store, "0e000000-0000-4000-8000-000000000002", None)
    canceled = runs_cmd(store, "cancel", "s", "0e")
    assert canceled.exit_code == 0 and canceled.stderr == "", canceled.stderr
    assert last_signed() == DirectoryStore(store).events("s").latest_cursor()
    assert cli("events", "verify", "s", "--signatures", "--store", store).exit_code == 0
    (store / "mobs" / "s" / "metadata" / "supervisor.json").chmod(0o644)  # refused to sign
    place(store, "0f000000-0000-4000-8000-000000000003", None)
    unsigned = runs_cmd(store, "recover", "s", "--cancel")
    assert unsigned.exit_code == 0
    assert unsigned.stderr.startswith("warning: no checkpoint was signed: ")


# --- terminal-event repair on open -----------------------------------------------------------


def crash_between_the_two_writes(store: Path, run_id: str) -> None:
    """The snapshot says canceled, the log has no flow_canceled (a crash between the writes)."""
    kind = {
        "type": "flow_canceled",
        "run_id": run_id,
        "flow_id": "main",
        "cause": "cancel_requested",
    }
    runs = DirectoryStore(store).runs("s")
    assert runs.mutate_run(
        run_id,
        RunExpectation(status="pending"),
        RunMutation(status="canceled", mobctl={"terminal_event": kind}),
    )


@pytest.mark.parametrize(
    "command",
    [
        ("members", "spawn", "s", "w"),
        ("members", "retire", "s", "w-1"),
        ("register", "{definition}"),
        ("run", "s", "other", "--driver", "scripted:{replies}"),
        ("runs", "cancel", "s", "0d"),
        ("runs", "recover", "s"),
        ("events", "prune", "s", "--older-than", "3650d", "--yes"),
        ("events", "seal", "s"),
    ],
)
def test_writing_commands_repair_a_missing_terminal_event_once(
    mob: tuple[Path, Path, Path], command: tuple[str, ...]
) -> None:
    definition, replies, store = mob
    run(mob, "other")
    if command[:2] == ("events", "seal"):  # sealing needs an authority
        assert cli("supervisor", "init", "s", "--store", store).exit_code == 0
    orphan = place(store, "0d000000-0000-4000-8000-000000000001", None)
    crash_between_the_two_writes(store, orphan.run_id)
    assert cli("runs", "list", "s", "--store", store).exit_code == 0  # a reader repairs nothing
    assert flow_canceled(store, orphan.run_id) == []
    args = [a.format(definition=definition, replies=replies) for a in command]
    result = cli(*args, "--store", store)
    assert result.exit_code == 0, result.stderr
    assert len(flow_canceled(store, orphan.run_id)) == 1
    assert cli("members", "spawn", "s", "w", "--store", store).exit_code == 0
    assert len(flow_canceled(store, orphan.run_id)) == 1  # exactly once
    assert cli("store", "check", "--store", store).exit_code == 0


def test_recover_reports_the_repair(mob: tuple[Path, Path, Path]) -> None:
    store = mob[2]
    run(mob, "other")
    orphan = place(store, "0d000000-0000-4000-8000-000000000001", None)
    crash_between_the_two_writes(store, orphan.run_id)
    result = runs_cmd(store, "recover", "s")
    assert result.stdout == (
        f"repaired run {orphan.run_id}: appended its missing terminal event\n"
        "mob 's' has no orphaned runs\n"
    )
    assert json.loads(runs_cmd(store, "recover", "s", "--json").stdout) == {
        "repaired": [],
        "orphans": [],
    }


def test_repair_appends_only_what_is_missing(mob: tuple[Path, Path, Path]) -> None:
    from mobctl.store.repair import missing_terminal_events

    store = mob[2]
    run(mob, "other")
    run(mob, "main")
    opened = DirectoryStore(store)
    assert missing_terminal_events(opened, "s") == []
    orphan = place(store, "0d000000-0000-4000-8000-000000000001", None)
    crash_between_the_two_writes(store, orphan.run_id)
    assert [r.run_id for r in missing_terminal_events(opened, "s")] == [orphan.run_id]
    before = len(opened.events("s").replay_all())
    opened.events("s").append(
        NewMobEvent(
            mob_id="s",
            kind=EventKind(type="flow_canceled", run_id=orphan.run_id, flow_id="main", cause="x"),
        )
    )
    assert missing_terminal_events(opened, "s") == []
    assert len(opened.events("s").replay_all()) == before + 1


def test_repair_does_not_bring_back_pruned_terminal_events(tmp_path: Path) -> None:
    """Prune deletes old terminal events on purpose: the repair on open must not re-append
    them (it only re-appends events lost in a crash, of runs that ended after the horizon)."""
    store = tmp_path / "store"
    fixtures = SAMPLES / "fixtures" / "hello.toml"
    ran = cli(
        "run",
        SAMPLES / "minimal.toml",
        "-p",
        "name=Ada",
        "--driver",
        f"scripted:{fixtures}",
        "--store",
        store,
    )
    assert ran.exit_code == 0, ran.stderr
    time.sleep(0.01)
    pruned = cli("events", "prune", "hello", "--older-than", "0s", "--yes", "--store", store)
    assert pruned.exit_code == 0, pruned.stderr
    log = store / "mobs" / "hello" / "events.jsonl"
    assert '"flow_completed"' not in log.read_text()
    assert cli("register", SAMPLES / "minimal.toml", "--store", store).exit_code == 0
    assert cli("store", "check", "--repair", "--store", store).exit_code == 0
    assert '"flow_completed"' not in log.read_text()


# --- every mob, limits, statuses, prefixes (issue 13 item 8) -----------------------------------


def test_list_without_a_mob_lists_every_mob_newest_first(mob: tuple[Path, Path, Path]) -> None:
    store = mob[2]
    first = run(mob, "other")
    hello = cli("run", SAMPLES / "minimal.toml", "-p", "name=A", "-o", "name", "--store", store)
    last = run(mob, "main")
    lines = runs_cmd(store, "list").stdout.splitlines()
    assert lines[0].split() == ["RUN", "MOB", "FLOW", "STATUS", "CAUSE", "STARTED", "DURATION"]
    assert [line.split()[:4] for line in lines[1:]] == [
        [last[:8], "s", "main", "failed"],
        [hello.stdout[:8], "hello", "main", "completed"],
        [first[:8], "s", "other", "completed"],
    ]
    two = runs_cmd(store, "list", "--limit", "2", "-o", "name").stdout.split()
    assert two == [last, hello.stdout.strip()]
    chosen = runs_cmd(store, "list", "--status", "failed,canceled", "--status", "pending", "--json")
    assert [r["run_id"] for r in json.loads(chosen.stdout)] == [last]
    only_s = runs_cmd(store, "list", "s", "-L", "1", "-o", "name")
    assert only_s.stdout == f"{last}\n"


def test_list_shows_20_runs_unless_told_otherwise(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for index in range(22):
        ran = cli("run", SAMPLES / "minimal.toml", "-p", f"name={index}", "--store", store)
        assert ran.exit_code == 0, ran.stderr
    assert len(runs_cmd(store, "list").stdout.splitlines()) == 1 + 20
    assert len(json.loads(runs_cmd(store, "list", "hello", "--json").stdout)) == 20
    assert len(json.loads(runs_cmd(store, "list", "--limit", "0", "--json").stdout)) == 22
    assert len(runs_cmd(store, "list", "--limit", "21", "-o", "name").stdout.split()) == 21


def test_an_empty_store_has_no_runs(tmp_path: Path) -> None:
    listed = runs_cmd(tmp_path / "store", "list")
    assert (listed.exit_code, listed.stdout, listed.stderr) == (0, "", "the store has no runs\n")
    bad = runs_cmd(tmp_path / "store", "list", "--status", "done,failed")
    assert (bad.exit_code, bad.stderr.splitlines()[0]) == (2, "error[usage]: unknown status 'done'")


def test_every_command_taking_a_run_accepts_the_short_id_a_table_shows(
    mob: tuple[Path, Path, Path],
) -> None:
    store = mob[2]
    run_id = run(mob, "other")
    short = runs_cmd(store, "list", "s").stdout.splitlines()[1].split()[0]
    assert short == run_id[:8]
    shown = runs_cmd(store, "show", "s", short, "-o", "name")
    assert (shown.exit_code, shown.stdout) == (0, f"{run_id}\n")
    canceled = runs_cmd(store, "cancel", "s", short)
    assert (canceled.exit_code, canceled.stdout) == (
        0,
        f"run {run_id} is already completed: nothing to cancel\n",
    )
    resumed = runs_cmd(store, "resume", "s", short)
    assert (resumed.exit_code, resumed.stderr.split(":")[0]) == (1, "error[run_not_resumable]")
    assert run_id in resumed.stderr
    events = cli("events", "tail", "s", "--run", short, "-o", "name", "--store", store)
    assert events.exit_code == 0 and len(events.stdout.split()) > 3
