"""`mobctl runs resume`: a run whose owner was SIGKILLed finishes from its snapshot."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLES, cli
from tests.engine.test_run_processes import start
from tests.engine.test_scenarios import HEAD, brief, flow_events


def kill_when(
    store: Path, tmp_path: Path, mob: Path, fixtures: Path, marker: str, times: int = 1
) -> str:
    """Start `mobctl run`, SIGKILL it once the log holds ``marker`` ``times`` times; the run
    id."""
    process = start(
        ["run", str(mob), "--driver", f"scripted:{fixtures}", "--store", str(store)], tmp_path
    )
    log = store / "mobs" / "s" / "events.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count(marker) >= times:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"never saw {marker}")
    process.kill()
    process.communicate(timeout=30)
    return next((store / "mobs" / "s" / "runs").glob("*.json")).stem


def resume(store: Path, run_id: str, fixtures: Path, *extra: str) -> tuple[int, Any, str]:
    result = cli(
        "runs",
        "resume",
        "s",
        run_id[:8],
        "--driver",
        f"scripted:{fixtures}",
        "--store",
        store,
        *extra,
    )
    document = json.loads(result.stdout) if result.stdout.startswith("{") else None
    return result.exit_code, document, result.stderr


def test_resume_finishes_a_killed_run_and_redispatches_the_running_step(tmp_path: Path) -> None:
    mob = tmp_path / "mob.toml"
    mob.write_text(
        HEAD + '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n'
        '[flows.main.steps.b]\nrole = "w"\nmessage = "b after {{ steps.a }}"\ndepends_on = ["a"]\n'
        "timeout_ms = 120000\n"
        '[flows.main.steps.c]\nrole = "w"\nmessage = "c"\ndepends_on = ["b"]\n'
    )
    fixtures = tmp_path / "f.toml"
    fixtures.write_text(
        '[[reply]]\nstep = "a"\noutput = "A"\n'
        '[[reply]]\nstep = "b"\nattempt = 1\ndelay_ms = 120000\noutput = "never"\n'
        '[[reply]]\nstep = "b"\noutput = "B"\n[[reply]]\nstep = "c"\noutput = "C"\n'
    )
    store = tmp_path / "store"
    run_id = kill_when(store, tmp_path, mob, fixtures, '"step_id":"b","target"')

    listed = cli("runs", "list", "s", "--store", store, "--json")
    assert [(r["run_id"], r["status"], r["orphaned"]) for r in json.loads(listed.stdout)] == [
        (run_id, "running", True)
    ]
    code, document, err = resume(store, run_id, fixtures, "--json")
    assert code == 0, err
    assert (document["status"], document["outputs"]) == (
        "completed",
        {"a": {"w-1": "A"}, "b": {"w-1": "B"}, "c": {"w-1": "C"}},
    )
    kinds = flow_events(store)
    assert brief(kinds) == [
        "flow_started main",
        "step_dispatched a",
        "step_target_completed a",
        "step_completed a",
        "step_dispatched b",  # the killed attempt
        "step_dispatched b",  # dispatched again by resume
        "step_target_completed b",
        "step_completed b",
        "step_dispatched c",
        "step_target_completed c",
        "step_completed c",
        "flow_completed main",
    ]
    assert [k["attempt"] for k in kinds if k["type"] == "step_dispatched"] == [1, 1, 2, 1]
    assert cli("store", "check", "--store", store).exit_code == 0

    code, _, err = resume(store, run_id, fixtures)
    assert code == 1
    assert (
        err == f"error[run_not_resumable]: run {run_id} is already completed; nothing to resume\n"
    )


def test_item17_resume_continues_the_attempt(tmp_path: Path) -> None:
    """Killed in the second iteration's first attempt, the resumed run dispatches that
    iteration's attempt 2 (the persisted count continues), not attempt 3 (counting across
    iterations) nor attempt 1 (a count lost in the crash)."""
    mob = tmp_path / "mob.toml"
    mob.write_text(
        HEAD + '[flows.main.steps.s]\nrole = "w"\nmessage = "s"\noutput_format = "json"\n'
        'dispatch_mode = "one_to_one"\ncollection_policy = { type = "any" }\n'
        '[flows.main.steps.after]\nrole = "w"\nmessage = "after"\n'
        '[flows.main.root.nodes.l]\nkind = "repeat_until"\nloop_id = "l"\ndepends_on = []\n'
        'depends_on_mode = "all"\nmax_iterations = 3\n'
        'until = { op = "eq", path = "steps.s.done", value = true }\n'
        '[flows.main.root.nodes.l.body.nodes.n]\nkind = "step"\nstep_id = "s"\ndepends_on = []\n'
        'depends_on_mode = "all"\n'
        '[flows.main.root.nodes.z]\nkind = "step"\nstep_id = "after"\ndepends_on = ["l"]\n'
        'depends_on_mode = "all"\n'
    )
    fixtures = tmp_path / "f.toml"
    fixtures.write_text(
        '[[reply]]\nstep = "s"\niteration = 0\nattempt = 1\njson = { done = false }\n'
        '[[reply]]\nstep = "s"\niteration = 1\nattempt = 1\ndelay_ms = 120000\njson = {}\n'
        '[[reply]]\nstep = "s"\niteration = 1\nattempt = 2\njson = { done = true }\n'
        '[[reply]]\nstep = "after"\noutput = "end"\n'
    )
    store = tmp_path / "store"
    run_id = kill_when(store, tmp_path, mob, fixtures, '"type":"step_dispatched"', times=2)
    # no --driver: it resumes with the drivers the run was started with, never a silent echo
    resumed = cli("runs", "resume", "s", run_id[:8], "--store", store, "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.stderr.startswith(
        f"resuming with the drivers it was started with: scripted:{fixtures}\n"
    )
    document = json.loads(resumed.stdout)
    assert document["outputs"] == {"after": {"w-1": "end"}}
    dispatched = [
        (k["step_id"], k["attempt"]) for k in flow_events(store) if k["type"] == "step_dispatched"
    ]
    assert dispatched == [("s", 1), ("s", 1), ("s", 2), ("after", 1)]
    run = json.loads(next((store / "mobs" / "s" / "runs").glob("*.json")).read_text())
    loop = run["loops"][f"{run_id}-root::l"]["kernel_state"]
    assert (loop["phase"], loop["current_iteration"]) == ("Completed", 2)
    assert run["loop_iteration_outputs"] == {"l": [{"s": {"done": False}}, {"s": {"done": True}}]}
    assert [e["status"] for e in run["step_ledger"] if e["step_id"] == "s"] == ["completed"]
    assert run["flow_state"]["target_retry_counts"] == {"s:w-1": 2, "after:w-1": 1}


def test_resume_refuses_a_run_with_a_live_owner(tmp_path: Path) -> None:
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\ntimeout_ms = 60000\n')
    fixtures = tmp_path / "f.toml"
    fixtures.write_text('[[reply]]\ndelay_ms = 60000\noutput = "x"\n')
    store = tmp_path / "store"
    process = start(
        ["run", str(mob), "--driver", f"scripted:{fixtures}", "--store", str(store)], tmp_path
    )
    try:
        log = store / "mobs" / "s" / "events.jsonl"
        give_up = time.monotonic() + 60
        while not (log.exists() and "step_dispatched" in log.read_text()):
            assert process.poll() is None and time.monotonic() < give_up, "no dispatch"
            time.sleep(0.05)
        run_id = next((store / "mobs" / "s" / "runs").glob("*.json")).stem
        code, _, err = resume(store, run_id, fixtures)
        assert code == 1
        assert err.startswith(
            f"error[run_not_resumable]: run {run_id} still has a live owner: pid {process.pid} on "
        )
        assert f"hint: wait for it, or stop it with `mobctl runs cancel s {run_id}`\n" in err
    finally:
        process.kill()
        process.communicate(timeout=30)


# --- a run journal the store never wrote (the attack on the trust guarantees, item 12) --------

TWO_STEPS = (
    '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n'
    '[flows.main.steps.b]\nrole = "w"\nmessage = "b"\ndepends_on = ["a"]\ntimeout_ms = 120000\n'
)
SLOW_B = (
    '[[reply]]\nstep = "a"\noutput = "A"\n'
    '[[reply]]\nstep = "b"\nattempt = 1\ndelay_ms = 120000\noutput = "never"\n'
    '[[reply]]\nstep = "b"\noutput = "B"\n'
)


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(store, run id) of a run SIGKILLed while its step b ran: its snapshot has a journal."""
    tmp_path = tmp_path_factory.mktemp("killed")
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + TWO_STEPS)
    fixtures = tmp_path / "f.toml"
    fixtures.write_text(SLOW_B)
    store = tmp_path / "store"
    return store, kill_when(store, tmp_path, mob, fixtures, '"step_id":"b","target"')


@pytest.mark.parametrize(
    ("ops", "problem"),
    [
        (
            '[["set", ["flow_state", "failure_count"], NaN]]',
            "{journal} is corrupt: unreadable journal line (not valid JSON: nan is not a JSON "
            "number) at byte {end}",
        ),
        (
            '[["set", ["root_step_outputs", "b"], {{"w-1": 1e400}}]]',
            "{journal} is corrupt: unreadable journal line (not valid JSON: inf is not a JSON "
            "number) at byte {end}",
        ),
        (
            '[["set", ["frames", "nope", "kernel_state"], {{}}]]',
            "{journal} is corrupt: journal line {seq} does not apply to the snapshot at byte "
            "{after}",
        ),
        (
            '[["push", ["step_ledger"], {{"step_id": "b", "status": "failed", "timestamp": '
            '"2026-01-01T00:00:00Z"}}]]',
            "{snapshot} is not a run snapshot: step_ledger.3.agent_identity: Field required",
        ),
        (
            '[["set", ["frames", "{run_id}-root", "kernel_state", "node_status", ""], "Running"]]',
            "the snapshot of run {run_id} of mob 's' does not fit flow 'main': frames.<key>."
            "kernel_state.node_status: not a node of its frame",
        ),
        (
            '[["set", ["frames", "{run_id}-root", "kernel_state", "iteration"], "0"]]',
            "the snapshot of run {run_id} of mob 's' does not fit flow 'main': frames.<key>."
            "kernel_state.iteration: Input should be a valid integer",
        ),
    ],
)
def test_item12_a_journal_the_store_never_wrote_stops_a_resume_before_any_turn(
    killed: tuple[Path, str], tmp_path: Path, ops: str, problem: str
) -> None:
    """NaN and infinite numbers, an op that does not apply, a ledger entry missing what every
    writer writes, frames that do not fit the flow (a node the flow does not have, a count
    that is text): `runs resume` crashed (exit 70), sometimes once a turn was dispatched. Now
    it is store_corrupt for that run, and no turn was dispatched."""
    source, run_id = killed
    store = tmp_path / "store"
    shutil.copytree(source, store)
    runs = store / "mobs" / "s" / "runs"
    journal = runs / f"{run_id}.journal"
    seq = journal.read_text().count("\n") + 1
    start = journal.stat().st_size
    line = f'{{"seq": {seq}, "ops": {ops.format(run_id=run_id)}}}\n'
    with journal.open("a") as handle:
        handle.write(line)
    log = store / "mobs" / "s" / "events.jsonl"
    events = log.read_bytes()
    code, _, err = resume(store, run_id, SAMPLES / "fixtures" / "hello.toml")
    said = problem.format(
        journal=f"run journal {journal}",
        snapshot=runs / f"{run_id}.json",
        run_id=run_id,
        seq=seq,
        end=start,
        after=start + len(line.encode()),
    )
    assert (code, err.splitlines()[0]) == (6, f"error[store_corrupt]: {said}")
    assert log.read_bytes() == events  # nothing dispatched, nothing written to the log
